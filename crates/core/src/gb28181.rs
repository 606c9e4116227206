//! GB/T 28181 devices as the API shows them: what registered, from where,
//! when it was last heard of, and its channels.

use crate::camera::{CameraHealth, CameraState, HealthReason};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

/// A device (camera or NVR) known to the SIP server.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct GbDevice {
    /// The device's 20-digit id (设备编号).
    pub id: String,
    /// The name from the configuration or the device's catalog.
    pub name: Option<String>,
    /// Registered and keeping alive.
    pub online: bool,
    /// Why the device is offline (`device_offline`, `keepalive_lost`).
    pub reason: Option<String>,
    /// Where its SIP requests come from (`ip:port`, as seen by the server:
    /// behind NAT, the public address).
    pub address: Option<String>,
    /// `udp` or `tcp`: how it reached the SIP server.
    pub transport: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_keepalive: Option<DateTime<Utc>>,
    /// When its catalog was last complete.
    pub catalog_at: Option<DateTime<Utc>>,
    pub channels: Vec<GbChannel>,
}

/// A channel of a device's catalog.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct GbChannel {
    /// The channel's 20-digit id.
    pub id: String,
    pub name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    /// `ON` or `OFF` as the device reports it.
    pub status: Option<String>,
    /// The camera that shows this channel, if any.
    pub camera_id: Option<String>,
}

/// Why a catalog query could not be sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("no device with id \"{0}\"")]
    NotFound(String),
    #[error("device {0} is offline")]
    Offline(String),
    #[error("{0}")]
    Failed(String),
}

/// One total since start of the GB/T 28181 side (SIP messages, media
/// packets), for the metrics: exported as `xueliang_gb28181_<name>_total`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GbCounter {
    /// snake_case, e.g. `sip_registrations` or `media_lost_packets`.
    pub name: String,
    /// One line for the metric's HELP.
    pub help: &'static str,
    pub value: u64,
}

/// The GB/T 28181 devices, as the SIP server knows them.
pub trait DeviceDirectory: Send + Sync {
    fn devices(&self) -> Vec<GbDevice>;
    /// Asks the device for its catalog again; the answer arrives later.
    fn query_catalog(&self, id: &str) -> BoxFuture<'_, Result<(), CatalogError>>;
    /// The SIP server's and the media receivers' counters.
    fn counters(&self) -> Vec<GbCounter>;
    /// The superior platforms we register to (cascade); none by default.
    fn upstreams(&self) -> Vec<GbUpstream> {
        Vec::new()
    }
}

/// A camera as a superior platform's catalog shows it (cascade).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CascadeCamera {
    pub id: String,
    pub name: String,
    pub village: Option<String>,
    pub grid: Option<String>,
    /// Delivering video (online or degraded): `ON` in the catalog.
    pub online: bool,
    /// What is wrong beyond ON/OFF, told to catalog subscribers as the
    /// standard's VLOST or DEFECT.
    pub trouble: Option<CameraTrouble>,
    /// The GB/T 28181 channel id of a `gb28181://` camera: kept as its id
    /// upward.
    pub gb_channel: Option<String>,
}

/// A camera's trouble as GB/T 28181-2016 catalog notifications (A.2.5)
/// name it, where camera health has the same idea.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraTrouble {
    /// 视频丢失 (VLOST): the camera delivers, but the picture checks see
    /// no picture: black or uniform (lens covered, no light) or frozen.
    VideoLost,
    /// 故障 (DEFECT): the camera answers but cannot give usable video: it
    /// refuses our credentials, has no such stream, sends what we cannot
    /// decode or take, or (GB/T 28181) its device refuses our INVITE.
    Defect,
}

impl CameraTrouble {
    /// The trouble `health` shows, if any. A camera that does not answer
    /// at all (unreachable, silent, device offline) is only OFF: that is
    /// no fault of the camera we can see from here.
    pub fn of(health: &CameraHealth) -> Option<CameraTrouble> {
        match health.state {
            CameraState::Online | CameraState::Degraded
                if health.picture.blocked || health.picture.frozen =>
            {
                Some(CameraTrouble::VideoLost)
            }
            CameraState::Offline if health.reason.is_some_and(is_fault) => {
                Some(CameraTrouble::Defect)
            }
            _ => None,
        }
    }
}

/// Whether an offline camera's reason is a fault of the camera (it
/// answered, and what it answered cannot be used).
fn is_fault(reason: HealthReason) -> bool {
    matches!(
        reason,
        HealthReason::AuthFailed
            | HealthReason::NotFound
            | HealthReason::Protocol
            | HealthReason::UnsupportedCodec
            | HealthReason::DecodeFailed
            | HealthReason::InviteRefused
    )
}

/// The cameras there are to share with superior platforms, read at each
/// catalog query.
pub trait CascadeCameras: Send + Sync {
    fn cameras(&self) -> Vec<CascadeCamera>;
}

/// Where a registration to a superior platform stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// Sending REGISTER (first time, or again after a failure).
    Registering,
    /// Registered and keeping alive.
    Registered,
    /// The last attempt failed (see `last_error`); retrying with backoff.
    Failed,
    /// Unregistered at shutdown.
    Stopped,
}

impl UpstreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamState::Registering => "registering",
            UpstreamState::Registered => "registered",
            UpstreamState::Failed => "failed",
            UpstreamState::Stopped => "stopped",
        }
    }

    pub const ALL: [UpstreamState; 4] = [
        UpstreamState::Registering,
        UpstreamState::Registered,
        UpstreamState::Failed,
        UpstreamState::Stopped,
    ];
}

/// A superior platform Xueliang registers to, and how that goes.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct GbUpstream {
    /// The superior platform's 20-digit id.
    pub id: String,
    /// `host:port` as configured.
    pub address: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Our id towards it.
    pub local_id: String,
    pub state: UpstreamState,
    /// When the link entered this state.
    pub since: DateTime<Utc>,
    /// Why the last attempt failed (`403 Forbidden`, `no answer`,
    /// `3 keepalives unanswered`), kept after recovery until the next failure.
    pub last_error: Option<String>,
    /// When the current registration runs out (refreshed before).
    pub registered_until: Option<DateTime<Utc>>,
    /// When the superior last answered a keepalive with 200.
    pub last_keepalive: Option<DateTime<Utc>>,
    /// Successful registrations since start (first ones and refreshes).
    pub registrations: u64,
    /// Failed attempts since start.
    pub failures: u64,
    /// Catalog queries answered since start.
    pub catalog_queries: u64,
    /// Alarms (MESSAGE Notify Alarm) the superior answered with 2xx since start.
    pub alarms_sent: u64,
    /// Alarm attempts that failed since start (not registered, no answer,
    /// an error response); the alert outbox retries them.
    pub alarms_failed: u64,
    /// Catalog NOTIFYs (目录通知, in its catalog subscription) it answered
    /// with 2xx since start.
    pub catalog_notifies_sent: u64,
    /// Catalog NOTIFYs that failed since start (no answer, an error
    /// response); their changes are sent again at the next check.
    pub catalog_notifies_failed: u64,
    /// Live video streams to it now (its INVITEs, cascade).
    pub streams: u32,
    /// Its INVITEs refused since start (unknown channel, camera not
    /// running, over `max_upstream_streams`, an offer we cannot serve).
    pub streams_refused: u64,
    /// Bytes of live video sent to it since start (RTP, with TCP framing).
    pub stream_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::PictureFlags;

    fn health(
        state: CameraState,
        reason: Option<HealthReason>,
        picture: PictureFlags,
    ) -> CameraHealth {
        CameraHealth {
            reason,
            picture,
            ..CameraHealth::new(state, Utc::now())
        }
    }

    #[test]
    fn covered_or_frozen_is_video_lost_and_a_camera_that_refuses_is_a_defect() {
        let covered = PictureFlags {
            blocked: true,
            ..PictureFlags::default()
        };
        let frozen = PictureFlags {
            frozen: true,
            ..PictureFlags::default()
        };
        let fine = PictureFlags::default();
        let of = |state, reason, picture| CameraTrouble::of(&health(state, reason, picture));
        assert_eq!(
            of(CameraState::Online, None, covered),
            Some(CameraTrouble::VideoLost)
        );
        assert_eq!(
            of(CameraState::Degraded, Some(HealthReason::LowFps), frozen),
            Some(CameraTrouble::VideoLost)
        );
        assert_eq!(of(CameraState::Online, None, fine), None);
        let turned = PictureFlags {
            scene_changed: true,
            ..PictureFlags::default()
        };
        assert_eq!(
            of(CameraState::Online, None, turned),
            None,
            "turned: still video"
        );
        for reason in [
            HealthReason::AuthFailed,
            HealthReason::InviteRefused,
            HealthReason::UnsupportedCodec,
        ] {
            assert_eq!(
                of(CameraState::Offline, Some(reason), fine),
                Some(CameraTrouble::Defect),
                "{reason:?}"
            );
        }
        for reason in [
            HealthReason::Unreachable,
            HealthReason::KeepaliveLost,
            HealthReason::DeviceOffline,
            HealthReason::NoMedia,
        ] {
            assert_eq!(
                of(CameraState::Offline, Some(reason), fine),
                None,
                "{reason:?}: only OFF"
            );
        }
        assert_eq!(
            of(CameraState::Offline, None, covered),
            None,
            "an old picture verdict"
        );
        assert_eq!(of(CameraState::Connecting, None, fine), None);
    }
}
