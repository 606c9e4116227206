//! The model manifest: a TOML file beside the model that says how to feed it
//! and how to read its outputs.

use crate::error::DetectError;
use crate::ssd_raw::SsdRawParams;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use xueliang_core::{InputGeometry, ResizeMode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nhwc,
    Nchw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorType {
    Uint8,
    Float32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Resize {
    Stretch,
    Letterbox,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    name: String,
    width: u32,
    height: u32,
    layout: Layout,
    dtype: TensorType,
    resize: Resize,
    #[serde(default = "zeros")]
    mean: [f32; 3],
    #[serde(default = "ones")]
    std: [f32; 3],
    #[serde(default = "gray")]
    letterbox_fill: u8,
}

fn zeros() -> [f32; 3] {
    [0.0; 3]
}
fn ones() -> [f32; 3] {
    [1.0; 3]
}
fn gray() -> u8 {
    114
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "format", rename_all = "lowercase")]
enum RawOutput {
    Ssd {
        boxes: String,
        classes: String,
        scores: String,
        count: String,
    },
    Yolo {
        output: String,
    },
    #[serde(rename = "ssd_raw")]
    SsdRaw {
        box_encodings: String,
        class_logits: String,
        anchors: String,
        #[serde(default = "ssd_iou")]
        iou: f32,
        #[serde(default = "ssd_max")]
        max_per_class: usize,
        #[serde(default = "ssd_max")]
        max_detections: usize,
        #[serde(default = "yes")]
        background: bool,
    },
}

fn ssd_iou() -> f32 {
    0.6
}
fn ssd_max() -> usize {
    20
}
fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    file: PathBuf,
    labels: PathBuf,
    sha256: Option<String>,
    input: RawInput,
    output: RawOutput,
}

/// How the model wants its input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub geometry: InputGeometry,
    pub layout: Layout,
    pub dtype: TensorType,
    /// float32 only: `value = (pixel / 255 - mean[c]) / std[c]`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// How to read the model's outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputFormat {
    /// boxes `[1, N, 4]` (ymin, xmin, ymax, xmax normalised), classes `[1, N]`,
    /// scores `[1, N]`, count `[1]`; NMS done in the graph.
    Ssd {
        boxes: String,
        classes: String,
        scores: String,
        count: String,
    },
    /// One `[1, 4 + classes, N]` tensor: (cx, cy, w, h) in input pixels, then
    /// one score per class; NMS done by us.
    Yolo { output: String },
    /// An SSD cut before its post-processing: box encodings `[B, A, 4]`,
    /// class logits `[B, A, classes]` and the anchors `[A, 4]`; box
    /// decoding, sigmoid and NMS done by us (crate::ssd_raw).
    SsdRaw {
        box_encodings: String,
        class_logits: String,
        anchors: String,
        params: SsdRawParams,
    },
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub name: String,
    pub model_path: PathBuf,
    pub sha256: Option<String>,
    pub labels: Vec<String>,
    pub input: InputSpec,
    pub output: OutputFormat,
}

impl Manifest {
    /// Reads a manifest and its labels file; paths inside are relative to it.
    pub fn load(path: &Path) -> Result<Manifest, DetectError> {
        let err = |message: String| DetectError::Manifest {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let raw: RawManifest = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let labels_path = dir.join(&raw.labels);
        let labels_text = std::fs::read_to_string(&labels_path)
            .map_err(|e| err(format!("labels file {}: {e}", labels_path.display())))?;
        let labels: Vec<String> = labels_text.lines().map(|l| l.trim().to_owned()).collect();
        if labels.iter().all(String::is_empty) {
            return Err(err(format!(
                "labels file {} is empty",
                labels_path.display()
            )));
        }
        let i = raw.input;
        if i.width == 0 || i.height == 0 || i.width > 4096 || i.height > 4096 {
            return Err(err(format!(
                "input size {}x{} is out of range",
                i.width, i.height
            )));
        }
        if i.std.contains(&0.0) {
            return Err(err("input.std must not contain 0".into()));
        }
        let resize = match i.resize {
            Resize::Stretch => ResizeMode::Stretch,
            Resize::Letterbox => ResizeMode::Letterbox {
                fill: i.letterbox_fill,
            },
        };
        let output = match raw.output {
            RawOutput::Ssd {
                boxes,
                classes,
                scores,
                count,
            } => OutputFormat::Ssd {
                boxes,
                classes,
                scores,
                count,
            },
            RawOutput::Yolo { output } => OutputFormat::Yolo { output },
            RawOutput::SsdRaw {
                box_encodings,
                class_logits,
                anchors,
                iou,
                max_per_class,
                max_detections,
                background,
            } => {
                if !(iou > 0.0 && iou <= 1.0) {
                    return Err(err(format!("output.iou {iou} must be in (0, 1]")));
                }
                if max_per_class == 0 || max_detections == 0 {
                    return Err(err(
                        "output.max_per_class and output.max_detections must be at least 1".into(),
                    ));
                }
                OutputFormat::SsdRaw {
                    box_encodings,
                    class_logits,
                    anchors,
                    params: SsdRawParams {
                        iou,
                        max_per_class,
                        max_detections,
                        background,
                    },
                }
            }
        };
        Ok(Manifest {
            name: raw.name,
            model_path: dir.join(raw.file),
            sha256: raw.sha256.map(|s| s.to_ascii_lowercase()),
            labels,
            input: InputSpec {
                name: i.name,
                geometry: InputGeometry {
                    width: i.width,
                    height: i.height,
                    resize,
                },
                layout: i.layout,
                dtype: i.dtype,
                mean: i.mean,
                std: i.std,
            },
            output,
        })
    }

    /// Reads the model file, checking it against the manifest's sha256.
    pub fn read_model(&self) -> Result<Vec<u8>, DetectError> {
        let bytes = std::fs::read(&self.model_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DetectError::ModelMissing {
                    path: self.model_path.clone(),
                }
            } else {
                DetectError::ModelCorrupt {
                    path: self.model_path.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        if let Some(expected) = &self.sha256 {
            let actual = hex::encode(Sha256::digest(&bytes));
            if &actual != expected {
                return Err(DetectError::ModelCorrupt {
                    path: self.model_path.clone(),
                    message: format!("sha256 is {actual}, the manifest expects {expected}"),
                });
            }
        }
        Ok(bytes)
    }

    pub fn label(&self, class_id: u32) -> Option<&str> {
        self.labels
            .get(class_id as usize)
            .map(String::as_str)
            .filter(|l| !l.is_empty() && *l != "???" && *l != "n/a")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const YOLO: &str = r#"
name = "t"
file = "m.onnx"
labels = "l.txt"
[input]
name = "images"
width = 64
height = 32
layout = "nchw"
dtype = "float32"
resize = "letterbox"
[output]
format = "yolo"
output = "output0"
"#;

    #[test]
    fn reads_a_yolo_manifest_with_defaults() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "l.txt", "person\ncar\n");
        let m = Manifest::load(&write(d.path(), "m.toml", YOLO)).unwrap();
        assert_eq!(m.labels, vec!["person", "car"]);
        assert_eq!(m.input.geometry.resize, ResizeMode::Letterbox { fill: 114 });
        assert_eq!(
            m.output,
            OutputFormat::Yolo {
                output: "output0".into()
            }
        );
        assert_eq!(m.model_path, d.path().join("m.onnx"));
    }

    #[test]
    fn reads_a_raw_ssd_manifest_and_checks_its_numbers() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "l.txt", "person\n");
        let raw = YOLO.replace(
            "format = \"yolo\"\noutput = \"output0\"",
            "format = \"ssd_raw\"\nbox_encodings = \"b\"\nclass_logits = \"c\"\nanchors = \"a\"",
        );
        let m = Manifest::load(&write(d.path(), "m.toml", &raw)).unwrap();
        let OutputFormat::SsdRaw { params, .. } = m.output else {
            panic!("{:?}", m.output)
        };
        assert_eq!((params.iou, params.max_per_class), (0.6, 20));
        assert!(params.background);
        let bad = raw.replace("anchors = \"a\"", "anchors = \"a\"\niou = 1.5");
        let e = Manifest::load(&write(d.path(), "m.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("iou"), "{e}");
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let d = tempfile::tempdir().unwrap();
        let e = Manifest::load(&write(d.path(), "m.toml", YOLO))
            .unwrap_err()
            .to_string();
        assert!(e.contains("l.txt"), "{e}");
        write(d.path(), "l.txt", "person\n");
        let e = Manifest::load(&write(d.path(), "m.toml", &YOLO.replace("nchw", "chw")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("layout") || e.contains("chw"), "{e}");
        let m = Manifest::load(&write(d.path(), "m.toml", YOLO)).unwrap();
        let e = m.read_model().unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn a_model_that_does_not_match_its_sha256_is_corrupt() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "l.txt", "person\n");
        write(d.path(), "m.onnx", "not a model");
        let text = YOLO.replace("labels = \"l.txt\"", "labels = \"l.txt\"\nsha256 = \"00\"");
        let m = Manifest::load(&write(d.path(), "m.toml", &text)).unwrap();
        let e = m.read_model().unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains("sha256"), "{e}");
    }
}
