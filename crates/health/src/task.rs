//! The health monitor task: once a second it looks at every camera, publishes
//! its health and stores health events; every `sample_interval` it stores one
//! sample per enabled camera for the online-rate reports.

use crate::monitor::{CameraMonitor, Counters};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use xueliang_core::config::CameraConfig;
use xueliang_core::{CameraHealth, CameraStats, CameraStatus, Clock, HealthSample};
use xueliang_store::{EventStore, EventWriter};

pub struct MonitoredCamera {
    pub config: CameraConfig,
    /// The ingest worker's state (a constant `disabled` for disabled cameras).
    pub status: watch::Receiver<CameraStatus>,
    pub stats: Arc<CameraStats>,
    /// Where the camera's health is published for the API and the metrics.
    pub health: watch::Sender<CameraHealth>,
}

pub async fn run_monitor(
    cameras: Vec<MonitoredCamera>,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    sample_interval: Duration,
    shutdown: CancellationToken,
) {
    let start = clock.now();
    let mut monitors: Vec<CameraMonitor> = cameras
        .iter()
        .map(|c| CameraMonitor::new(c.config.clone(), start))
        .collect();
    let mut writer = EventWriter::new(store.clone());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sample = start;
    let sample_every =
        chrono::Duration::from_std(sample_interval).unwrap_or(chrono::Duration::seconds(60));
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = clock.now();
        for (i, (cam, monitor)) in cameras.iter().zip(monitors.iter_mut()).enumerate() {
            let status = cam.status.borrow().clone();
            let updates = monitor.observe(
                now,
                &status,
                Counters::read(&cam.stats),
                cam.stats.picture(),
            );
            cam.health.send_replace(monitor.health().clone());
            for u in updates {
                writer.apply(i, u).await;
            }
        }
        if now - last_sample >= sample_every {
            let interval_ms = (now - last_sample).num_milliseconds();
            last_sample = now;
            let samples = monitors
                .iter()
                .filter(|m| m.camera().enabled)
                .map(|m| HealthSample {
                    camera_id: m.camera().id.clone(),
                    village: m.camera().village.clone(),
                    grid: m.camera().grid.clone(),
                    at: now,
                    state: m.health().state,
                    interval_ms,
                })
                .collect();
            if let Err(e) = store.insert_health_samples(samples).await {
                warn!(error = %e, "cannot store health samples; this interval is missing from the reports");
            }
        }
    }
}
