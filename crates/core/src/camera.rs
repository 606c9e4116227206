//! A camera's identity at run time and its live state, shared between the
//! stages that serve it (each camera has its own counters: nothing here is a
//! lock or counter shared by all cameras).

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A cheap handle naming a camera: its index in the running set (used to find
/// per-camera state without hashing) and its configured id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CameraRef {
    pub index: usize,
    pub id: Arc<str>,
}

/// Where a camera's ingest worker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Connecting,
    Online,
    Offline,
    Disabled,
}

/// Why a camera is offline, as an operator would look for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    /// No TCP connection (host down, wrong address, port closed, timeout).
    Unreachable,
    /// The server answered 401/403: wrong username or password.
    AuthFailed,
    /// The server answered 404: wrong path.
    NotFound,
    /// The peer does not speak RTSP, or answered something unparseable.
    Protocol,
    /// The stream has no H.264/H.265 video.
    UnsupportedCodec,
    /// Connected, but no frame arrived in time.
    Stalled,
    /// The stream ended (server sent EOS/BYE or closed the connection).
    StreamEnded,
    /// Frames arrive but none could be decoded.
    DecodeFailed,
    /// Anything else; the message says more.
    Other,
}

impl OfflineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::Unreachable => "unreachable",
            OfflineReason::AuthFailed => "auth_failed",
            OfflineReason::NotFound => "not_found",
            OfflineReason::Protocol => "protocol",
            OfflineReason::UnsupportedCodec => "unsupported_codec",
            OfflineReason::Stalled => "stalled",
            OfflineReason::StreamEnded => "stream_ended",
            OfflineReason::DecodeFailed => "decode_failed",
            OfflineReason::Other => "other",
        }
    }
}

/// The state the ingest worker publishes on its `watch` channel when it changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraStatus {
    pub state: CameraState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<OfflineReason>,
    /// A human-readable detail for the reason (never contains credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the camera entered this state.
    pub since: DateTime<Utc>,
}

impl CameraStatus {
    pub fn new(state: CameraState, since: DateTime<Utc>) -> Self {
        CameraStatus {
            state,
            reason: None,
            detail: None,
            since,
        }
    }

    pub fn offline(reason: OfflineReason, detail: String, since: DateTime<Utc>) -> Self {
        CameraStatus {
            state: CameraState::Offline,
            reason: Some(reason),
            detail: Some(detail),
            since,
        }
    }
}

/// Counters of one camera, written by the stages that serve it with relaxed
/// atomics and read by the API. Rates are derived by the reader.
#[derive(Debug, Default)]
pub struct CameraStats {
    /// Encoded frames received from the camera.
    pub frames_received: AtomicU64,
    /// Bytes of encoded video received.
    pub bytes_received: AtomicU64,
    /// Encoded frames the decode queue could not take (the decoder then skips to
    /// the next key frame).
    pub frames_dropped_decode: AtomicU64,
    /// Frames decoded.
    pub frames_decoded: AtomicU64,
    /// Packets the decoder rejected.
    pub decode_errors: AtomicU64,
    /// Decoded frames offered to the detector (at the configured detection rate).
    pub frames_offered: AtomicU64,
    /// Frames replaced in the detector's slot before it got to them.
    pub frames_dropped_detect: AtomicU64,
    /// Frames the detector ran on.
    pub frames_detected: AtomicU64,
    /// Sessions started after the first one.
    pub reconnects: AtomicU64,
    /// Wall-clock time of the last received frame, ms since the Unix epoch (0: never).
    pub last_frame_unix_ms: AtomicU64,
    /// Frame rate measured over the last second by the ingest worker, as f64 bits.
    pub fps_bits: AtomicU64,
}

impl CameraStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn set_fps(&self, fps: f64) {
        self.fps_bits.store(fps.to_bits(), Ordering::Relaxed);
    }

    pub fn fps(&self) -> f64 {
        f64::from_bits(self.fps_bits.load(Ordering::Relaxed))
    }

    pub fn last_frame_at(&self) -> Option<DateTime<Utc>> {
        match self.last_frame_unix_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms as i64),
        }
    }
}
