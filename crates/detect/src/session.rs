//! The onnxruntime session behind the [`Detector`] seam.

use crate::error::DetectError;
use crate::manifest::{Manifest, OutputFormat};
use crate::postprocess::{decode_ssd, decode_yolo, to_frame, Candidate};
use crate::preprocess::InputTensor;
use ort::environment::Environment;
use ort::ep::{TensorRT, CUDA};
use ort::session::builder::SessionBuilder;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::Path;
use tracing::warn;
use xueliang_core::{Detection, ExecutionProvider, ModelInput};

/// IoU above which YOLO candidates of one class are merged.
const NMS_IOU: f32 = 0.45;

/// Finds objects in a model-input picture. The seam tests substitute.
pub trait Detector: Send {
    /// Detections with score >= `min_score`, in pixels of a `frame_w x frame_h`
    /// frame (mapped back through the input's placement).
    fn detect(
        &mut self,
        input: &ModelInput,
        frame_w: u32,
        frame_h: u32,
        min_score: f32,
    ) -> Result<Vec<Detection>, DetectError>;
}

/// Loads the onnxruntime shared library (once per process) and creates the
/// process's one environment, with errors that say how to fix a missing or
/// wrong library.
pub fn load_onnxruntime(path: &Path) -> Result<Environment, DetectError> {
    if !path.is_file() {
        return Err(DetectError::RuntimeMissing {
            path: path.to_owned(),
        });
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| DetectError::RuntimeLoad {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let builder = ort::init_from(&absolute).map_err(|e| DetectError::RuntimeLoad {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    builder
        .with_name("xueliang")
        .build()
        .map_err(|e| DetectError::RuntimeLoad {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

pub struct OrtDetector {
    manifest: Manifest,
    session: Session,
    tensor: InputTensor,
    provider: ExecutionProvider,
}

/// Registers the first of `wanted` that this onnxruntime library has and
/// that starts on this machine, saying why each one before it was passed
/// over; the CPU is the last resort. Returns the one in use.
fn choose_provider(
    builder: &mut SessionBuilder,
    wanted: &[ExecutionProvider],
) -> ExecutionProvider {
    for &p in wanted {
        let result = match p {
            ExecutionProvider::Cpu => return ExecutionProvider::Cpu,
            ExecutionProvider::Cuda => register(builder, CUDA::default(), "CUDA"),
            ExecutionProvider::TensorRt => register(builder, TensorRT::default(), "TensorRT"),
        };
        match result {
            Ok(()) => return p,
            Err(why) => warn!(
                provider = p.as_str(),
                "{why}; trying the next execution provider"
            ),
        }
    }
    ExecutionProvider::Cpu
}

fn register<E: ort::ep::ExecutionProvider>(
    builder: &mut SessionBuilder,
    ep: E,
    name: &str,
) -> Result<(), String> {
    match E::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
            "this onnxruntime library has no {name} support (install the GPU build of onnxruntime)"
        ))
        }
        Err(e) => return Err(format!("cannot ask onnxruntime about {name}: {e}")),
    }
    ep.register(builder)
        .map_err(|e| format!("{name} did not start: {e}"))
}

impl OrtDetector {
    /// Builds a session from a manifest in the environment [`load_onnxruntime`] made.
    pub fn new(
        env: &Environment,
        manifest: Manifest,
        threads: usize,
    ) -> Result<OrtDetector, DetectError> {
        let bytes = manifest.read_model()?;
        Self::from_model(env, manifest, &bytes, threads, &[ExecutionProvider::Cpu])
    }

    /// Builds a session from model bytes already read (and checked) with
    /// [`Manifest::read_model`], so several workers read the file once.
    pub fn from_model(
        env: &Environment,
        manifest: Manifest,
        bytes: &[u8],
        threads: usize,
        providers: &[ExecutionProvider],
    ) -> Result<OrtDetector, DetectError> {
        let corrupt = |e: ort::Error| DetectError::ModelCorrupt {
            path: manifest.model_path.clone(),
            message: e.to_string(),
        };
        let mut builder = Session::builder(env).map_err(corrupt)?;
        if threads > 0 {
            builder = builder
                .with_intra_threads(threads)
                .map_err(|e| corrupt(e.into()))?;
        }
        let provider = choose_provider(&mut builder, providers);
        let session = builder.commit_from_memory(bytes).map_err(corrupt)?;
        let check = |name: &str, outlets: &[ort::value::Outlet], what: &str| {
            if outlets.iter().any(|o| o.name() == name) {
                Ok(())
            } else {
                let have: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
                Err(DetectError::ModelCorrupt {
                    path: manifest.model_path.clone(),
                    message: format!(
                        "the model has no {what} `{name}` (it has: {})",
                        have.join(", ")
                    ),
                })
            }
        };
        check(&manifest.input.name, session.inputs(), "input")?;
        match &manifest.output {
            OutputFormat::Ssd {
                boxes,
                classes,
                scores,
                count,
            } => {
                for n in [boxes, classes, scores, count] {
                    check(n, session.outputs(), "output")?;
                }
            }
            OutputFormat::Yolo { output } => check(output, session.outputs(), "output")?,
        }
        let tensor = InputTensor::new(&manifest.input);
        Ok(OrtDetector {
            manifest,
            session,
            tensor,
            provider,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The execution provider the session runs on.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    fn run(&mut self, min_score: f32) -> Result<Vec<Candidate>, ort::Error> {
        let name = self.manifest.input.name.as_str();
        let outputs = match &self.tensor {
            InputTensor::U8 { shape, data } => self.session.run(
                ort::inputs![name => TensorRef::from_array_view((*shape, data.as_slice()))?],
            )?,
            InputTensor::F32 { shape, data } => self.session.run(
                ort::inputs![name => TensorRef::from_array_view((*shape, data.as_slice()))?],
            )?,
        };
        let g = self.manifest.input.geometry;
        Ok(match &self.manifest.output {
            OutputFormat::Ssd {
                boxes,
                classes,
                scores,
                count,
            } => {
                let (_, b) = outputs[boxes.as_str()].try_extract_tensor::<f32>()?;
                let (_, c) = outputs[classes.as_str()].try_extract_tensor::<f32>()?;
                let (_, s) = outputs[scores.as_str()].try_extract_tensor::<f32>()?;
                let (_, n) = outputs[count.as_str()].try_extract_tensor::<f32>()?;
                let n = n.first().copied().unwrap_or(0.0).max(0.0) as usize;
                decode_ssd(b, c, s, n, g.width, g.height, min_score)
            }
            OutputFormat::Yolo { output } => {
                let (shape, data) = outputs[output.as_str()].try_extract_tensor::<f32>()?;
                let dims: Vec<i64> = shape.iter().copied().collect();
                let (rows, cols) = match dims.as_slice() {
                    [1, r, c] | [r, c] => (*r as usize, *c as usize),
                    _ => {
                        return Err(ort::Error::new(format!(
                            "unexpected YOLO output shape {dims:?}"
                        )))
                    }
                };
                decode_yolo(data, rows, cols, min_score, NMS_IOU)
            }
        })
    }
}

impl Detector for OrtDetector {
    fn detect(
        &mut self,
        input: &ModelInput,
        frame_w: u32,
        frame_h: u32,
        min_score: f32,
    ) -> Result<Vec<Detection>, DetectError> {
        self.tensor.fill(&self.manifest.input, input);
        let candidates = self
            .run(min_score)
            .map_err(|e| DetectError::Inference(e.to_string()))?;
        Ok(candidates
            .into_iter()
            .filter_map(|c| {
                let label = self.manifest.label(c.class_id)?.to_owned();
                let bbox = to_frame(&c.bbox, &input.placement, frame_w, frame_h);
                (bbox.area() > 0.0).then_some(Detection {
                    label,
                    class_id: c.class_id,
                    score: c.score,
                    bbox,
                })
            })
            .collect())
    }
}
