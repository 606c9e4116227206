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
use xueliang_core::telemetry::telemetry;
use xueliang_core::EventUpdate;

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
    let mut delay = Duration::from_millis(100);
    let started = std::time::Instant::now();
    loop {
        match op().await {
            Ok(v) => {
                telemetry().store_write_seconds.observe(started.elapsed());
                return Some(v);
            }
            Err(e) if e.is_retriable() => {
                warn!(error = %e, delay_ms = delay.as_millis() as u64, "cannot {what}; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                error!(error = %e, "cannot {what}; giving up on this update");
                return None;
            }
        }
    }
}
