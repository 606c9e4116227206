//! The pipeline of `xueliang serve`, from ingest's frame sink to the store
//! writer and the health monitor: the threads after ingest ([`Pipeline`]),
//! the running cameras and the changes made to them through the API
//! ([`CameraRegistry`]), each camera's compressed video for live view and
//! event clips ([`CameraMedia`], [`ClipRecorder`]), and the health monitor's task ([`HealthMonitor`]).
//! The binary keeps the command line, the configuration and start-up.
//!
//! Every channel states its when-full policy where it is made.

mod cameras;
mod clips;
mod cluster_host;
mod gb_channels;
mod gb_records;
mod media;
mod monitor;
mod pipeline;
mod shards;
mod store_writer;

pub use cameras::{merge_patch, parse_camera, CameraRegistry, RegistryParts};
pub use clips::ClipRecorder;
pub use cluster_host::RemoteCamera;
pub use gb_channels::{adopt_channels, is_video_channel};
pub use gb_records::StoredClips;
pub use media::{CameraMedia, LiveLimits};
pub use monitor::HealthMonitor;
pub use pipeline::{LatestFrame, Pipeline, PipelineCamera};
