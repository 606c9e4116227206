//! The frame-source seam: where a camera's encoded video comes from. RTSP
//! ([`crate::RtspSource`]) is one source, GB/T 28181 another; the worker that
//! drives a source, and everything after ingest, does not know which.

use crate::classify::SessionError;
use std::future::Future;
use xueliang_core::VideoCodec;

/// One access unit as a source yields it: Annex B framed, parameter sets
/// before every key frame.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    pub codec: VideoCodec,
    pub data: Vec<u8>,
    pub is_key: bool,
    /// The stream's parameters (resolution, codec config) changed with this
    /// unit: the decoder must be rebuilt.
    pub new_parameters: bool,
    /// Presentation time in seconds since the start of the session.
    pub stream_time: f64,
    /// Transport packets lost before this unit (RTP sequence gaps).
    pub lost_packets: u32,
}

/// Where a camera's video comes from. `open` starts one session (connect,
/// ask for the stream); the worker calls it again, after a backoff, whenever
/// a session ends. `open` bounds its own steps with timeouts and returns
/// errors classified for the operator.
pub trait FrameSource: Send + Sync + 'static {
    type Session: SourceSession;

    fn open(&self) -> impl Future<Output = Result<Self::Session, SessionError>> + Send;
}

/// One open session of a [`FrameSource`]. Dropping it ends the session (the
/// source tells the peer where its protocol has a way to).
pub trait SourceSession: Send {
    /// The next access unit. `Ok(None)` means the peer ended the stream. The
    /// worker races this against shutdown and its own silence watchdog, so
    /// it may wait for as long as the peer is silent.
    fn next(&mut self) -> impl Future<Output = Result<Option<AccessUnit>, SessionError>> + Send;
}
