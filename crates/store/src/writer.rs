//! Applies [`EventUpdate`]s from a producer (a camera's analytics, picture
//! checks or health monitor) to the store, remembering which stored id each
//! producer key became. Retriable failures (busy or full disk) are retried
//! with backoff while the producer waits: events are never dropped. Failures
//! and the first success after them go to the store's [`crate::StoreHealth`];
//! the writer that sees a full disk end records a `store_full` event.

use crate::{EventStore, StoreError, StoreTrouble, TroubleKind};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};
use xueliang_core::telemetry::telemetry;
use xueliang_core::{EventUpdate, NewEvent, RetryPolicy};

/// Delays between tries of a store write: 100 ms doubling to 10 s.
fn write_retry() -> RetryPolicy {
    RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(10))
}

/// Told of each event's start (with its stored id) and end once they are
/// written: how event clips are recorded. Must not block.
pub trait EventLifecycle: Send + Sync {
    fn started(&self, id: i64, event: &NewEvent);
    fn ended(&self, id: i64, ended_at: DateTime<Utc>);
}

pub struct EventWriter {
    store: Arc<dyn EventStore>,
    lifecycle: Option<Arc<dyn EventLifecycle>>,
    /// (producer, key) -> stored event id.
    ids: HashMap<(usize, u64), i64>,
    /// A stretch of failures that a write of this writer ended.
    ended_trouble: Option<StoreTrouble>,
}

impl EventWriter {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        EventWriter {
            store,
            lifecycle: None,
            ids: HashMap::new(),
            ended_trouble: None,
        }
    }

    /// The same writer, telling `lifecycle` of events started and ended.
    pub fn with_lifecycle(mut self, lifecycle: Option<Arc<dyn EventLifecycle>>) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Records a `store_full` event for a stretch of failures that ended
    /// because of a full disk (other failures are only logged).
    pub async fn recovered(&mut self, trouble: StoreTrouble) {
        let now = Utc::now();
        info!(since = %trouble.since, failures = trouble.failures, kind = ?trouble.kind, "the store takes writes again");
        if trouble.kind != TroubleKind::Full {
            return;
        }
        let minutes = (now - trouble.since).num_seconds() as f64 / 60.0;
        let event = NewEvent::store_full(
            trouble.since,
            now,
            format!(
                "the disk was full for {minutes:.1} min; {} writes waited and were retried",
                trouble.failures
            ),
        );
        let store = self.store.clone();
        self.retry("record store_full", || store.insert_event(event.clone()))
            .await;
    }

    /// Stores an update. `producer` tells apart producers whose keys overlap.
    pub async fn apply(&mut self, producer: usize, update: EventUpdate) {
        match update {
            EventUpdate::Started { key, event } => {
                let (camera, kind, label) =
                    (event.camera_id.clone(), event.kind, event.label.clone());
                let open = event.ended_at.is_none();
                let store = self.store.clone();
                if let Some(id) = self
                    .retry("insert event", || store.insert_event(event.clone()))
                    .await
                {
                    info!(camera = %camera, kind = kind.as_str(), label = %label, event = id, "event started");
                    if let Some(l) = &self.lifecycle {
                        l.started(id, &event);
                        if let Some(at) = event.ended_at {
                            l.ended(id, at);
                        }
                    }
                    if open {
                        self.ids.insert((producer, key), id);
                    }
                }
            }
            EventUpdate::Improved {
                key,
                score,
                boxes,
                snapshot,
            } => {
                if let Some(&id) = self.ids.get(&(producer, key)) {
                    let store = self.store.clone();
                    self.retry("update event", || {
                        store.improve_event(id, score, boxes.clone(), snapshot.clone())
                    })
                    .await;
                }
            }
            EventUpdate::Ended {
                key,
                ended_at,
                score,
                boxes,
                track,
            } => {
                if let Some(id) = self.ids.remove(&(producer, key)) {
                    let store = self.store.clone();
                    self.retry("end event", || {
                        store.end_event(id, ended_at, score, boxes.clone(), track.clone())
                    })
                    .await;
                    if let Some(l) = &self.lifecycle {
                        l.ended(id, ended_at);
                    }
                }
            }
            EventUpdate::Crossed(crossing) => {
                let store = self.store.clone();
                self.retry("record line crossing", || {
                    store.record_crossings(vec![crossing.clone()])
                })
                .await;
            }
        }
        if let Some(trouble) = self.ended_trouble.take() {
            self.recovered(trouble).await;
        }
    }

    async fn retry<T, F>(&mut self, what: &str, op: impl Fn() -> F) -> Option<T>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        let health = self.store.clone();
        let health = health.health();
        let policy = write_retry();
        let mut failures = 0u32;
        let started = std::time::Instant::now();
        loop {
            let result = op().await;
            if let Err(e) = &result {
                if e.is_retriable() {
                    health.failed(e, Utc::now());
                }
            } else if let Some(t) = health.succeeded() {
                self.ended_trouble = Some(t);
            }
            match result {
                Ok(v) => {
                    telemetry().store_write_seconds.observe(started.elapsed());
                    return Some(v);
                }
                Err(e) if e.is_retriable() => {
                    let delay = policy.delay(failures, &mut rand::thread_rng());
                    failures = failures.saturating_add(1);
                    warn!(error = %e, full = e.is_full(), delay_ms = delay.as_millis() as u64, "cannot {what}; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    error!(error = %e, "cannot {what}; giving up on this update");
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retriable_failures_wait_the_policy_s_delays_others_give_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let store = crate::SqliteStore::open(&url).await.unwrap();
        let mut writer = EventWriter::new(Arc::new(store));
        let calls = AtomicU32::new(0);
        let t0 = std::time::Instant::now();
        let got = writer
            .retry("test", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!((got, calls.load(Ordering::SeqCst)), (Some(7), 3));
        // Ceilings 100 ms then 200 ms, at least half of each.
        let policy = write_retry();
        let least = policy.ceiling(0) / 2 + policy.ceiling(1) / 2;
        assert!(t0.elapsed() >= least, "{:?} < {least:?}", t0.elapsed());

        let calls = AtomicU32::new(0);
        let got: Option<()> = writer
            .retry("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Corrupt("bad row".into()))
            })
            .await;
        assert_eq!((got, calls.load(Ordering::SeqCst)), (None, 1));
    }
}
