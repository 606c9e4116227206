//! A running camera's own compressed video, unit by unit, for whoever
//! forwards it as it is (GB/T 28181 cascade: PS over RTP to a superior
//! platform). The pipeline keeps the camera's access units beside ingest
//! (crates/pipeline/src/media.rs) and implements [`LiveUnits`]; nothing is
//! decoded or encoded, and no second connection to the camera is opened.

use crate::frame::VideoCodec;
use bytes::Bytes;
use futures::stream::BoxStream;

/// One access unit of a camera's video (Annex B, parameter sets before key
/// frames as ingest hands them on).
#[derive(Clone, Debug)]
pub struct LiveUnit {
    pub codec: VideoCodec,
    pub is_key: bool,
    /// Presentation time in 90 kHz ticks since the start of the camera's
    /// session.
    pub pts: i64,
    pub data: Bytes,
}

/// Why a camera's units cannot be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiveUnitsError {
    #[error("no camera \"{0}\"")]
    UnknownCamera(String),
    #[error("camera \"{0}\" is not running on this node")]
    NotRunning(String),
}

/// The units of a camera from its next key frame on. The stream ends when
/// the camera stops; a subscriber that falls behind skips to the next key
/// frame (so what it gets always decodes).
pub trait LiveUnits: Send + Sync {
    fn subscribe(&self, camera_id: &str) -> Result<BoxStream<'static, LiveUnit>, LiveUnitsError>;
}
