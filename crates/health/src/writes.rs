//! The monitor's store writes, off its loop: the monitor queues them and a
//! writer task of its own stores them, retrying while the store fails (a full
//! disk), so the cameras keep being watched and their health published while
//! a write waits.
//!
//! When full, the queue keeps every event and drops the oldest queued health
//! samples (counted and logged): events are never dropped; a dropped sampling
//! round is a gap in the online-rate reports, the same as a failed one. The
//! bound counts only sampling rounds: events come from state changes, a few
//! per camera and hour, and a stretch of them queued for a full disk is small.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tracing::warn;
use xueliang_core::{EventUpdate, HealthSample};
use xueliang_store::{EventStore, EventWriter};

/// Sampling rounds that may wait for the store; beyond it the oldest goes
/// (an hour of rounds at the default one-minute interval).
pub const QUEUED_SAMPLE_ROUNDS: usize = 60;

enum Write {
    Event(usize, Box<EventUpdate>),
    Samples(Vec<HealthSample>),
}

#[derive(Default)]
struct Queue {
    writes: VecDeque<Write>,
    sample_rounds: usize,
    closed: bool,
}

/// The monitor's end of the queue.
#[derive(Clone)]
pub(crate) struct HealthWrites {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Notify,
    dropped_rounds: AtomicU64,
}

impl HealthWrites {
    /// A queue and the writer task that empties it (spawned on the current
    /// runtime); the task ends once the queue is closed and empty.
    pub(crate) fn start(store: Arc<dyn EventStore>) -> (Self, tokio::task::JoinHandle<()>) {
        let writes = HealthWrites {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                ready: Notify::new(),
                dropped_rounds: AtomicU64::new(0),
            }),
        };
        let task = tokio::spawn(writes.clone().write_all(store));
        (writes, task)
    }

    /// Queues an event update (never dropped).
    pub(crate) fn event(&self, producer: usize, update: EventUpdate) {
        self.push(Write::Event(producer, Box::new(update)));
    }

    /// Queues a sampling round; drops the oldest queued round when
    /// [`QUEUED_SAMPLE_ROUNDS`] wait already.
    pub(crate) fn samples(&self, samples: Vec<HealthSample>) {
        let mut q = self.lock();
        if q.sample_rounds >= QUEUED_SAMPLE_ROUNDS {
            if let Some(pos) = q.writes.iter().position(|w| matches!(w, Write::Samples(_))) {
                q.writes.remove(pos);
                q.sample_rounds -= 1;
                let dropped = self.shared.dropped_rounds.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(
                    dropped_total = dropped,
                    "the store is not taking writes; the oldest queued health samples are dropped (a gap in the online-rate reports)"
                );
            }
        }
        q.sample_rounds += 1;
        q.writes.push_back(Write::Samples(samples));
        drop(q);
        self.shared.ready.notify_one();
    }

    /// No more writes: the writer task ends after the queued ones.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.shared.ready.notify_one();
    }

    fn push(&self, w: Write) {
        self.lock().writes.push_back(w);
        self.shared.ready.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn next(&self) -> Option<Write> {
        loop {
            let ready = self.shared.ready.notified();
            {
                let mut q = self.lock();
                if let Some(w) = q.writes.pop_front() {
                    if matches!(w, Write::Samples(_)) {
                        q.sample_rounds -= 1;
                    }
                    return Some(w);
                }
                if q.closed {
                    return None;
                }
            }
            ready.await;
        }
    }

    async fn write_all(self, store: Arc<dyn EventStore>) {
        let mut writer = EventWriter::new(store.clone());
        while let Some(w) = self.next().await {
            match w {
                Write::Event(producer, update) => writer.apply(producer, *update).await,
                Write::Samples(samples) => match store.insert_health_samples(samples).await {
                    Ok(()) => {
                        if let Some(trouble) = store.health().succeeded() {
                            writer.recovered(trouble).await;
                        }
                    }
                    Err(e) => {
                        if e.is_retriable() {
                            store.health().failed(&e, chrono::Utc::now());
                        }
                        warn!(error = %e, "cannot store health samples; this interval is missing from the reports");
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xueliang_core::{CameraState, EventUpdate};

    fn ended() -> EventUpdate {
        EventUpdate::Ended {
            key: 0,
            ended_at: chrono::Utc::now(),
            score: 0.0,
            boxes: Vec::new(),
            track: Vec::new(),
        }
    }

    fn queue() -> HealthWrites {
        HealthWrites {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                ready: Notify::new(),
                dropped_rounds: AtomicU64::new(0),
            }),
        }
    }

    fn round(i: i64) -> Vec<HealthSample> {
        vec![HealthSample {
            camera_id: "gate".into(),
            village: None,
            grid: None,
            at: chrono::DateTime::from_timestamp(i, 0).unwrap_or_default(),
            state: CameraState::Online,
            interval_ms: 1000,
        }]
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_sample_rounds_never_events() {
        let q = queue();
        q.event(1, ended());
        for i in 0..QUEUED_SAMPLE_ROUNDS as i64 + 3 {
            q.samples(round(i));
        }
        q.event(2, ended());
        q.close();
        assert_eq!(q.shared.dropped_rounds.load(Ordering::Relaxed), 3);
        let mut got = Vec::new();
        while let Some(w) = q.next().await {
            got.push(match w {
                Write::Event(p, _) => format!("event {p}"),
                Write::Samples(s) => format!("round {}", s[0].at.timestamp()),
            });
        }
        assert_eq!(got.len(), QUEUED_SAMPLE_ROUNDS + 2);
        assert_eq!(got[0], "event 1");
        assert_eq!(got[1], "round 3", "the oldest rounds went");
        assert_eq!(got[got.len() - 1], "event 2");
    }
}
