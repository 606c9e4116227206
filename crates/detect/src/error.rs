use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "the onnxruntime library was not found at {path}. Run scripts/setup.sh (it puts \
         libonnxruntime.so.1.32.0 under .local/onnxruntime/), or point `[detector] onnxruntime` \
         or ORT_DYLIB_PATH at a libonnxruntime.so of version 1.32 or newer"
    )]
    RuntimeMissing { path: PathBuf },
    #[error("cannot load the onnxruntime library {path}: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("model manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("model file {path} is missing; the manifest names it (see models/PROVENANCE.md to rebuild it)")]
    ModelMissing { path: PathBuf },
    #[error("model file {path} is corrupt: {message}")]
    ModelCorrupt { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
}
