//! A shard's store writer: a tokio task driving an [`EventWriter`], fed by a
//! bounded queue, so that a slow database write holds up only the cameras of
//! the shard whose queue fills, never another shard's tracking. It also
//! encodes the events' pictures to JPEG (on the blocking pool), so that
//! encoding is never done on an analytics thread.

use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;
use xueliang_analytics::encode_jpeg_with_boxes;
use xueliang_core::{EventUpdate, Picture};
use xueliang_store::{EventLifecycle, EventStore, EventWriter};

/// What a shard hands its writer: an update whose picture is still to be
/// encoded (object events), or one ready to store (picture checks).
#[allow(
    clippy::large_enum_variant,
    reason = "both variants are common and moved once through a channel"
)]
pub(crate) enum Write {
    Picture(EventUpdate<Picture>),
    Ready(EventUpdate),
}

impl From<EventUpdate<Picture>> for Write {
    fn from(u: EventUpdate<Picture>) -> Self {
        Write::Picture(u)
    }
}

impl From<EventUpdate> for Write {
    fn from(u: EventUpdate) -> Self {
        Write::Ready(u)
    }
}

/// The update with its picture encoded on the blocking pool. An event whose
/// picture cannot be encoded (an error, or a bug that panics) is stored
/// without a snapshot: the update itself is never lost.
async fn encoded(update: EventUpdate<Picture>) -> EventUpdate {
    let mut picture = None;
    let update = update.map_snapshot(|p| {
        picture = Some(p);
        Some(())
    });
    let jpeg = match picture {
        None => None,
        Some(p) => {
            let encode = move || match encode_jpeg_with_boxes(&p.frame, &p.boxes) {
                Ok(jpeg) => Some(jpeg),
                Err(e) => {
                    warn!(camera = %p.frame.camera.id, error = %e, "event stored without snapshot");
                    None
                }
            };
            tokio::task::spawn_blocking(encode)
                .await
                .unwrap_or_else(|e| {
                    warn!(error = %e, "snapshot encoding failed; event stored without snapshot");
                    None
                })
        }
    };
    update.map_snapshot(|()| jpeg)
}

/// Updates waiting for a shard's writer; when full the shard waits (its own
/// cameras' tracking pauses, other shards' does not): events are never dropped.
const WRITE_QUEUE: usize = 256;

pub(crate) struct StoreQueue {
    /// `(producer, update)`: producer ids as [`EventWriter::apply`] takes them.
    tx: mpsc::Sender<(usize, Write)>,
    task: JoinHandle<()>,
    runtime: Handle,
}

impl StoreQueue {
    /// Starts the writer task on `runtime`.
    pub(crate) fn start(
        store: Arc<dyn EventStore>,
        lifecycle: Option<Arc<dyn EventLifecycle>>,
        runtime: Handle,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(usize, Write)>(WRITE_QUEUE);
        let mut writer = EventWriter::new(store).with_lifecycle(lifecycle);
        let task = runtime.spawn(async move {
            while let Some((producer, write)) = rx.recv().await {
                let update = match write {
                    Write::Picture(u) => encoded(u).await,
                    Write::Ready(u) => u,
                };
                writer.apply(producer, update).await;
            }
        });
        StoreQueue { tx, task, runtime }
    }

    /// Queues updates for writing, in order; blocks while the queue is full.
    /// Call it from a plain thread, never from an async worker.
    pub(crate) fn send<U: Into<Write>>(&self, producer: usize, updates: Vec<U>) {
        for u in updates {
            if self.tx.blocking_send((producer, u.into())).is_err() {
                warn!("store writer is stopped; event updates not written");
                return;
            }
        }
    }

    /// Returns once every update queued is written.
    pub(crate) fn finish(self) {
        drop(self.tx);
        let _ = self.runtime.block_on(self.task);
    }
}
