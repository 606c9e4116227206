//! Per-camera RTSP ingest: one supervised tokio task per camera pulls encoded
//! frames with retina (TCP interleaved) and hands them to a [`FrameSink`]
//! without ever blocking. Async code here only moves bytes and state.
//!
//! [`FrameSink`]: xueliang_core::FrameSink

mod classify;
mod worker;

pub use classify::SessionError;
pub use worker::{spawn_supervised, CameraWorker, IngestSettings};
