//! Plain domain types shared by every Xueliang stage, the configuration file,
//! and the small seams between stages (frame sinks, latest-frame slots).
//!
//! Only the types in this crate cross a stage boundary.

pub mod access;
pub mod availability;
pub mod camera;
pub mod camera_error;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod crossing;
pub mod detection;
pub mod detection_need;
pub mod event;
pub mod frame;
pub mod gb28181;
pub mod gb_alarm;
pub mod live_units;
pub mod luma;
pub mod paths;
pub mod proxies;
pub mod recorded_clips;
pub mod regions;
pub mod retry;
pub mod schedule;
pub mod secret;
pub mod slots;
pub mod stats;
pub mod telemetry;
pub mod zones;

pub use access::{
    AuditEntry, NewAuditEntry, NewUser, Role, TokenInfo, TokenKind, User, UserPatch, Workflow,
    WorkflowAction, WorkflowState, WorkflowStep,
};
pub use availability::{AvailabilityGroup, AvailabilityRow, HealthSample};
pub use camera::{
    CameraHealth, CameraRef, CameraState, CameraStats, CameraStatus, HealthReason, PictureFlags,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    CameraConfig, CameraDefaults, CameraError, ClipsConfig, ClusterConfig, Config, ConfigError,
    DetectionSettings, ExecutionProvider, HwAccel, LiveConfig,
};
pub use crossing::{Bucket, Crossing, CrossingCount, Direction};
pub use detection::{BBox, Detection, FrameDetections};
pub use detection_need::{DetectionNeed, NeedBoard};
pub use event::{
    BoxRecord, ChangeKind, ClipInfo, Event, EventChange, EventKind, EventQuery, EventStatus,
    EventUpdate, NewEvent, Picture, TrackPoint, HEALTH_LABEL, STORE_LABEL,
};
pub use frame::{
    DecodedFrame, EncodedFrame, FrameSink, InputGeometry, ModelInput, PushOutcome, ResizeMode,
    VideoCodec,
};
pub use live_units::{LiveUnit, LiveUnits, LiveUnitsError};
pub use proxies::TrustedProxies;
pub use recorded_clips::{RecordedClip, RecordedClips, RecordedClipsError};
pub use retry::RetryPolicy;
pub use schedule::{ScheduleWindow, Window};
pub use secret::Secret;
pub use slots::LatestFrameSlots;
pub use stats::{StatsKey, StatsQuery, StatsRow};
