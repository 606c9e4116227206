//! The per-camera worker: `run()` loops `run_once()` until shutdown, backing off
//! between sessions; every await races the shutdown token and has a timeout.

use crate::classify::SessionError;
use chrono::Utc;
use futures::StreamExt;
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};
use xueliang_core::config::{CameraConfig, IngestConfig};
use xueliang_core::{
    CameraRef, CameraState, CameraStats, CameraStatus, EncodedFrame, FrameSink, HealthReason,
    PushOutcome, RetryPolicy, VideoCodec,
};

/// Timeouts and backoff of the ingest workers.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    pub connect_timeout: Duration,
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

pub struct CameraWorker {
    pub camera: CameraRef,
    pub config: CameraConfig,
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

impl CameraWorker {
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
            match self.run_once(&mut got_frames).await {
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

    /// Races `fut` against shutdown and a timeout.
    async fn bounded<T>(
        &self,
        stage: &str,
        limit: Duration,
        fut: impl Future<Output = Result<T, retina::Error>>,
    ) -> Result<T, Stop> {
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(Stop::Shutdown),
            r = tokio::time::timeout(limit, fut) => match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(Stop::Failed(SessionError::from_retina(stage, &e))),
                Err(_) => Err(Stop::Failed(SessionError::new(
                    HealthReason::Unreachable,
                    format!("{stage}: no answer within {} s", limit.as_secs_f64()),
                ))),
            },
        }
    }

    async fn run_once(&self, got_frames: &mut bool) -> Stop {
        match self.session(got_frames).await {
            Ok(never) => match never {},
            Err(stop) => stop,
        }
    }

    async fn session(&self, got_frames: &mut bool) -> Result<std::convert::Infallible, Stop> {
        let creds = self
            .config
            .username
            .as_ref()
            .map(|u| retina::client::Credentials {
                username: u.clone(),
                password: self
                    .config
                    .password
                    .as_ref()
                    .map(|p| p.expose().to_owned())
                    .unwrap_or_default(),
            });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(concat!("xueliang/", env!("CARGO_PKG_VERSION")).to_owned());
        let limit = self.settings.connect_timeout;
        let mut session = self
            .bounded(
                "DESCRIBE",
                limit,
                Session::describe(self.config.url.clone(), options),
            )
            .await?;
        let (index, codec) = session
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                if s.media() != "video" {
                    return None;
                }
                match s.encoding_name() {
                    "h264" => Some((i, VideoCodec::H264)),
                    "h265" => Some((i, VideoCodec::H265)),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                let found: Vec<String> = session
                    .streams()
                    .iter()
                    .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                    .collect();
                Stop::Failed(SessionError::new(
                    HealthReason::UnsupportedCodec,
                    format!(
                        "no H.264 or H.265 video stream (found: {})",
                        found.join(", ")
                    ),
                ))
            })?;
        let setup = SetupOptions::default()
            .transport(Transport::Tcp(Default::default()))
            .frame_format(FrameFormat::SIMPLE);
        self.bounded("SETUP", limit, session.setup(index, setup))
            .await?;
        let playing = self
            .bounded("PLAY", limit, session.play(PlayOptions::default()))
            .await?;
        let mut frames = playing
            .demuxed()
            .map_err(|e| Stop::Failed(SessionError::from_retina("PLAY", &e)))?;
        info!(codec = codec.as_str(), "session playing");

        let mut waiting_for_key = true;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_frame = Instant::now();
        loop {
            let item = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(Stop::Shutdown),
                _ = tick.tick() => {
                    if last_frame.elapsed() > self.settings.frame_timeout {
                        return Err(Stop::Failed(SessionError::new(
                            HealthReason::Stalled,
                            format!(
                                "no video frame for {} s",
                                self.settings.frame_timeout.as_secs_f64()
                            ),
                        )));
                    }
                    continue;
                }
                item = frames.next() => item,
            };
            let frame = match item {
                None => {
                    return Err(Stop::Failed(SessionError::new(
                        HealthReason::StreamEnded,
                        "the server ended the stream",
                    )));
                }
                Some(Err(e)) => {
                    return Err(Stop::Failed(SessionError::from_retina("read", &e)));
                }
                Some(Ok(CodecItem::VideoFrame(f))) => f,
                Some(Ok(CodecItem::Rtcp(rtcp))) => {
                    // RTCP BYE (type 203): the sender says the stream is over.
                    if rtcp.pkts().any(|p| p.payload_type() == 203) {
                        return Err(Stop::Failed(SessionError::new(
                            HealthReason::StreamEnded,
                            "the server ended the stream (RTCP BYE)",
                        )));
                    }
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            last_frame = Instant::now();
            let is_key = frame.is_random_access_point();
            if waiting_for_key && !is_key {
                continue;
            }
            if waiting_for_key {
                waiting_for_key = false;
                *got_frames = true;
                self.publish(CameraStatus::new(CameraState::Online, Utc::now()));
            }
            let received_at = Utc::now();
            let stats = &self.stats;
            CameraStats::add(&stats.frames_received, 1);
            CameraStats::add(&stats.bytes_received, frame.data().len() as u64);
            CameraStats::add(&stats.lost_packets, frame.loss() as u64);
            stats.last_frame_unix_ms.store(
                received_at.timestamp_millis().max(1) as u64,
                Ordering::Relaxed,
            );
            let encoded = EncodedFrame {
                camera: self.camera.clone(),
                codec,
                is_key,
                new_parameters: frame.has_new_parameters(),
                stream_time: frame.timestamp().elapsed_secs(),
                received_at,
                data: frame.into_data(),
            };
            match self.sink.push(encoded) {
                PushOutcome::Accepted => {}
                PushOutcome::Dropped => CameraStats::add(&stats.frames_dropped_decode, 1),
                PushOutcome::Closed => return Err(Stop::Shutdown),
            }
        }
    }
}

/// Spawns the worker under a supervisor: a panic is logged with the camera id
/// and the worker restarts after a pause; it is never silently lost.
pub fn spawn_supervised(worker: Arc<CameraWorker>) -> tokio::task::JoinHandle<()> {
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
