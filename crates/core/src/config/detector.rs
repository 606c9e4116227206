//! `[detector]`: the model, the onnxruntime library, inference workers and
//! threads, and the execution providers to try.

use serde::Deserialize;
use std::path::PathBuf;

/// The default onnxruntime library, where `scripts/setup.sh` puts it
/// (relative to the installation, see [`crate::paths::installed`]).
pub const DEFAULT_ONNXRUNTIME: &str = ".local/onnxruntime/libonnxruntime.so.1.32.0";
/// The default model manifest (relative to the installation).
pub const DEFAULT_MODEL: &str = "models/ssd_mobilenet_v2_coco.toml";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Path of the model manifest (TOML).
    pub model: PathBuf,
    /// Path of `libonnxruntime.so`; `ORT_DYLIB_PATH` overrides the default.
    pub onnxruntime: Option<PathBuf>,
    /// Inference workers, each with its own session and its share of the
    /// cameras; 0 = one per core.
    pub workers: usize,
    /// Threads onnxruntime may use for one inference; 0 = the cores divided
    /// among the workers (at least 1).
    pub threads: usize,
    /// Execution providers to try in order; the CPU is always the last resort.
    pub execution_providers: Vec<ExecutionProvider>,
    /// The most pictures of a worker's cameras one model run takes, where
    /// the model has a batch dimension (only pictures already waiting are
    /// taken: nothing waits for a batch to fill); 1 = one at a time.
    pub batch: usize,
}

/// The default `[detector] batch`: batches of 4 saved 6-9 % CPU per picture
/// against single runs here, 8 no more (docs/performance.md).
pub const DEFAULT_BATCH: usize = 4;
/// The largest `[detector] batch` accepted.
pub const MAX_BATCH: usize = 64;

/// Where onnxruntime runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// NVIDIA TensorRT (needs onnxruntime built with it, and a GPU).
    TensorRt,
    /// NVIDIA CUDA (needs the onnxruntime-gpu library and a GPU).
    Cuda,
    Cpu,
}

impl ExecutionProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::TensorRt => "tensorrt",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Cpu => "cpu",
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            model: crate::paths::installed(DEFAULT_MODEL),
            onnxruntime: None,
            workers: 0,
            threads: 0,
            execution_providers: vec![ExecutionProvider::Cpu],
            batch: DEFAULT_BATCH,
        }
    }
}

impl DetectorConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(format!(
                "field `batch`: {} is out of range (1 to {MAX_BATCH}; 1 runs one picture at a time)",
                self.batch
            ));
        }
        Ok(())
    }

    /// (workers, threads per worker) on a machine with `cores` cores.
    pub fn layout(&self, cores: usize) -> (usize, usize) {
        let workers = if self.workers == 0 {
            cores.max(1)
        } else {
            self.workers
        };
        let threads = if self.threads == 0 {
            (cores / workers).max(1)
        } else {
            self.threads
        };
        (workers, threads)
    }

    pub fn onnxruntime_path(&self) -> PathBuf {
        if let Some(p) = &self.onnxruntime {
            return p.clone();
        }
        match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) => PathBuf::from(p),
            None => crate::paths::installed(DEFAULT_ONNXRUNTIME),
        }
    }
}
