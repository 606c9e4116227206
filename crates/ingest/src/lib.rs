//! Per-camera ingest: one supervised tokio task per camera pulls encoded
//! frames from its [`FrameSource`] (RTSP over TCP with retina, or another
//! protocol's source) and hands them to a [`FrameSink`] without ever
//! blocking. Async code here only moves bytes and state.
//!
//! [`FrameSink`]: xueliang_core::FrameSink

mod classify;
mod rtsp;
mod source;
mod worker;

pub use classify::SessionError;
pub use rtsp::{RtspSession, RtspSource};
pub use source::{AccessUnit, FrameSource, SourceSession};
pub use worker::{spawn_supervised, CameraWorker, IngestSettings};
