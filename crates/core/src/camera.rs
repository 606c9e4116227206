//! A camera's identity at run time and its live state, shared between the
//! stages that serve it (each camera has its own counters: nothing here is a
//! lock or counter shared by all cameras).

use crate::config::HwAccel;
use crate::detection_need::NeedBoard;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use utoipa::ToSchema;

/// A cheap handle naming a camera: its index in the running set (used to find
/// per-camera state without hashing) and its configured id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CameraRef {
    pub index: usize,
    pub id: Arc<str>,
}

/// Where a camera stands. The ingest worker publishes connecting / online /
/// offline; the health monitor refines online into degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Connecting,
    Online,
    /// Delivering video, but worse than it should (see the reason).
    Degraded,
    Offline,
    Disabled,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Online => "online",
            CameraState::Degraded => "degraded",
            CameraState::Offline => "offline",
            CameraState::Disabled => "disabled",
        }
    }

    /// The state [`CameraState::as_str`] names.
    pub fn parse(name: &str) -> Option<CameraState> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }

    /// Whether the camera counts as online for the online rate (在线率).
    pub fn delivers_video(self) -> bool {
        matches!(self, CameraState::Online | CameraState::Degraded)
    }
}

/// Why a camera is offline or degraded, as an operator would look for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthReason {
    /// No answer: host down, wrong address, network down, or a timeout.
    Unreachable,
    /// The host answered but refused the connection: nothing listens on that port.
    Refused,
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
    /// Degraded: the frame rate is far below the camera's usual rate.
    LowFps,
    /// Degraded: RTP packets are being lost.
    PacketLoss,
    /// Degraded: some frames fail to decode.
    DecodeErrors,
    /// GB/T 28181: the device is not registered (never was, unregistered, or
    /// its registration expired).
    DeviceOffline,
    /// GB/T 28181: the device stopped sending keepalives.
    KeepaliveLost,
    /// GB/T 28181: the device refused the INVITE (the detail has the SIP code).
    InviteRefused,
    /// GB/T 28181: the INVITE was accepted but no media arrived (收流超时).
    NoMedia,
}

impl HealthReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthReason::Unreachable => "unreachable",
            HealthReason::Refused => "refused",
            HealthReason::AuthFailed => "auth_failed",
            HealthReason::NotFound => "not_found",
            HealthReason::Protocol => "protocol",
            HealthReason::UnsupportedCodec => "unsupported_codec",
            HealthReason::Stalled => "stalled",
            HealthReason::StreamEnded => "stream_ended",
            HealthReason::DecodeFailed => "decode_failed",
            HealthReason::Other => "other",
            HealthReason::LowFps => "low_fps",
            HealthReason::PacketLoss => "packet_loss",
            HealthReason::DecodeErrors => "decode_errors",
            HealthReason::DeviceOffline => "device_offline",
            HealthReason::KeepaliveLost => "keepalive_lost",
            HealthReason::InviteRefused => "invite_refused",
            HealthReason::NoMedia => "no_media",
        }
    }

    /// The reason [`HealthReason::as_str`] names.
    pub fn parse(name: &str) -> Option<HealthReason> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// The state the ingest worker publishes on its `watch` channel when it changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraStatus {
    pub state: CameraState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<HealthReason>,
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

    pub fn offline(reason: HealthReason, detail: String, since: DateTime<Utc>) -> Self {
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
    /// RTP packets lost (sequence gaps) before received frames.
    pub lost_packets: AtomicU64,
    /// The picture checks' current verdict ([`PictureFlags`] bits), set by
    /// the analytics thread.
    pub picture_flags: AtomicU8,
    /// Encoded frames never decoded because the camera was idle (key frames
    /// only); set by the decoder.
    pub frames_skipped_idle: AtomicU64,
    /// Times an idle camera woke because its key frames changed (motion the
    /// frame sizes did not show, e.g. at constant bitrate). Set by the decoder.
    pub key_frame_wakes: AtomicU64,
    /// The camera is idle: no motion and nothing tracked, only key frames are
    /// decoded. Set by the decoder.
    pub idle: AtomicBool,
    /// What the analytics need from the next frames (see [`NeedBoard`]): set
    /// by the analytics thread after each detected frame; read by the
    /// decoder, which stays busy while anything is needed and paces the
    /// detections by it.
    pub need: NeedBoard,
    /// Frames that would have gone to the model at the full rate but did not,
    /// because the analytics needed only the reduced rate. Set by the decoder.
    pub frames_reduced: AtomicU64,
    /// Frames shown to the model under a reduced need because something
    /// moved outside the tracked objects. Set by the decoder.
    pub frames_woken_by_motion: AtomicU64,
    /// Regions of detected frames the model looked at besides the whole
    /// frame (`detection.regions`). Set by the inference worker.
    pub regions_detected: AtomicU64,
    /// The hardware device the camera's decoder runs on: 0 none (software),
    /// 1 cuda, 2 vaapi. Set by the decoder when it opens one and when it
    /// falls back to software.
    pub hardware_decoding: AtomicU8,
    /// CPU time the decode thread spent inside the video decoder for this
    /// camera (sending packets, receiving pictures, copying them from a
    /// device), in nanoseconds. Set by the decoder.
    pub decode_cpu_ns: AtomicU64,
    /// CPU time the decode thread spent converting this camera's pictures
    /// (the copy for the picture checks, the scaling to the model input), in
    /// nanoseconds. Set by the decoder.
    pub convert_cpu_ns: AtomicU64,
}

/// What the picture checks currently see on a camera.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PictureFlags {
    /// The picture has not changed at all for a while.
    pub frozen: bool,
    /// The picture is black or uniform: lens covered, camera in the dark.
    pub blocked: bool,
    /// The view differs from the one the camera usually has: turned or moved.
    pub scene_changed: bool,
}

impl PictureFlags {
    pub fn bits(self) -> u8 {
        self.frozen as u8 | (self.blocked as u8) << 1 | (self.scene_changed as u8) << 2
    }

    pub fn from_bits(b: u8) -> Self {
        PictureFlags {
            frozen: b & 1 != 0,
            blocked: b & 2 != 0,
            scene_changed: b & 4 != 0,
        }
    }
}

impl CameraStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn picture(&self) -> PictureFlags {
        PictureFlags::from_bits(self.picture_flags.load(Ordering::Relaxed))
    }

    pub fn set_picture(&self, flags: PictureFlags) {
        self.picture_flags.store(flags.bits(), Ordering::Relaxed);
    }

    pub fn idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// The hardware device the camera's decoder runs on (`None`: software).
    pub fn hardware_decoding(&self) -> Option<HwAccel> {
        match self.hardware_decoding.load(Ordering::Relaxed) {
            1 => Some(HwAccel::Cuda),
            2 => Some(HwAccel::Vaapi),
            _ => None,
        }
    }

    pub fn set_hardware_decoding(&self, device: Option<HwAccel>) {
        let code = match device {
            None => 0,
            Some(HwAccel::Cuda) => 1,
            Some(HwAccel::Vaapi) => 2,
        };
        self.hardware_decoding.store(code, Ordering::Relaxed);
    }

    pub fn last_frame_at(&self) -> Option<DateTime<Utc>> {
        match self.last_frame_unix_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms as i64),
        }
    }
}

/// A camera's health as the monitor sees it, published on a `watch` channel
/// for the API and the metrics.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CameraHealth {
    pub state: CameraState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<HealthReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the camera entered this state.
    pub since: DateTime<Utc>,
    /// Frames per second received over the last measuring window.
    pub fps: f64,
    /// The camera's usual frame rate, learned while it is healthy.
    pub nominal_fps: Option<f64>,
    /// Kilobits per second received over the last window.
    pub bitrate_kbps: f64,
    /// Detections per second achieved over the last window.
    pub detection_fps: f64,
    pub picture: PictureFlags,
}

impl CameraHealth {
    pub fn new(state: CameraState, since: DateTime<Utc>) -> Self {
        CameraHealth {
            state,
            reason: None,
            detail: None,
            since,
            fps: 0.0,
            nominal_fps: None,
            bitrate_kbps: 0.0,
            detection_fps: 0.0,
            picture: PictureFlags::default(),
        }
    }
}

#[cfg(test)]
mod names {
    use super::*;

    #[test]
    fn states_and_reasons_parse_back_from_their_names() {
        for s in ["connecting", "online", "degraded", "offline", "disabled"] {
            assert_eq!(CameraState::parse(s).map(CameraState::as_str), Some(s));
        }
        for r in [
            "unreachable",
            "auth_failed",
            "low_fps",
            "invite_refused",
            "no_media",
        ] {
            assert_eq!(HealthReason::parse(r).map(HealthReason::as_str), Some(r));
        }
        assert_eq!(CameraState::parse("Online"), None);
        assert_eq!(HealthReason::parse(""), None);
    }
}
