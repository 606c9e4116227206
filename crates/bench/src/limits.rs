//! The machine's limits, measured in the same run as the pipeline: decoding
//! the clip with `ffmpeg -threads 1 -benchmark`, and the model's bare
//! inference time through the same onnxruntime session code the pipeline uses.

use crate::procfs;
use crate::stats;
use anyhow::{bail, Context, Result};
use ort::environment::Environment;
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use xueliang_core::ModelInput;
use xueliang_detect::{Detector, Manifest, OrtDetector, Picture};

#[derive(Clone, Debug, Serialize)]
pub struct FfmpegDecode {
    /// The filter applied after decoding, if any (`-vf`).
    pub filter: Option<String>,
    /// Copies of the clip decoded at once, interleaved on ffmpeg's one
    /// thread (as a decode thread interleaves its cameras).
    pub inputs: u32,
    /// Frames decoded per try (the clip's frames times the loops).
    pub frames: u64,
    /// Frames that came out of the filter.
    pub frames_out: u64,
    /// The best (least CPU) of the tries.
    pub utime_s: f64,
    pub stime_s: f64,
    pub rtime_s: f64,
    pub tries: u32,
    /// Decoded frames per second of CPU time: one core's decode throughput.
    pub frames_per_cpu_s: f64,
    /// CPU time per decoded frame, microseconds.
    pub cpu_us_per_frame: f64,
}

/// What `ffmpeg -benchmark` printed: `bench: utime=1.182s stime=0.001s rtime=3.374s`
/// and the last `frame=  1590` of its progress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FfmpegOutput {
    pub frames: u64,
    pub utime_s: f64,
    pub stime_s: f64,
    pub rtime_s: f64,
}

pub fn parse_ffmpeg_benchmark(stderr: &str) -> Option<FfmpegOutput> {
    let mut frames = None;
    // Progress lines are separated by '\r'.
    for part in stderr.split(['\r', '\n']) {
        if let Some(rest) = part.trim_start().strip_prefix("frame=") {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                frames = Some(n);
            }
        }
    }
    let bench = stderr.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("bench: ")
            .filter(|r| r.starts_with("utime="))
    })?;
    let field = |name: &str| -> Option<f64> {
        bench
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.strip_suffix('s'))
            .and_then(|v| v.parse().ok())
    };
    Some(FfmpegOutput {
        frames: frames?,
        utime_s: field("utime=")?,
        stime_s: field("stime=")?,
        rtime_s: field("rtime=")?,
    })
}

/// How ffmpeg is asked to decode the clip.
#[derive(Clone, Copy, Debug, Default)]
pub struct FfmpegJob<'a> {
    /// The clip is played this many extra times.
    pub loops: u32,
    /// A filter applied after decoding (`-vf`).
    pub filter: Option<&'a str>,
    /// Copies of the clip decoded at once on the one thread (1 if 0).
    pub inputs: u32,
    /// Frames decoded per try when ffmpeg's count is not that (a filter's
    /// output frames are fewer; with several inputs it counts the first):
    /// from a run of one input without filter, times `inputs`.
    pub decoded_frames: Option<u64>,
}

/// Decodes the clip as `job` says with one thread, `tries` times; keeps the
/// try with the least CPU time (noise from other processes only adds).
pub fn ffmpeg_decode(clip: &Path, job: FfmpegJob, tries: u32) -> Result<FfmpegDecode> {
    let inputs = job.inputs.max(1);
    let mut best: Option<FfmpegOutput> = None;
    for _ in 0..tries.max(1) {
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-benchmark",
            "-filter_threads",
            "1",
        ]);
        for _ in 0..inputs {
            cmd.args(["-threads", "1"])
                .args(["-stream_loop", &job.loops.to_string(), "-i"])
                .arg(clip);
        }
        for i in 0..inputs {
            cmd.args(["-map", &format!("{i}:v"), "-an"]);
            if let Some(f) = job.filter {
                cmd.args(["-vf", f]);
            }
            cmd.args(["-f", "null", "-"]);
        }
        let out = cmd
            .output()
            .context("running ffmpeg (apt-get install ffmpeg)")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!(
                "ffmpeg failed: {}",
                stderr.lines().last().unwrap_or_default()
            );
        }
        let parsed = parse_ffmpeg_benchmark(&stderr)
            .with_context(|| format!("no `bench:` line in ffmpeg's output: {stderr}"))?;
        let cpu = |o: &FfmpegOutput| o.utime_s + o.stime_s;
        if best.as_ref().is_none_or(|b| cpu(&parsed) < cpu(b)) {
            best = Some(parsed);
        }
    }
    let b = best.expect("at least one try");
    let cpu = (b.utime_s + b.stime_s).max(1e-6);
    let frames = job.decoded_frames.unwrap_or(b.frames).max(1);
    Ok(FfmpegDecode {
        filter: job.filter.map(str::to_owned),
        inputs,
        frames,
        frames_out: b.frames,
        utime_s: b.utime_s,
        stime_s: b.stime_s,
        rtime_s: b.rtime_s,
        tries: tries.max(1),
        frames_per_cpu_s: frames as f64 / cpu,
        cpu_us_per_frame: cpu * 1e6 / frames as f64,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct BareInference {
    pub threads: usize,
    /// Pictures per model run; the figures below are per picture.
    pub batch: usize,
    pub runs: u32,
    pub wall_ms_mean: f64,
    pub wall_ms_p50: f64,
    pub wall_ms_p99: f64,
    /// CPU time of the whole bench process (onnxruntime's pool included) per inference.
    pub cpu_ms_per_inference: f64,
    /// Inferences per second one session can do back to back: 1000 / mean wall ms.
    pub max_per_s: f64,
    /// Detections found on the test picture (a sanity check that the model works).
    pub detections: usize,
}

/// A model input made from one frame of the clip (ffmpeg scales it to the
/// placement the pipeline would use), so inference sees a real picture.
pub fn model_input_from_clip(
    clip: &Path,
    manifest: &Manifest,
    frame: (u32, u32),
) -> Result<ModelInput> {
    let g = manifest.input.geometry;
    let placement = g.placement(frame.0, frame.1);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-ss", "12", "-i"])
        .arg(clip)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!(
            "scale={}:{}",
            placement.scaled_w, placement.scaled_h
        ))
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .context("running ffmpeg to grab a frame")?;
    let (sw, sh) = (placement.scaled_w as usize, placement.scaled_h as usize);
    if out.stdout.len() != sw * sh * 3 {
        bail!(
            "ffmpeg gave {} bytes for a {sw}x{sh} RGB frame: {}",
            out.stdout.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (w, h) = (g.width as usize, g.height as usize);
    let fill = match g.resize {
        xueliang_core::ResizeMode::Letterbox { fill } => fill,
        xueliang_core::ResizeMode::Stretch => 0,
    };
    let mut rgb = vec![fill; w * h * 3];
    let (px, py) = (placement.pad_x as usize, placement.pad_y as usize);
    for row in 0..sh {
        let dst = ((py + row) * w + px) * 3;
        rgb[dst..dst + sw * 3].copy_from_slice(&out.stdout[row * sw * 3..(row + 1) * sw * 3]);
    }
    Ok(ModelInput {
        width: g.width,
        height: g.height,
        rgb,
        placement,
    })
}

/// Times back-to-back inferences (after `warmup` untimed ones) for each thread
/// count, in this process, with the pipeline's own session code, `batch`
/// pictures a run where the model takes a batch (the result says what it
/// took; figures are per picture). The counts take turns over `rounds`
/// rounds of `runs / rounds` runs, and each count keeps its fastest round:
/// on a shared machine other processes only ever make a round slower.
#[allow(clippy::too_many_arguments)]
pub fn bare_inference(
    env: &Environment,
    manifest_path: &Path,
    clip: &Path,
    frame: (u32, u32),
    thread_counts: &[usize],
    batch: usize,
    warmup: u32,
    runs: u32,
    rounds: u32,
) -> Result<Vec<BareInference>> {
    let manifest = Manifest::load(manifest_path).context("loading the model manifest")?;
    let input = model_input_from_clip(clip, &manifest, frame)?;
    let ticks = procfs::clock_ticks();
    let rounds = rounds.max(1);
    let per_round = (runs / rounds).max(1);
    let mut best: Vec<Option<BareInference>> = vec![None; thread_counts.len()];
    for _ in 0..rounds {
        for (slot, &threads) in thread_counts.iter().enumerate() {
            let mut det = OrtDetector::new(env, manifest.clone(), threads)
                .context("creating the onnxruntime session")?;
            let took = det.with_batch(batch);
            let picture = Picture {
                input: &input,
                frame_w: frame.0,
                frame_h: frame.1,
                min_score: 0.5,
            };
            let pictures = vec![picture; took];
            let mut detections = 0;
            for _ in 0..warmup {
                detections = det.detect_batch(&pictures)?[0].len();
            }
            let cpu0 = procfs::read_self_stat().map(|s| s.ticks()).unwrap_or(0);
            let start = Instant::now();
            let mut walls = Vec::with_capacity(per_round as usize);
            for _ in 0..per_round {
                let t = Instant::now();
                det.detect_batch(&pictures)?;
                walls.push(t.elapsed().as_secs_f64() * 1e3 / took as f64);
            }
            let total_s = start.elapsed().as_secs_f64();
            let cpu1 = procfs::read_self_stat().map(|s| s.ticks()).unwrap_or(0);
            drop(det); // joins onnxruntime's threads before the next measurement
            let n = (walls.len() * took) as f64;
            let wall_mean = total_s * 1e3 / n;
            let this = BareInference {
                threads,
                batch: took,
                runs: walls.len() as u32,
                wall_ms_mean: wall_mean,
                wall_ms_p50: stats::percentile(&walls, 50.0).unwrap_or(0.0),
                wall_ms_p99: stats::percentile(&walls, 99.0).unwrap_or(0.0),
                cpu_ms_per_inference: (cpu1.saturating_sub(cpu0)) as f64 / ticks * 1e3 / n,
                max_per_s: 1e3 / wall_mean,
                detections,
            };
            if best[slot]
                .as_ref()
                .is_none_or(|b| this.wall_ms_mean < b.wall_ms_mean)
            {
                best[slot] = Some(this);
            }
        }
    }
    Ok(best.into_iter().flatten().collect())
}

/// A set of onnxruntime session options tried for the bare inference time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionVariant {
    /// onnxruntime's defaults (all graph optimisations, spinning intra-op pool).
    Default,
    /// No graph optimisation at all.
    NoOptimisation,
    /// Basic (level 1) graph optimisations only.
    BasicOptimisation,
    /// All optimisations but without fusing QuantizeLinear/DequantizeLinear pairs
    /// into quantised kernels (`session.disable_quant_qdq = 1`).
    NoQdqFusion,
    /// Intra-op threads block instead of spinning between and after runs
    /// (`session.intra_op.allow_spinning = 0`).
    NoSpinning,
}

impl SessionVariant {
    pub const ALL: [SessionVariant; 5] = [
        SessionVariant::Default,
        SessionVariant::NoOptimisation,
        SessionVariant::BasicOptimisation,
        SessionVariant::NoQdqFusion,
        SessionVariant::NoSpinning,
    ];
}

#[derive(Clone, Debug, Serialize)]
pub struct VariantTiming {
    pub variant: SessionVariant,
    pub threads: usize,
    pub runs: u32,
    pub wall_ms_mean: f64,
    pub cpu_ms_per_inference: f64,
}

/// Times the raw session (input tensor in, outputs not decoded) under each
/// variant and thread count: which session options the figures call for.
/// Only for uint8 NHWC/NCHW or float32 inputs as the manifest says; the picture
/// is the same frame of the clip as for [`bare_inference`].
pub fn session_variants(
    env: &Environment,
    manifest_path: &Path,
    clip: &Path,
    frame: (u32, u32),
    threads: &[usize],
    runs: u32,
) -> Result<Vec<VariantTiming>> {
    use ort::session::builder::GraphOptimizationLevel;
    use ort::session::Session;
    use ort::value::TensorRef;
    use xueliang_detect::InputTensor;

    let manifest = Manifest::load(manifest_path).context("loading the model manifest")?;
    let bytes = manifest.read_model()?;
    let input = model_input_from_clip(clip, &manifest, frame)?;
    let mut tensor = InputTensor::new(&manifest.input, 1);
    tensor.fill(&manifest.input, &[&input]);
    let name = manifest.input.name.clone();
    let ticks = procfs::clock_ticks();
    let e = |e: ort::Error<ort::session::builder::SessionBuilder>| anyhow::anyhow!("{e}");
    let mut out = Vec::new();
    for &t in threads {
        for variant in SessionVariant::ALL {
            let mut b = Session::builder(env)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_intra_threads(t)
                .map_err(e)?;
            b = match variant {
                SessionVariant::Default => b,
                SessionVariant::NoOptimisation => b
                    .with_optimization_level(GraphOptimizationLevel::Disable)
                    .map_err(e)?,
                SessionVariant::BasicOptimisation => b
                    .with_optimization_level(GraphOptimizationLevel::Level1)
                    .map_err(e)?,
                SessionVariant::NoQdqFusion => b.with_quant_qdq(false).map_err(e)?,
                SessionVariant::NoSpinning => b.with_intra_op_spinning(false).map_err(e)?,
            };
            let mut session = b
                .commit_from_memory(&bytes)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut once = || -> Result<()> {
                match &tensor {
                    InputTensor::U8 { shape, data } => {
                        session.run(ort::inputs![name.as_str() => TensorRef::from_array_view((*shape, data.as_slice()))?])?;
                    }
                    InputTensor::F32 { shape, data } => {
                        session.run(ort::inputs![name.as_str() => TensorRef::from_array_view((*shape, data.as_slice()))?])?;
                    }
                }
                Ok(())
            };
            for _ in 0..10 {
                once()?;
            }
            let cpu0 = procfs::read_self_stat().map(|s| s.ticks()).unwrap_or(0);
            let start = Instant::now();
            for _ in 0..runs.max(1) {
                once()?;
            }
            let wall = start.elapsed().as_secs_f64();
            let cpu1 = procfs::read_self_stat().map(|s| s.ticks()).unwrap_or(0);
            let n = runs.max(1) as f64;
            out.push(VariantTiming {
                variant,
                threads: t,
                runs: runs.max(1),
                wall_ms_mean: wall * 1e3 / n,
                cpu_ms_per_inference: cpu1.saturating_sub(cpu0) as f64 / ticks * 1e3 / n,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ffmpeg_benchmark_output() {
        let stderr = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':\n\
            frame=  120 fps=0.0 q=-0.0 size=N/A time=00:00:04.80 bitrate=N/A speed=9.5x    \r\
            frame= 1590 fps=473 q=-0.0 Lsize=N/A time=00:01:03.60 bitrate=N/A speed=18.9x    \n\
            video:733kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown\n\
            bench: utime=1.182s stime=0.001s rtime=3.374s\n\
            bench: maxrss=58108kB\n";
        let o = parse_ffmpeg_benchmark(stderr).unwrap();
        assert_eq!(o.frames, 1590);
        assert_eq!(o.utime_s, 1.182);
        assert_eq!(o.stime_s, 0.001);
        assert_eq!(o.rtime_s, 3.374);
    }

    #[test]
    fn ffmpeg_output_without_bench_line_is_none() {
        assert_eq!(parse_ffmpeg_benchmark("frame= 10 fps=0\n"), None);
        assert_eq!(
            parse_ffmpeg_benchmark("bench: utime=1.0s stime=0.0s rtime=1.0s\n"),
            None
        );
    }
}
