//! GB/T 28181 devices as the API shows them: what registered, from where,
//! when it was last heard of, and its channels.

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
}
