//! Plain domain types shared by every Xueliang stage, the configuration file,
//! and the small seams between stages (frame sinks, latest-frame slots).
//!
//! Only the types in this crate cross a stage boundary.

pub mod camera;
pub mod config;
pub mod detection;
pub mod event;
pub mod frame;
pub mod secret;
pub mod slots;

pub use camera::{CameraRef, CameraState, CameraStats, CameraStatus, OfflineReason};
pub use config::{CameraConfig, Config, ConfigError, DetectionSettings};
pub use detection::{BBox, Detection, FrameDetections};
pub use event::{BoxRecord, Event, EventKind, EventQuery, EventStatus, NewEvent};
pub use frame::{
    DecodedFrame, EncodedFrame, FrameSink, InputGeometry, ModelInput, PushOutcome, ResizeMode,
    VideoCodec,
};
pub use secret::Secret;
pub use slots::LatestFrameSlots;
