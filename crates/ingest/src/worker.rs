//! The per-camera worker: `run()` loops sessions of its [`FrameSource`] until
//! shutdown, backing off between them; every await races the shutdown token,
//! and a silence watchdog ends a session that stops sending video.

use crate::classify::SessionError;
use crate::source::{AccessUnit, FrameSource, SourceSession};
use chrono::Utc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};
use xueliang_core::config::IngestConfig;
use xueliang_core::{
    CameraRef, CameraState, CameraStats, CameraStatus, EncodedFrame, FrameSink, HealthReason,
    PushOutcome, RetryPolicy,
};

/// Timeouts and backoff of the ingest workers.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    /// Limit of each step of opening a session (RTSP: DESCRIBE, SETUP, PLAY).
    pub connect_timeout: Duration,
    /// A session with no video for this long is ended and opened again.
    pub frame_timeout: Duration,
    /// Delays between sessions: `backoff_initial_s` doubling to
    /// `backoff_max_s`, the lower half random.
    pub reconnect: RetryPolicy,
}

impl From<&IngestConfig> for IngestSettings {
    fn from(c: &IngestConfig) -> Self {
        IngestSettings {
            connect_timeout: Duration::from_secs_f64(c.connect_timeout_s),
            frame_timeout: Duration::from_secs_f64(c.frame_timeout_s),
            reconnect: RetryPolicy::new(
                Duration::from_secs_f64(c.backoff_initial_s),
                Duration::from_secs_f64(c.backoff_max_s),
            ),
        }
    }
}

pub struct CameraWorker<S> {
    pub camera: CameraRef,
    pub source: S,
    pub settings: IngestSettings,
    pub sink: Arc<dyn FrameSink>,
    pub stats: Arc<CameraStats>,
    pub status: watch::Sender<CameraStatus>,
    pub shutdown: CancellationToken,
}

/// Why a session's frame loop stopped.
enum Stop {
    Shutdown,
    Failed(SessionError),
}

impl<S: FrameSource> CameraWorker<S> {
    /// Runs sessions until shutdown. Never returns an error: failures become the
    /// published state and a backed-off retry.
    pub async fn run(&self) {
        // Failed sessions in a row; a session that got frames starts over.
        let mut failures = 0u32;
        let mut sessions = 0u64;
        loop {
            if sessions > 0 {
                CameraStats::add(&self.stats.reconnects, 1);
            }
            sessions += 1;
            self.sink.reset(&self.camera);
            self.publish(CameraStatus::new(CameraState::Connecting, Utc::now()));
            let mut got_frames = false;
            match self.session(&mut got_frames).await {
                Stop::Shutdown => return,
                Stop::Failed(e) => {
                    if got_frames {
                        failures = 0;
                    }
                    warn!(reason = e.reason.as_str(), detail = %e.detail, "camera session ended");
                    self.publish(CameraStatus::offline(e.reason, e.detail, Utc::now()));
                }
            }
            let delay = self
                .settings
                .reconnect
                .delay(failures, &mut rand::thread_rng());
            failures = failures.saturating_add(1);
            info!(
                delay_ms = delay.as_millis() as u64,
                "reconnecting after backoff"
            );
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn publish(&self, status: CameraStatus) {
        self.status.send_if_modified(|cur| {
            let changed = cur.state != status.state || cur.reason != status.reason;
            if changed {
                *cur = status;
            }
            changed
        });
    }

    /// One session: open, skip to the first key frame, hand every access unit
    /// to the sink until the source fails, goes silent or shutdown.
    async fn session(&self, got_frames: &mut bool) -> Stop {
        let mut session = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => return Stop::Shutdown,
            r = self.source.open() => match r {
                Ok(s) => s,
                Err(e) => return Stop::Failed(e),
            },
        };
        info!("session open");
        let mut waiting_for_key = true;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_frame = Instant::now();
        loop {
            let item = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Stop::Shutdown,
                _ = tick.tick() => {
                    if last_frame.elapsed() > self.settings.frame_timeout {
                        return Stop::Failed(SessionError::new(
                            HealthReason::Stalled,
                            format!(
                                "no video frame for {} s",
                                self.settings.frame_timeout.as_secs_f64()
                            ),
                        ));
                    }
                    continue;
                }
                item = session.next() => item,
            };
            let unit = match item {
                Ok(Some(unit)) => unit,
                Ok(None) => {
                    return Stop::Failed(SessionError::new(
                        HealthReason::StreamEnded,
                        "the server ended the stream",
                    ));
                }
                Err(e) => return Stop::Failed(e),
            };
            last_frame = Instant::now();
            if waiting_for_key && !unit.is_key {
                continue;
            }
            if waiting_for_key {
                waiting_for_key = false;
                *got_frames = true;
                self.publish(CameraStatus::new(CameraState::Online, Utc::now()));
            }
            if let Err(stop) = self.hand_on(unit) {
                return stop;
            }
        }
    }

    /// Counts an access unit and pushes it to the sink (never blocks).
    fn hand_on(&self, unit: AccessUnit) -> Result<(), Stop> {
        let received_at = Utc::now();
        let stats = &self.stats;
        CameraStats::add(&stats.frames_received, 1);
        CameraStats::add(&stats.bytes_received, unit.data.len() as u64);
        CameraStats::add(&stats.lost_packets, unit.lost_packets as u64);
        stats.last_frame_unix_ms.store(
            received_at.timestamp_millis().max(1) as u64,
            Ordering::Relaxed,
        );
        let encoded = EncodedFrame {
            camera: self.camera.clone(),
            codec: unit.codec,
            is_key: unit.is_key,
            new_parameters: unit.new_parameters,
            stream_time: unit.stream_time,
            received_at,
            data: unit.data,
        };
        match self.sink.push(encoded) {
            PushOutcome::Accepted => Ok(()),
            PushOutcome::Dropped => {
                CameraStats::add(&stats.frames_dropped_decode, 1);
                Ok(())
            }
            PushOutcome::Closed => Err(Stop::Shutdown),
        }
    }
}

/// Spawns the worker under a supervisor: a panic is logged with the camera id
/// and the worker restarts after a pause; it is never silently lost.
pub fn spawn_supervised<S: FrameSource>(
    worker: Arc<CameraWorker<S>>,
) -> tokio::task::JoinHandle<()> {
    let span = info_span!("camera", camera = %worker.camera.id);
    tokio::spawn(
        async move {
            loop {
                let w = worker.clone();
                let task = tokio::spawn(async move { w.run().await }.in_current_span());
                match task.await {
                    Ok(()) => return,
                    Err(e) if e.is_panic() => {
                        error!("camera worker panicked; restarting it (this is a bug)");
                        worker.publish(CameraStatus::offline(
                            HealthReason::Other,
                            "internal error; worker restarted".into(),
                            Utc::now(),
                        ));
                        tokio::select! {
                            _ = worker.shutdown.cancelled() => return,
                            _ = tokio::time::sleep(worker.settings.reconnect.initial) => {}
                        }
                    }
                    Err(_) => return,
                }
            }
        }
        .instrument(span),
    )
}
