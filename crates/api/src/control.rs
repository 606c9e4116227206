//! The seam between the API and the running cameras: the API lists them and
//! asks for changes; the binary's implementation validates, persists and
//! applies them to the workers without a restart.

use crate::video::{LiveFeed, LiveRefusal};
use crate::CameraView;
use futures::future::BoxFuture;
use xueliang_core::CameraConfig;

/// Why a camera change was refused.
#[derive(Debug)]
pub enum CameraChangeError {
    /// The body is not a valid camera; `field` names the bad field (e.g.
    /// `url`, `detection.fps`), `message` says what is wrong without echoing
    /// any secret.
    Invalid { field: String, message: String },
    /// No camera with this id.
    NotFound(String),
    /// A camera with this id exists already (create).
    Conflict(String),
    /// The change could not be applied or stored; logged by the caller.
    Internal(String),
}

/// The cameras this process runs, and the changes an administrator can make.
///
/// Camera bodies are JSON objects with the fields of a `[[cameras]]` table in
/// the config file (`id`, `name`, `url`, `username`, `password`, `village`,
/// `grid`, `location`, `enabled`, `detection`, `health`, `zones`, `rules`,
/// `lines`, ...); the config's defaults apply to what they leave out.
pub trait CameraControl: Send + Sync {
    /// Every camera, enabled or not, in a stable order (config order, then
    /// cameras added through the API in the order they were added).
    fn list(&self) -> Vec<CameraView>;

    /// One camera by id.
    fn get(&self, id: &str) -> Option<CameraView> {
        self.list().into_iter().find(|c| c.config.id == id)
    }

    /// Adds a camera and starts it (if enabled). Persisted: it survives a restart.
    fn create(
        &self,
        body: serde_json::Value,
    ) -> BoxFuture<'_, Result<CameraConfig, CameraChangeError>>;

    /// Applies a JSON merge patch (RFC 7396) to a camera's definition; the
    /// camera's workers restart with the new definition, or stop when it is
    /// disabled (`{"enabled": false}`). A patch without `password` keeps the
    /// stored password. `id` cannot change.
    fn update(
        &self,
        id: &str,
        patch: serde_json::Value,
    ) -> BoxFuture<'_, Result<CameraConfig, CameraChangeError>>;

    /// Stops a camera and forgets it; its events stay in the store.
    fn delete(&self, id: &str) -> BoxFuture<'_, Result<(), CameraChangeError>>;

    /// The newest decoded frame of a running camera as JPEG, if there is one.
    fn latest_frame_jpeg(&self, id: &str) -> BoxFuture<'_, Option<Vec<u8>>>;

    /// Starts watching a running camera's live video (counted against the
    /// viewer limits until the feed's guard is dropped).
    fn live(&self, _id: &str) -> Result<LiveFeed, LiveRefusal> {
        Err(LiveRefusal::NotRunning)
    }

    /// Live video's and event clips' counters.
    fn media_totals(&self) -> MediaTotals {
        MediaTotals::default()
    }

    /// Whether the detector takes frames; `GET /readyz` reads it. The default
    /// says ready: `xueliang serve` loads the model and starts the inference
    /// workers before the API listens, and exits when it cannot. An
    /// implementation that can tell its detector stopped later (an inference
    /// thread that ended) says so here.
    fn detector_readiness(&self) -> Readiness {
        Readiness::Ready
    }
}

/// Whether a part of the process can do its work now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not ready, and why in words (shown by `/readyz`; never a secret).
    NotReady(String),
}

/// Live video's and event clips' counters, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaTotals {
    /// Viewers watching now.
    pub viewers: u64,
    /// Bytes sent to viewers since the start.
    pub bytes_sent: u64,
    /// Requests refused by a viewer limit since the start.
    pub refused: u64,
    /// Event clips stored since the start, and their bytes.
    pub clips_written: u64,
    pub clip_bytes: u64,
    /// Event clips lost: dropped (the writer was behind) or failed.
    pub clips_failed: u64,
    /// Bytes held now in the cameras' rings of recent video.
    pub ring_bytes: u64,
}

/// A fixed set of cameras that refuses changes: for tests of the read-only
/// API and for tools that serve a store without running cameras.
pub struct FixedCameras(pub Vec<CameraView>);

impl CameraControl for FixedCameras {
    fn list(&self) -> Vec<CameraView> {
        self.0.clone()
    }

    fn create(
        &self,
        _body: serde_json::Value,
    ) -> BoxFuture<'_, Result<CameraConfig, CameraChangeError>> {
        Box::pin(async {
            Err(CameraChangeError::Internal(
                "this server's cameras are fixed".into(),
            ))
        })
    }

    fn update(
        &self,
        _id: &str,
        _patch: serde_json::Value,
    ) -> BoxFuture<'_, Result<CameraConfig, CameraChangeError>> {
        Box::pin(async {
            Err(CameraChangeError::Internal(
                "this server's cameras are fixed".into(),
            ))
        })
    }

    fn delete(&self, _id: &str) -> BoxFuture<'_, Result<(), CameraChangeError>> {
        Box::pin(async {
            Err(CameraChangeError::Internal(
                "this server's cameras are fixed".into(),
            ))
        })
    }

    fn latest_frame_jpeg(&self, _id: &str) -> BoxFuture<'_, Option<Vec<u8>>> {
        Box::pin(async { None })
    }
}
