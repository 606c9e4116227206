//! Applies [`EventUpdate`]s from a producer (a camera's analytics, picture
//! checks or health monitor) to the store, remembering which stored id each
//! producer key became. Retriable failures (busy or full disk) are retried
//! with backoff while the producer waits: events are never dropped.

use crate::{EventStore, StoreError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};
use xueliang_core::{EventUpdate, RetryPolicy};

/// Delays between tries of a store write: 100 ms doubling to 10 s.
fn write_retry() -> RetryPolicy {
    RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(10))
}

pub struct EventWriter {
    store: Arc<dyn EventStore>,
    /// (producer, key) -> stored event id.
    ids: HashMap<(usize, u64), i64>,
}

impl EventWriter {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        EventWriter {
            store,
            ids: HashMap::new(),
        }
    }

    /// Stores an update. `producer` tells apart producers whose keys overlap.
    pub async fn apply(&mut self, producer: usize, update: EventUpdate) {
        match update {
            EventUpdate::Started { key, event } => {
                let (camera, kind, label) =
                    (event.camera_id.clone(), event.kind, event.label.clone());
                let open = event.ended_at.is_none();
                let store = self.store.clone();
                if let Some(id) = retry("insert event", || store.insert_event(event.clone())).await
                {
                    info!(camera = %camera, kind = kind.as_str(), label = %label, event = id, "event started");
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
                    retry("update event", || {
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
                    retry("end event", || {
                        store.end_event(id, ended_at, score, boxes.clone(), track.clone())
                    })
                    .await;
                }
            }
            EventUpdate::Crossed(crossing) => {
                let store = self.store.clone();
                retry("record line crossing", || {
                    store.record_crossings(vec![crossing.clone()])
                })
                .await;
            }
        }
    }
}

async fn retry<T, F>(what: &str, op: impl Fn() -> F) -> Option<T>
where
    F: Future<Output = Result<T, StoreError>>,
{
    let policy = write_retry();
    let mut failures = 0u32;
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) if e.is_retriable() => {
                let delay = policy.delay(failures, &mut rand::thread_rng());
                failures = failures.saturating_add(1);
                warn!(error = %e, delay_ms = delay.as_millis() as u64, "cannot {what}; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                error!(error = %e, "cannot {what}; giving up on this update");
                return None;
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
        let calls = AtomicU32::new(0);
        let t0 = std::time::Instant::now();
        let got = retry("test", || async {
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
        let got: Option<()> = retry("test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Corrupt("bad row".into()))
        })
        .await;
        assert_eq!((got, calls.load(Ordering::SeqCst)), (None, 1));
    }
}
