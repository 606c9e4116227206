//! The health monitor's task: watches every camera (running or disabled),
//! writes its health events and keeps each camera's health current.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use xueliang_core::SystemClock;
use xueliang_health::{run_monitor, MonitorChange};
use xueliang_store::EventStore;

/// Camera changes waiting for the monitor; when full the camera change waits
/// (the registry awaits the send): none is dropped.
const MONITOR_CHANGES: usize = 64;

pub struct HealthMonitor {
    changes: mpsc::Sender<MonitorChange>,
    task: JoinHandle<()>,
}

impl HealthMonitor {
    /// Starts the monitor on the current runtime; it stops when `shutdown`
    /// is cancelled.
    pub fn start(
        store: Arc<dyn EventStore>,
        sample_interval: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let (changes, rx) = mpsc::channel(MONITOR_CHANGES);
        let task = tokio::spawn(run_monitor(
            rx,
            store,
            Arc::new(SystemClock),
            sample_interval,
            shutdown,
        ));
        HealthMonitor { changes, task }
    }

    /// Where the camera registry announces cameras.
    pub fn changes(&self) -> mpsc::Sender<MonitorChange> {
        self.changes.clone()
    }

    /// Waits for the monitor to stop (after shutdown is cancelled).
    pub async fn stopped(self) {
        drop(self.changes);
        let _ = self.task.await;
    }
}
