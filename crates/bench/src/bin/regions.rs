//! `xueliang-regions`: what region detection finds and costs, measured
//! offline against a multi-scale reference on the same pictures.
//!
//! Each clip is replayed through the real decoder at the detection rate
//! (every picture due, not adaptive), with each camera's region settings
//! (its zones and lines from the recall bench's config, what moved from the
//! decoder's motion mask). Per picture the model looks:
//! - at the whole frame (what every camera does);
//! - at the whole frame and the picture's regions (region detection);
//! - at the reference: the whole frame, two overlapping crops of the
//!   frame's height at its left and right, and four overlapping tiles of
//!   3/4 of its height, merged (the "multi-scale union").
//!
//! A person of the reference (score >= the camera's threshold) is found
//! when a person of the same look overlaps it by IoU >= 0.5. Printed per
//! camera: the reference's persons, the share each look finds (all, and
//! those under 60 px tall), the model pictures per frame and the inference
//! time per frame.

#[path = "../recall/clips.rs"]
mod clips;
#[path = "../recall/offline.rs"]
mod offline;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use xueliang_core::regions::{Region, RegionLooks};
use xueliang_core::{CameraRef, CameraStats, DecodedFrame, Detection, InputGeometry};
use xueliang_decode::{ActivitySettings, CameraDecodeSpec, ReplayDecoder};
use xueliang_detect::{merge_regions, region_input, Detector, OrtDetector, Picture};

/// Persons shorter than this (frame pixels) are the far ones.
const SMALL_PX: f32 = 60.0;
const MATCH_IOU: f32 = 0.5;

#[derive(Parser, Debug)]
#[command(
    name = "xueliang-regions",
    version,
    about = "Recall and cost of region detection against a multi-scale reference",
    long_about = "Replays each clip through the real decoder at the detection rate and, per \
picture, runs the real model on the whole frame, on the whole frame plus the picture's regions \
(detection.regions, around what moved and around each camera's zones and lines), and on the \
reference (the whole frame, two crops of the frame's height, four tiles of 3/4 of it, merged). \
Prints the share of the reference's persons each finds (all, and those under 60 px tall), the \
model pictures per frame and the inference time per frame.\n\n\
Example:\n  cargo run --release -p xueliang-bench --bin xueliang-regions"
)]
struct Cli {
    /// Config whose cameras give the zones, lines and thresholds.
    #[arg(long, default_value = "crates/bench/recall/walkway.toml")]
    config: PathBuf,
    /// Clips to replay (comma-separated; see xueliang-recall).
    #[arg(long, value_delimiter = ',', default_value = "walkway")]
    clips: Vec<String>,
    /// Regions per frame (detection.regions), comma-separated settings.
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    regions: Vec<usize>,
    /// Detections per second.
    #[arg(long, default_value_t = 5.0)]
    fps: f64,
    /// Only the first this many seconds of each clip (0: all of it).
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
    /// Only these cameras of the config (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    cameras: Vec<String>,
    #[command(flatten)]
    paths: offline::Paths,
}

/// One look's tally over a run.
#[derive(Default)]
struct Tally {
    found: usize,
    found_small: usize,
    pictures: usize,
    seconds: f64,
    /// Of which cutting and scaling the regions.
    crop_seconds: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let offline::Offline {
        config,
        geometry,
        mut detector,
    } = offline::load(&cli.paths, &cli.config)?;
    if config.cameras.is_empty() {
        bail!("{}: no camera", cli.config.display());
    }
    let camera_ref = CameraRef {
        index: 0,
        id: "regions".into(),
    };
    println!(
        "{:<10} {:<8} {:>7} {:>6} {:>6} | {:>6} {:>6} {:>5} {:>8} {:>7}",
        "clip",
        "camera",
        "regions",
        "ref",
        "small",
        "found",
        "small",
        "pics",
        "ms/frame",
        "ms/crop"
    );
    for name in &cli.clips {
        let clip = clips::prepare(&cli.paths.repo, name)?;
        let mut packets = xueliang_decode::annexb_packets(
            &clip.annexb,
            clip.codec,
            &camera_ref,
            clip.fps,
            chrono::Utc::now(),
        )
        .with_context(|| format!("reading {}", clip.annexb.display()))?;
        if cli.seconds > 0.0 {
            packets.truncate((cli.seconds * clip.fps).ceil() as usize);
        }
        let cameras = config
            .cameras
            .iter()
            .filter(|c| cli.cameras.is_empty() || cli.cameras.contains(&c.id));
        for camera in cameras {
            let threshold = camera.detection.threshold("person").unwrap_or(0.5);
            for &max in &cli.regions {
                let mut looks = RegionLooks::of(camera);
                looks.max = max;
                let frames = decode(&packets, &camera_ref, cli.fps, looks, geometry)?;
                let mut reference_n = (0, 0);
                let (mut whole_t, mut region_t, mut reference_t) =
                    (Tally::default(), Tally::default(), Tally::default());
                for frame in &frames {
                    let whole = look(&mut detector, frame, &[], threshold, &mut whole_t)?;
                    let regions = look(
                        &mut detector,
                        frame,
                        &frame.regions,
                        threshold,
                        &mut region_t,
                    )?;
                    let reference = look(
                        &mut detector,
                        frame,
                        &reference_looks(frame.width, frame.height),
                        threshold,
                        &mut reference_t,
                    )?;
                    for r in persons(&reference, threshold) {
                        let small = r.bbox.height() < SMALL_PX;
                        reference_n.0 += 1;
                        reference_n.1 += small as usize;
                        for (found, tally) in [(&whole, &mut whole_t), (&regions, &mut region_t)] {
                            if persons(found, threshold).any(|d| d.bbox.iou(&r.bbox) >= MATCH_IOU) {
                                tally.found += 1;
                                tally.found_small += small as usize;
                            }
                        }
                    }
                }
                let n = frames.len().max(1) as f64;
                let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
                for (label, t) in [("whole", &whole_t), ("regions", &region_t)] {
                    let setting = if label == "whole" {
                        "0".to_owned()
                    } else {
                        max.to_string()
                    };
                    if label == "whole" && max != cli.regions[0] {
                        continue;
                    }
                    println!(
                        "{:<10} {:<8} {:>7} {:>6} {:>6} | {:>5.1}% {:>5.1}% {:>5.2} {:>8.1} {:>7.2}",
                        clip.name,
                        camera.id,
                        setting,
                        reference_n.0,
                        reference_n.1,
                        pct(t.found, reference_n.0),
                        pct(t.found_small, reference_n.1),
                        t.pictures as f64 / n,
                        1e3 * t.seconds / n,
                        1e3 * t.crop_seconds / (t.pictures as f64 - n).max(1.0),
                    );
                }
                if max == cli.regions[0] {
                    println!(
                        "{:<10} {:<8} {:>7} {:>6} {:>6} | {:>6} {:>6} {:>5.2} {:>8.1} {:>7.2}",
                        clip.name,
                        camera.id,
                        "ref",
                        reference_n.0,
                        reference_n.1,
                        "100%",
                        "100%",
                        reference_t.pictures as f64 / n,
                        1e3 * reference_t.seconds / n,
                        1e3 * reference_t.crop_seconds / (reference_t.pictures as f64 - n).max(1.0),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Every picture the decoder hands the detector at `fps`, with its regions.
fn decode(
    packets: &[xueliang_core::EncodedFrame],
    camera: &CameraRef,
    fps: f64,
    regions: RegionLooks,
    geometry: InputGeometry,
) -> Result<Vec<DecodedFrame>> {
    let spec = CameraDecodeSpec {
        camera: camera.clone(),
        stats: Arc::new(CameraStats::default()),
        detect_fps: fps,
        reduced_fps: fps,
        activity: ActivitySettings {
            idle_key_frames_only: false,
            ..Default::default()
        },
        regions,
    };
    let mut decoder = ReplayDecoder::new(spec, geometry);
    let frames: Vec<DecodedFrame> = packets
        .iter()
        .flat_map(|p| decoder.push(p.clone()))
        .filter(|f| f.model_input.is_some())
        .collect();
    if frames.is_empty() {
        bail!("the clip gave no picture to detect on");
    }
    Ok(frames)
}

/// The reference's looks at a `w x h` frame: two crops of the frame's
/// height at its left and right, and four tiles of 3/4 of its height at
/// its corners.
fn reference_looks(w: u32, h: u32) -> Vec<Region> {
    let side = h.min(w);
    let tile = (h * 3 / 4).min(w);
    let mut out = vec![
        Region {
            x: 0,
            y: 0,
            w: side,
            h: side,
        },
        Region {
            x: w - side,
            y: 0,
            w: side,
            h: side,
        },
    ];
    for (x, y) in [(0, 0), (w - tile, 0), (0, h - tile), (w - tile, h - tile)] {
        out.push(Region {
            x,
            y,
            w: tile,
            h: tile,
        });
    }
    out
}

/// The model on the whole frame and `regions`, merged.
fn look(
    detector: &mut OrtDetector,
    frame: &DecodedFrame,
    regions: &[Region],
    threshold: f32,
    tally: &mut Tally,
) -> Result<Vec<Detection>> {
    let whole_input = frame.model_input.as_ref().context("no model input")?;
    let started = Instant::now();
    let crops: Vec<_> = regions
        .iter()
        .map(|r| region_input(frame, *r, whole_input.width, whole_input.height))
        .collect();
    tally.crop_seconds += started.elapsed().as_secs_f64();
    let whole = detector.detect(whole_input, frame.width, frame.height, threshold)?;
    let mut found = Vec::with_capacity(regions.len());
    for (r, input) in regions.iter().zip(&crops) {
        let picture = Picture {
            input,
            frame_w: r.w,
            frame_h: r.h,
            min_score: threshold,
        };
        found.push((*r, detector.detect_batch(&[picture])?.remove(0)));
    }
    tally.seconds += started.elapsed().as_secs_f64();
    tally.pictures += 1 + regions.len();
    Ok(merge_regions(&whole, &found, frame.width, frame.height))
}

fn persons(found: &[Detection], threshold: f32) -> impl Iterator<Item = &Detection> {
    found
        .iter()
        .filter(move |d| d.label == "person" && d.score >= threshold)
}
