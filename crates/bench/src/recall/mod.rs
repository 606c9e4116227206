//! `xueliang-recall`: what adaptive detection costs in recall, measured.
//! Each clip is replayed twice through the real decoder, detector and
//! analytics of one camera (its zones and lines from a config): once with
//! every frame due at the full rate (`detection.adaptive = false`), once
//! adaptive. Printed side by side: inferences, line crossings per line and
//! direction, rule events with their start times, distinct tracks, objects
//! missed, and the delay from an object's first full-rate detection to its
//! first adaptive one; then what misses the targets (crossings and events
//! within 5 %, starts within 400 ms, no object tracked > 2 s missed).

mod clips;
mod compare;
mod offline;
mod pass;

use anyhow::{bail, Context, Result};
use clap::Parser;
use compare::Comparison;
use pass::Phase;
use serde::Serialize;
use std::path::PathBuf;
use xueliang_core::config::CameraConfig;

#[derive(Parser, Debug)]
#[command(
    name = "xueliang-recall",
    version,
    about = "Recall of adaptive detection against the full rate, on the same clips",
    long_about = "Replays each clip twice through the real decoder (activity gate, pacing, motion \
mask), the real detector and the real analytics of one camera, in stream time (no frame dropped, no \
clock): at the full rate, then adaptive. Prints inferences, line crossings per line and direction, \
rule events with their start times, distinct tracks, the objects the adaptive pass missed, and the \
delay from an object's first full-rate detection to its first adaptive one; then each target missed \
(crossings and rule events within 5 %, starts within 400 ms, no object that the full rate tracked \
for more than 2 s missed). Exits non-zero when a target is missed.\n\n\
Clips: walkway-d1 (the capacity bench's clip, 25 fps), walkway (the footage at 10 fps), waiting \
(the footage with four 20 s still periods), or MP4 paths. Needs the fixtures, the model and \
onnxruntime (scripts/setup.sh) and the ffmpeg command.\n\n\
Example:\n  cargo run --release -p xueliang-bench --bin xueliang-recall"
)]
struct Cli {
    /// Config whose cameras give the detection settings, zones and lines
    /// (their urls are not used); each clip is replayed for each camera.
    #[arg(long, default_value = "crates/bench/recall/walkway.toml")]
    config: PathBuf,
    /// Only these cameras of the config (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    cameras: Vec<String>,
    /// Clips to replay (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "walkway-d1,walkway,waiting"
    )]
    clips: Vec<String>,
    #[command(flatten)]
    paths: offline::Paths,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print each detection's need and tracks, and each event, on stderr.
    #[arg(long)]
    trace: bool,
    /// Skip the third pass (the full rate half a detection interval later,
    /// which gives the noise floor the shortfalls are judged against).
    #[arg(long)]
    no_noise: bool,
}

#[derive(Serialize)]
struct ClipReport {
    clip: String,
    camera: String,
    frames: u64,
    seconds: f64,
    inference_s_full: f64,
    inference_s_adaptive: f64,
    comparison: Comparison,
    /// The full rate against itself half an interval later.
    noise: Option<Comparison>,
    /// Adaptive's shortfalls beyond that noise.
    shortfalls: Vec<String>,
    /// What the shifted full rate itself misses against the full rate.
    noise_shortfalls: Vec<String>,
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let offline::Offline {
        config,
        geometry,
        mut detector,
    } = offline::load(&cli.paths, &cli.config)?;
    let cameras: Vec<&CameraConfig> = config
        .cameras
        .iter()
        .filter(|c| cli.cameras.is_empty() || cli.cameras.contains(&c.id))
        .collect();
    if cameras.is_empty() {
        bail!("{}: no camera (of {:?})", cli.config.display(), cli.cameras);
    }
    let mut reports = Vec::new();
    for name in &cli.clips {
        let clip = clips::prepare(&cli.paths.repo, name)?;
        let packets = xueliang_decode::annexb_packets(
            &clip.annexb,
            clip.codec,
            &xueliang_core::CameraRef {
                index: 0,
                id: "recall".into(),
            },
            clip.fps,
            chrono::Utc::now(),
        )
        .with_context(|| format!("reading {}", clip.annexb.display()))?;
        for camera in &cameras {
            let mut run = |adaptive: bool, phase: Option<Phase>| {
                if cli.trace {
                    eprintln!(
                        "== {} on {}, adaptive {adaptive}, phase {phase:?}",
                        camera.id, clip.name
                    );
                }
                let camera = with_adaptive(camera, adaptive);
                pass::run(&packets, &camera, &mut detector, geometry, phase, cli.trace)
            };
            let full = run(false, None)?;
            let adaptive = run(true, None)?;
            let noise = match Phase::half_interval(clip.fps, camera.detection.fps) {
                Some(phase) if !cli.no_noise => {
                    Some(Comparison::of(&full, &run(false, Some(phase))?))
                }
                _ => None,
            };
            let comparison = Comparison::of(&full, &adaptive);
            let report = ClipReport {
                clip: clip.name.clone(),
                camera: camera.id.clone(),
                frames: full.frames,
                seconds: full.frames as f64 / clip.fps,
                inference_s_full: full.inference_s,
                inference_s_adaptive: adaptive.inference_s,
                shortfalls: comparison.shortfalls_beyond(noise.as_ref()),
                noise_shortfalls: noise
                    .as_ref()
                    .map(Comparison::shortfalls)
                    .unwrap_or_default(),
                comparison,
                noise,
            };
            print(&report);
            reports.push(report);
        }
    }
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let missed: usize = reports.iter().map(|r| r.shortfalls.len()).sum();
    if missed > 0 {
        bail!("{missed} target(s) missed");
    }
    Ok(())
}

fn with_adaptive(camera: &CameraConfig, adaptive: bool) -> CameraConfig {
    let mut c = camera.clone();
    c.detection.adaptive = adaptive;
    c
}

fn print(r: &ClipReport) {
    let c = &r.comparison;
    println!(
        "\n== {} on {} ({} frames, {:.1} s)\n{:<40} {:>9} {:>9}",
        r.camera, r.clip, r.frames, r.seconds, "", "full", "adaptive"
    );
    if let Some(n) = &r.noise {
        print_noise(n, &r.noise_shortfalls);
    }
    println!(
        "{:<40} {:>9} {:>9}   {:+.0} %, {} woken by motion",
        "inferences",
        c.inferences_full,
        c.inferences_adaptive,
        100.0 * c.inference_change(),
        c.woken_by_motion
    );
    println!(
        "{:<40} {:>9.2} {:>9.2}",
        "inference time, s", r.inference_s_full, r.inference_s_adaptive
    );
    let reasons: Vec<String> = c.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("need after each adaptive detection: {}", reasons.join(", "));
    for row in &c.crossings {
        println!(
            "{:<40} {:>9} {:>9}",
            format!("crossings {}", row.key),
            row.full,
            row.adaptive
        );
    }
    for row in &c.events {
        println!(
            "{:<40} {:>9} {:>9}   {} paired, starts within {:.0} ms",
            format!("events {}", row.key),
            row.full,
            row.adaptive,
            row.paired,
            row.max_start_diff_s * 1e3
        );
    }
    println!(
        "{:<40} {:>9} {:>9}",
        "confirmed tracks", c.tracks_full, c.tracks_adaptive
    );
    println!(
        "{:<40} {:>9} {:>9}",
        format!("objects tracked > {} s / missed", compare::MUST_FIND_S),
        c.long_tracks,
        c.missed.len()
    );
    let d = &c.first_seen_delays_s;
    if !d.is_empty() {
        let q = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize] * 1e3;
        println!(
            "first adaptive detection after the first full-rate one: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms ({} objects)",
            q(0.5),
            q(0.9),
            q(1.0),
            d.len()
        );
    }
    if r.shortfalls.is_empty() {
        println!("targets: met (beyond the full rate's own noise)");
    }
    for s in &r.shortfalls {
        println!("target missed: {s}");
    }
}

/// The full rate against itself half an interval later, in one line: how
/// much two full-rate passes differ by chance.
fn print_noise(n: &Comparison, shortfalls: &[String]) {
    let counts: Vec<String> = n
        .crossings
        .iter()
        .map(|r| (&r.key, r.full, r.adaptive))
        .chain(n.events.iter().map(|r| (&r.key, r.full, r.adaptive)))
        .filter(|(_, a, b)| a != b)
        .map(|(k, a, b)| format!("{k} {a}/{b}"))
        .collect();
    let starts = n
        .events
        .iter()
        .fold(0.0, |m: f64, e| m.max(e.max_start_diff_s));
    println!(
        "noise (full rate half an interval later): confirmed tracks {}/{}, {} long objects missed, starts within {:.0} ms{}{}",
        n.tracks_full,
        n.tracks_adaptive,
        n.missed.len(),
        starts * 1e3,
        if counts.is_empty() { String::new() } else { format!(", counts {}", counts.join(", ")) },
        if shortfalls.is_empty() { String::new() } else { format!("; would miss {} target(s)", shortfalls.len()) },
    );
}
