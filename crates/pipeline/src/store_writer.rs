//! A shard's store writer: a tokio task driving an [`EventWriter`], fed by a
//! bounded queue, so that a slow database write holds up only the cameras of
//! the shard whose queue fills, never another shard's tracking.

use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;
use xueliang_core::EventUpdate;
use xueliang_store::{EventStore, EventWriter};

/// Updates waiting for a shard's writer; when full the shard waits (its own
/// cameras' tracking pauses, other shards' does not): events are never dropped.
const WRITE_QUEUE: usize = 256;

pub(crate) struct StoreQueue {
    /// `(producer, update)`: producer ids as [`EventWriter::apply`] takes them.
    tx: mpsc::Sender<(usize, EventUpdate)>,
    task: JoinHandle<()>,
    runtime: Handle,
}

impl StoreQueue {
    /// Starts the writer task on `runtime`.
    pub(crate) fn start(store: Arc<dyn EventStore>, runtime: Handle) -> Self {
        let (tx, mut rx) = mpsc::channel::<(usize, EventUpdate)>(WRITE_QUEUE);
        let mut writer = EventWriter::new(store);
        let task = runtime.spawn(async move {
            while let Some((producer, update)) = rx.recv().await {
                writer.apply(producer, update).await;
            }
        });
        StoreQueue { tx, task, runtime }
    }

    /// Queues updates for writing, in order; blocks while the queue is full.
    /// Call it from a plain thread, never from an async worker.
    pub(crate) fn send(&self, producer: usize, updates: Vec<EventUpdate>) {
        for u in updates {
            if self.tx.blocking_send((producer, u)).is_err() {
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
