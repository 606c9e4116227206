//! The onnxruntime session behind the [`Detector`] seam.

use crate::error::DetectError;
use crate::manifest::{Manifest, OutputFormat};
use crate::postprocess::{decode_ssd, decode_yolo, to_frame, Candidate};
use crate::preprocess::InputTensor;
use crate::ssd_raw::{decode_ssd_raw, RawOutputs};
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

/// One picture for [`Detector::detect_batch`]: its model input, the frame
/// it came from, and the camera's lowest threshold.
#[derive(Clone, Copy)]
pub struct Picture<'a> {
    pub input: &'a ModelInput,
    pub frame_w: u32,
    pub frame_h: u32,
    pub min_score: f32,
}

/// Finds objects in model-input pictures. The seam tests substitute.
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

    /// The most pictures [`Detector::detect_batch`] runs in one go.
    fn max_batch(&self) -> usize {
        1
    }

    /// Each picture's detections, in order, from one model run where the
    /// model takes a batch (at most [`Detector::max_batch`] pictures).
    fn detect_batch(&mut self, pictures: &[Picture]) -> Result<Vec<Vec<Detection>>, DetectError> {
        pictures
            .iter()
            .map(|p| self.detect(p.input, p.frame_w, p.frame_h, p.min_score))
            .collect()
    }
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
    /// Whether the model's input has a free batch dimension.
    batchable: bool,
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
            OutputFormat::SsdRaw {
                box_encodings,
                class_logits,
                anchors,
                ..
            } => {
                for n in [box_encodings, class_logits, anchors] {
                    check(n, session.outputs(), "output")?;
                }
            }
        }
        // A batch needs a free first dimension, and outputs read per row:
        // the in-graph SSD post-processing was converted for one picture.
        let batchable = !matches!(manifest.output, OutputFormat::Ssd { .. })
            && session
                .inputs()
                .iter()
                .find(|o| o.name() == manifest.input.name)
                .and_then(|o| o.dtype().tensor_shape())
                .is_some_and(|shape| shape.first() == Some(&-1));
        let tensor = InputTensor::new(&manifest.input, 1);
        Ok(OrtDetector {
            manifest,
            session,
            tensor,
            provider,
            batchable,
        })
    }

    /// Lets one run take up to `pictures` pictures where the model has a
    /// batch dimension (otherwise it stays at one); returns the batch size.
    pub fn with_batch(&mut self, pictures: usize) -> usize {
        let n = if self.batchable { pictures.max(1) } else { 1 };
        if n != self.tensor.capacity() {
            self.tensor = InputTensor::new(&self.manifest.input, n);
        }
        n
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The execution provider the session runs on.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// Runs the model on the filled rows; each row's candidates (the
    /// picture's `min_score` applies to its row).
    fn run(&mut self, min_scores: &[f32]) -> Result<Vec<Vec<Candidate>>, ort::Error> {
        let name = self.manifest.input.name.as_str();
        let outputs = match &self.tensor {
            InputTensor::U8 { shape, data } => {
                let len = shape.iter().product();
                self.session.run(
                    ort::inputs![name => TensorRef::from_array_view((*shape, &data[..len]))?],
                )?
            }
            InputTensor::F32 { shape, data } => {
                let len = shape.iter().product();
                self.session.run(
                    ort::inputs![name => TensorRef::from_array_view((*shape, &data[..len]))?],
                )?
            }
        };
        let g = self.manifest.input.geometry;
        let rows = min_scores.len();
        let row = |data, i| batch_row(data, rows, i);
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
                vec![decode_ssd(b, c, s, n, g.width, g.height, min_scores[0])]
            }
            OutputFormat::SsdRaw {
                box_encodings,
                class_logits,
                anchors,
                params,
            } => {
                let (_, e) = outputs[box_encodings.as_str()].try_extract_tensor::<f32>()?;
                let (_, l) = outputs[class_logits.as_str()].try_extract_tensor::<f32>()?;
                let (_, a) = outputs[anchors.as_str()].try_extract_tensor::<f32>()?;
                (0..rows)
                    .map(|i| {
                        let raw = RawOutputs {
                            encodings: row(e, i),
                            logits: row(l, i),
                            anchors: a,
                        };
                        decode_ssd_raw(&raw, params, g.width, g.height, min_scores[i])
                    })
                    .collect()
            }
            OutputFormat::Yolo { output } => {
                let (shape, data) = outputs[output.as_str()].try_extract_tensor::<f32>()?;
                let dims: Vec<i64> = shape.iter().copied().collect();
                let (r, c) = match dims.as_slice() {
                    [b, r, c] if *b as usize == rows => (*r as usize, *c as usize),
                    [r, c] if rows == 1 => (*r as usize, *c as usize),
                    _ => {
                        return Err(ort::Error::new(format!(
                            "unexpected YOLO output shape {dims:?} for {rows} pictures"
                        )))
                    }
                };
                (0..rows)
                    .map(|i| decode_yolo(row(data, i), r, c, min_scores[i], NMS_IOU))
                    .collect()
            }
        })
    }
}

/// Row `i` of a `[rows, ...]` output (empty if the output is too short).
fn batch_row(data: &[f32], rows: usize, i: usize) -> &[f32] {
    let n = data.len() / rows.max(1);
    data.get(i * n..(i + 1) * n).unwrap_or(&[])
}

impl Detector for OrtDetector {
    fn detect(
        &mut self,
        input: &ModelInput,
        frame_w: u32,
        frame_h: u32,
        min_score: f32,
    ) -> Result<Vec<Detection>, DetectError> {
        let picture = Picture {
            input,
            frame_w,
            frame_h,
            min_score,
        };
        Ok(self.detect_batch(&[picture])?.pop().unwrap_or_default())
    }

    fn max_batch(&self) -> usize {
        self.tensor.capacity()
    }

    fn detect_batch(&mut self, pictures: &[Picture]) -> Result<Vec<Vec<Detection>>, DetectError> {
        let mut found = Vec::with_capacity(pictures.len());
        for chunk in pictures.chunks(self.tensor.capacity()) {
            let inputs: Vec<&ModelInput> = chunk.iter().map(|p| p.input).collect();
            self.tensor.fill(&self.manifest.input, &inputs);
            let scores: Vec<f32> = chunk.iter().map(|p| p.min_score).collect();
            let rows = self
                .run(&scores)
                .map_err(|e| DetectError::Inference(e.to_string()))?;
            for (p, candidates) in chunk.iter().zip(rows) {
                found.push(self.to_detections(candidates, p));
            }
        }
        Ok(found)
    }
}

impl OrtDetector {
    /// Labels the candidates and maps them to the picture's frame.
    fn to_detections(&self, candidates: Vec<Candidate>, p: &Picture) -> Vec<Detection> {
        candidates
            .into_iter()
            .filter_map(|c| {
                let label = self.manifest.label(c.class_id)?.to_owned();
                let bbox = to_frame(&c.bbox, &p.input.placement, p.frame_w, p.frame_h);
                (bbox.area() > 0.0).then_some(Detection {
                    label,
                    class_id: c.class_id,
                    score: c.score,
                    bbox,
                })
            })
            .collect()
    }
}
