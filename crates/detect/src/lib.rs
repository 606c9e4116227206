//! Object detection with onnxruntime (through `ort`, loading the shared library
//! at run time). A model is described by a manifest (input size, layout, dtype,
//! normalisation, output format); SSD-style outputs (NMS in the graph), raw
//! SSD outputs (box decoding and NMS here) and YOLO-style outputs
//! (`[1, 4 + classes, N]`, NMS here) are understood. Models with a batch
//! dimension run several cameras' pictures in one call.
//!
//! Inference workers (one per core by default), each owning a session, serve
//! the cameras from their latest-frame slots.

mod error;
mod manifest;
mod postprocess;
mod preprocess;
mod regions;
mod session;
mod ssd_raw;
mod worker;

pub use error::DetectError;
pub use manifest::{InputSpec, Layout, Manifest, OutputFormat, TensorType};
pub use postprocess::{decode_ssd, decode_yolo, nms};
pub use preprocess::InputTensor;
pub use regions::{merge_regions, region_input};
pub use session::{load_onnxruntime, Detector, OrtDetector, Picture};
pub use ssd_raw::{decode_ssd_raw, RawOutputs, SsdRawParams};
pub use worker::{spawn_inference_workers, DetectedSink, InferenceCamera};
