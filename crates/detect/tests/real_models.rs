//! The detector against real onnxruntime: the tiny YOLO-format model the tests
//! ship (its outputs are known, see tests/fixtures/make_tiny_yolo.py) and the
//! default SSD model on a frame of the test footage.
//!
//! Needs `scripts/setup.sh` to have run (onnxruntime library, footage).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use xueliang_core::regions::Region;
use xueliang_core::{BBox, CameraRef, DecodedFrame, InputGeometry, ModelInput};
use xueliang_detect::{
    load_onnxruntime, merge_regions, region_input, DetectError, Detector, Manifest, OrtDetector,
    Picture,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env() -> &'static ort::environment::Environment {
    static ENV: OnceLock<ort::environment::Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = repo().join(xueliang_core::config::DEFAULT_ONNXRUNTIME);
        load_onnxruntime(&lib).expect("onnxruntime (run scripts/setup.sh)")
    })
}

fn detector(manifest: &str) -> OrtDetector {
    let m = Manifest::load(&repo().join(manifest)).unwrap();
    OrtDetector::new(env(), m, 1).unwrap()
}

/// A frame of one colour placed into the model input as the decode stage does.
fn model_input(geometry: InputGeometry, frame_w: u32, frame_h: u32, rgb: [u8; 3]) -> ModelInput {
    let p = geometry.placement(frame_w, frame_h);
    let fill = match geometry.resize {
        xueliang_core::ResizeMode::Letterbox { fill } => fill,
        xueliang_core::ResizeMode::Stretch => 0,
    };
    let (w, h) = (geometry.width, geometry.height);
    let mut data = vec![fill; (w * h * 3) as usize];
    for y in p.pad_y..p.pad_y + p.scaled_h {
        for x in p.pad_x..p.pad_x + p.scaled_w {
            let i = ((y * w + x) * 3) as usize;
            data[i..i + 3].copy_from_slice(&rgb);
        }
    }
    ModelInput {
        width: w,
        height: h,
        rgb: data,
        placement: p,
    }
}

fn close(a: &BBox, b: &BBox) -> bool {
    (a.x1 - b.x1).abs() < 0.5
        && (a.y1 - b.y1).abs() < 0.5
        && (a.x2 - b.x2).abs() < 0.5
        && (a.y2 - b.y2).abs() < 0.5
}

#[test]
fn yolo_model_red_square_frame_gives_two_persons_after_nms_scaled_to_the_frame() {
    let mut d = detector("tests/fixtures/tiny_yolo.toml");
    let g = d.manifest().input.geometry;
    // 128x128 red: no padding, scale 0.5. Person score = mean R = 1.0 for
    // candidates 0 and 2; candidate 1 (0.9, overlapping 0) goes to NMS.
    let found = d
        .detect(&model_input(g, 128, 128, [255, 0, 0]), 128, 128, 0.5)
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found
        .iter()
        .all(|f| f.label == "person" && (f.score - 1.0).abs() < 1e-4));
    assert!(
        found
            .iter()
            .any(|f| close(&f.bbox, &BBox::new(44.0, 24.0, 84.0, 104.0))),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| close(&f.bbox, &BBox::new(12.0, 12.0, 28.0, 28.0))),
        "{found:?}"
    );
}

#[test]
fn yolo_model_channel_order_blue_is_a_car() {
    let mut d = detector("tests/fixtures/tiny_yolo.toml");
    let g = d.manifest().input.geometry;
    let found = d
        .detect(&model_input(g, 64, 64, [0, 0, 255]), 64, 64, 0.5)
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].label, "car");
    assert!(
        close(&found[0].bbox, &BBox::new(50.0, 50.0, 58.0, 58.0)),
        "{found:?}"
    );
}

#[test]
fn yolo_model_letterboxed_wide_frame_maps_boxes_back_and_drops_boxes_in_the_padding() {
    let mut d = detector("tests/fixtures/tiny_yolo.toml");
    let g = d.manifest().input.geometry;
    // 128x64 -> 64x32 content with 16 rows of grey above and below. Mean R =
    // (1.0 + 114/255) / 2 = 0.72. Candidate 2 lies in the top padding.
    let found = d
        .detect(&model_input(g, 128, 64, [255, 0, 0]), 128, 64, 0.5)
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].score - 0.7235).abs() < 0.01, "{found:?}");
    assert!(
        close(&found[0].bbox, &BBox::new(44.0, 0.0, 84.0, 64.0)),
        "{found:?}"
    );
}

/// Frame 100 of the footage, scaled to 300x300 RGB by the ffmpeg CLI.
fn footage_frame_300() -> Vec<u8> {
    footage_frames_300("eq(n\\,100)", 1).remove(0)
}

/// `count` frames of the footage that `select` picks, 300x300 RGB each.
fn footage_frames_300(select: &str, count: usize) -> Vec<Vec<u8>> {
    let clip = repo().join("tests/fixtures/vtest-h264.mp4");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&clip)
        .args([
            "-vf",
            &format!("select={select},scale=300:300"),
            "-vsync",
            "0",
            "-frames:v",
            &count.to_string(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg CLI (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 300 * 300 * 3 * count);
    out.stdout
        .chunks(300 * 300 * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The model cut before its post-processing (models/cut-postprocess.py),
/// with the post-processing done in Rust, finds what the whole model finds
/// on frames of the footage: the same boxes and labels, scores within the
/// graph's uint8 quantisation of them (1/256). A batch gives each picture
/// exactly what a run of its own gives.
#[test]
fn the_raw_model_finds_what_the_whole_model_finds_and_batches_change_nothing() {
    let mut whole = detector("models/ssd_mobilenet_v2_coco_whole.toml");
    let mut raw = detector("models/ssd_mobilenet_v2_coco.toml");
    assert_eq!(whole.with_batch(4), 1, "the whole model runs one at a time");
    assert_eq!(raw.with_batch(4), 4);
    let g = raw.manifest().input.geometry;
    let inputs: Vec<ModelInput> = footage_frames_300("not(mod(n\\,40))", 16)
        .into_iter()
        .map(|rgb| ModelInput {
            width: 300,
            height: 300,
            rgb,
            placement: g.placement(768, 576),
        })
        .collect();
    let (floor, margin) = (0.3, 0.01);
    let mut compared = 0;
    for input in &inputs {
        let a = whole.detect(input, 768, 576, floor).unwrap();
        let b = raw.detect(input, 768, 576, floor).unwrap();
        // Each side's detection clearly above the floor is on the other side.
        for (from, to) in [(&a, &b), (&b, &a)] {
            for d in from.iter().filter(|d| d.score >= floor + margin) {
                assert!(
                    to.iter().any(|e| e.label == d.label
                        && (e.score - d.score).abs() <= 1.0 / 256.0
                        && (e.bbox.x1 - d.bbox.x1).abs() < 1.0
                        && (e.bbox.y1 - d.bbox.y1).abs() < 1.0
                        && (e.bbox.x2 - d.bbox.x2).abs() < 1.0
                        && (e.bbox.y2 - d.bbox.y2).abs() < 1.0),
                    "{d:?} has no match in {to:?}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 100, "only {compared} detections compared");
    let pictures: Vec<Picture> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| Picture {
            input,
            frame_w: 768,
            frame_h: 576,
            // Each picture's own threshold applies to its row.
            min_score: if i % 2 == 0 { 0.5 } else { 0.3 },
        })
        .collect();
    let batched = raw.detect_batch(&pictures).unwrap();
    assert_eq!(batched.len(), pictures.len(), "16 pictures in batches of 4");
    for (p, found) in pictures.iter().zip(&batched) {
        let alone = raw.detect(p.input, 768, 576, p.min_score).unwrap();
        assert_eq!(found, &alone);
    }
}

/// Asking for GPUs on a machine (and an onnxruntime library) without them
/// falls back to the CPU, which finds the same pedestrians.
#[test]
fn gpu_execution_providers_fall_back_to_the_cpu_here() {
    use xueliang_core::ExecutionProvider as Ep;
    let m = Manifest::load(&repo().join("models/ssd_mobilenet_v2_coco.toml")).unwrap();
    let model = m.read_model().unwrap();
    let mut d =
        OrtDetector::from_model(env(), m, &model, 1, &[Ep::TensorRt, Ep::Cuda, Ep::Cpu]).unwrap();
    assert_eq!(d.provider(), Ep::Cpu);
    let input = ModelInput {
        width: 300,
        height: 300,
        rgb: footage_frame_300(),
        placement: d.manifest().input.geometry.placement(768, 576),
    };
    let persons = d
        .detect(&input, 768, 576, 0.5)
        .unwrap()
        .into_iter()
        .filter(|f| f.label == "person")
        .count();
    assert!(persons >= 4, "{persons} persons on the CPU fallback");
}

#[test]
fn ssd_model_finds_the_pedestrians_of_the_footage() {
    let mut d = detector("models/ssd_mobilenet_v2_coco.toml");
    let g = d.manifest().input.geometry;
    let input = ModelInput {
        width: 300,
        height: 300,
        rgb: footage_frame_300(),
        placement: g.placement(768, 576),
    };
    let found = d.detect(&input, 768, 576, 0.5).unwrap();
    let persons: Vec<_> = found.iter().filter(|f| f.label == "person").collect();
    // Frame 100 shows four people walking near the camera and one far away;
    // the model scores four of them above 0.75 (models/PROVENANCE.md).
    assert!(persons.len() >= 4, "{found:?}");
    assert!(
        persons.iter().filter(|p| p.score > 0.75).count() >= 3,
        "{found:?}"
    );
    for f in &found {
        let b = f.bbox;
        assert!(
            b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 768.0 && b.y2 <= 576.0 && b.area() > 0.0,
            "{f:?}"
        );
    }
    // A person is taller than wide.
    assert!(
        persons.iter().all(|p| p.bbox.height() > p.bbox.width()),
        "{persons:?}"
    );
}

#[test]
fn a_missing_library_says_how_to_fix_it() {
    let e = load_onnxruntime(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
    assert!(matches!(e, DetectError::RuntimeMissing { .. }));
    assert!(e.to_string().contains("scripts/setup.sh"), "{e}");
}

#[test]
fn a_corrupt_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo().join("tests/fixtures");
    std::fs::copy(
        fixtures.join("tiny_yolo_labels.txt"),
        dir.path().join("tiny_yolo_labels.txt"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tiny_yolo.onnx"),
        b"\x08\x07garbage that is not a protobuf graph",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(fixtures.join("tiny_yolo.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("sha256"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("m.toml"), manifest).unwrap();
    let m = Manifest::load(&dir.path().join("m.toml")).unwrap();
    let e = OrtDetector::new(env(), m, 1)
        .err()
        .expect("garbage must not load");
    assert!(matches!(e, DetectError::ModelCorrupt { .. }), "{e}");
    assert!(e.to_string().contains("tiny_yolo.onnx"), "{e}");
}

/// `count` frames of the footage that `select` picks, as the decode stage
/// hands them on (I420 planes, no model input yet).
fn footage_frames_i420(select: &str, count: usize) -> Vec<DecodedFrame> {
    let (w, h) = (768usize, 576usize);
    let clip = repo().join("tests/fixtures/vtest-h264.mp4");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&clip)
        .args(["-vf", &format!("select={select}"), "-vsync", "0"])
        .args(["-frames:v", &count.to_string()])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("ffmpeg CLI (scripts/setup.sh installs it)");
    assert!(out.status.success());
    let size = w * h * 3 / 2;
    assert_eq!(out.stdout.len(), size * count);
    out.stdout
        .chunks(size)
        .map(|p| {
            let camera = CameraRef {
                index: 0,
                id: "walkway".into(),
            };
            let mut f = DecodedFrame::uniform(camera, w as u32, h as u32, 0, chrono::Utc::now());
            f.y = p[..w * h].to_vec();
            f.u = p[w * h..w * h * 5 / 4].to_vec();
            f.v = p[w * h * 5 / 4..].to_vec();
            f.model_input = None;
            f
        })
        .collect()
}

/// A region's model input is the frame's picture: the whole frame cut and
/// scaled by `region_input` matches ffmpeg's own scaling and conversion to
/// RGB (a mean difference of a few levels: bilinear against bicubic), and
/// the model finds the same people in both.
#[test]
fn a_region_input_is_the_picture_ffmpeg_makes() {
    let frame = footage_frames_i420("eq(n\\,100)", 1).remove(0);
    let whole = Region {
        x: 0,
        y: 0,
        w: 768,
        h: 576,
    };
    let ours = region_input(&frame, whole, 300, 300);
    let theirs = footage_frame_300();
    let mean_diff = ours
        .rgb
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / theirs.len() as f64;
    assert!(mean_diff < 4.0, "mean difference {mean_diff}");
    let mut d = detector("models/ssd_mobilenet_v2_coco.toml");
    let g = d.manifest().input.geometry;
    let reference = ModelInput {
        width: 300,
        height: 300,
        rgb: theirs,
        placement: g.placement(768, 576),
    };
    let a = d.detect(&ours, 768, 576, 0.5).unwrap();
    let b = d.detect(&reference, 768, 576, 0.5).unwrap();
    assert_eq!(a.len(), b.len(), "{a:?} against {b:?}");
    for x in &a {
        assert!(
            b.iter()
                .any(|y| y.label == x.label && y.bbox.iou(&x.bbox) > 0.8),
            "{x:?} in {b:?}"
        );
    }
}

/// On frames of the footage, the whole frame with four tiles (regions of
/// 432 px) finds far people the whole frame alone does not: the persons
/// under 60 px tall found grow, none found by the whole frame is lost in
/// the merge, and boxes stay inside the frame.
#[test]
fn regions_find_far_people_the_whole_frame_misses() {
    let mut d = detector("models/ssd_mobilenet_v2_coco.toml");
    let g = d.manifest().input.geometry;
    let tile = 432;
    let tiles: Vec<Region> = [
        (0, 0),
        (768 - tile, 0),
        (0, 576 - tile),
        (768 - tile, 576 - tile),
    ]
    .iter()
    .map(|&(x, y)| Region {
        x,
        y,
        w: tile,
        h: tile,
    })
    .collect();
    let (mut small_whole, mut small_merged) = (0, 0);
    for frame in footage_frames_i420("not(mod(n\\,50))", 8) {
        let whole_input = region_input(
            &frame,
            Region {
                x: 0,
                y: 0,
                w: 768,
                h: 576,
            },
            g.width,
            g.height,
        );
        let whole = d.detect(&whole_input, 768, 576, 0.5).unwrap();
        let inputs: Vec<ModelInput> = tiles
            .iter()
            .map(|r| region_input(&frame, *r, g.width, g.height))
            .collect();
        let found: Vec<(Region, Vec<xueliang_core::Detection>)> = tiles
            .iter()
            .zip(&inputs)
            .map(|(r, input)| (*r, d.detect(input, r.w, r.h, 0.5).unwrap()))
            .collect();
        let merged = merge_regions(&whole, &found, 768, 576);
        for w in whole.iter().filter(|w| w.label == "person") {
            assert!(
                merged
                    .iter()
                    .any(|m| m.label == "person" && m.bbox.iou(&w.bbox) > 0.3),
                "{w:?} lost in {merged:?}"
            );
        }
        for m in &merged {
            assert!(
                m.bbox.x1 >= 0.0 && m.bbox.y1 >= 0.0 && m.bbox.x2 <= 768.0 && m.bbox.y2 <= 576.0
            );
        }
        let small = |found: &[xueliang_core::Detection]| {
            found
                .iter()
                .filter(|f| f.label == "person" && f.bbox.height() < 60.0)
                .count()
        };
        small_whole += small(&whole);
        small_merged += small(&merged);
    }
    assert!(
        small_merged >= small_whole + 4,
        "far persons: whole frame {small_whole}, with regions {small_merged}"
    );
}
