//! The TOML configuration file: parsing, defaults and validation.
//!
//! Cameras are parsed one by one so that every error names the camera
//! (`cameras[2] (id "east-gate")`) and the field.
//!
//! One file per section of the file: `server.rs`, `storage.rs`,
//! `detector.rs`, `decode.rs`, `ingest.rs`, `live.rs`, `clips.rs`, `detection.rs`, `health.rs` and
//! `camera.rs` (one `[[cameras]]` table). `file.rs` holds [`Config`], which
//! puts them together; `camera_defaults.rs` what a camera inherits;
//! `tables.rs` the TOML/JSON helpers they share. `[organisation]` and
//! `[alerts]` are kept as tables and read by the alerts crate.
//!
//! A new section `[name]`: a file `name.rs` here with its struct, its
//! `Default` and a `validate` returning the message without the section's
//! name; a field in `RawConfig` and `Config` and a line in `Config::parse`
//! (`file.rs`); its types re-exported below. Its tests go in `tests/`.

mod camera;
mod camera_defaults;
mod clips;
mod cluster;
mod decode;
mod detection;
mod detector;
mod file;
pub mod gb28181;
mod health;
mod ingest;
mod live;
mod server;
mod storage;
mod tables;
#[cfg(test)]
mod tests;

pub use crate::camera_error::CameraError;
pub use camera::{redact_userinfo, CameraConfig, RawCamera};
pub use camera_defaults::CameraDefaults;
pub use clips::ClipsConfig;
pub use cluster::ClusterConfig;
pub use decode::{DecodeConfig, HwAccel};
pub use detection::DetectionSettings;
pub use detector::{
    DetectorConfig, ExecutionProvider, DEFAULT_BATCH, DEFAULT_MODEL, DEFAULT_ONNXRUNTIME, MAX_BATCH,
};
pub use file::{Config, ConfigError};
pub use gb28181::{gb_channel_of, Gb28181Config};
pub use health::{HealthDefaults, HealthSettings};
pub use ingest::IngestConfig;
pub use live::LiveConfig;
pub use server::ServerConfig;
pub use storage::StorageConfig;
pub use tables::toml_to_json;
