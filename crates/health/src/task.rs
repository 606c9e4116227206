//! The health monitor task: once a second it looks at every camera, publishes
//! its health and stores health events; every `sample_interval` it stores one
//! sample per enabled camera for the online-rate reports (the first after at
//! most [`FIRST_SAMPLE_AFTER`], so a fresh start reports within seconds).
//! Cameras are added and removed while it runs ([`MonitorChange`]).
//! Its store writes go through a queue to a writer task of their own
//! ([`crate::writes`]): a write that waits for a full disk never stops the
//! cameras being watched.

use crate::monitor::{CameraMonitor, Counters};
use crate::writes::HealthWrites;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use xueliang_core::config::CameraConfig;
use xueliang_core::{CameraHealth, CameraStats, CameraStatus, Clock, HealthSample};
use xueliang_store::EventStore;

/// The longest wait for the first sample after the start: a report asked
/// for in the first minutes of a run shows those minutes.
pub const FIRST_SAMPLE_AFTER: Duration = Duration::from_secs(10);

/// How long, after `shutdown`, the writer task may take to store what is
/// queued (it may be retrying a full disk); then it is stopped.
const WRITES_AT_SHUTDOWN: Duration = Duration::from_secs(5);

pub struct MonitoredCamera {
    pub config: CameraConfig,
    /// The ingest worker's state (a constant `disabled` for disabled cameras).
    pub status: watch::Receiver<CameraStatus>,
    pub stats: Arc<CameraStats>,
    /// Where the camera's health is published for the API and the metrics.
    pub health: watch::Sender<CameraHealth>,
}

/// A change to the set of watched cameras.
pub enum MonitorChange {
    /// Start watching a camera (a new one, or a new definition after `Remove`).
    Add(Box<MonitoredCamera>),
    /// Stop watching the camera with this id; its open offline event ends.
    Remove(String),
}

/// Runs until `shutdown`; `changes` adds and removes cameras (the monitor
/// keeps running when every sender is gone).
pub async fn run_monitor(
    mut changes: tokio::sync::mpsc::Receiver<MonitorChange>,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    sample_interval: Duration,
    shutdown: CancellationToken,
) {
    let start = clock.now();
    // Writer producer ids are never reused, so a re-added camera's events
    // are not confused with its previous definition's.
    let mut next_producer = 0usize;
    let mut watched: Vec<Watched> = Vec::new();
    let mut add = |watched: &mut Vec<Watched>, camera: MonitoredCamera, now| {
        watched.push(Watched {
            monitor: CameraMonitor::new(camera.config.clone(), now),
            camera,
            producer: next_producer,
        });
        next_producer += 1;
    };
    let mut changes_open = true;
    let (writes, writer_task) = HealthWrites::start(store);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sample = start;
    let sample_every =
        chrono::Duration::from_std(sample_interval).unwrap_or(chrono::Duration::seconds(60));
    // The first interval is short; the next ones are `sample_interval`.
    let mut next_after =
        chrono::Duration::from_std(sample_interval.min(FIRST_SAMPLE_AFTER)).unwrap_or(sample_every);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            change = changes.recv(), if changes_open => {
                let now = clock.now();
                match change {
                    Some(MonitorChange::Add(camera)) => add(&mut watched, *camera, now),
                    Some(MonitorChange::Remove(id)) => {
                        if let Some(pos) = watched.iter().position(|w| w.camera.config.id == id) {
                            let mut w = watched.remove(pos);
                            for u in w.monitor.stop(now) {
                                writes.event(w.producer, u);
                            }
                        }
                    }
                    None => changes_open = false,
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = clock.now();
        for w in watched.iter_mut() {
            let cam = &w.camera;
            let status = cam.status.borrow().clone();
            let updates = w.monitor.observe(
                now,
                &status,
                Counters::read(&cam.stats),
                cam.stats.picture(),
            );
            cam.health.send_replace(w.monitor.health().clone());
            for u in updates {
                writes.event(w.producer, u);
            }
        }
        if now - last_sample >= next_after {
            let interval_ms = (now - last_sample).num_milliseconds();
            last_sample = now;
            next_after = sample_every;
            let samples = watched
                .iter()
                .map(|w| &w.monitor)
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
            writes.samples(samples);
        }
    }
    writes.close();
    let abort = writer_task.abort_handle();
    if tokio::time::timeout(WRITES_AT_SHUTDOWN, writer_task)
        .await
        .is_err()
    {
        abort.abort();
        warn!("the store did not take the health monitor's last writes before shutdown");
    }
}

struct Watched {
    camera: MonitoredCamera,
    monitor: CameraMonitor,
    producer: usize,
}
