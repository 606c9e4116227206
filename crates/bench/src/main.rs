//! `xueliang-bench`: runs the real `xueliang serve` against N cameras served by
//! the real GStreamer RTSP server (tests/rtsp-server/serve.py), measures what it
//! costs from /proc and the API, and measures the machine's limits (ffmpeg
//! decoding the same clip on one thread, the model's bare inference time) in
//! the same run. See docs/performance.md.

mod http;
mod limits;
mod peers;
mod procfs;
mod run;
mod stats;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DEFAULT_CLIP: &str = "tests/fixtures/vtest-d1-25fps.mp4";
const CLIP_FPS: f64 = 25.0;
const CLIP_SIZE: (u32, u32) = (704, 576);

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "xueliang-bench",
    version,
    about = "Performance bench: the real xueliang binary against N cameras of the real RTSP server",
    long_about = "Performance bench: the real `xueliang serve` against N cameras served by the real \
GStreamer RTSP server (tests/rtsp-server/serve.py, looping the clip), with the machine's limits \
measured in the same run: `ffmpeg -threads 1 -benchmark` decoding the same clip (plain, with \
the scaling to the model input a decode thread does, and K copies interleaved on its one thread as a \
decode thread interleaves its cameras), and the model's bare inference time with one \
thread and with one per core (each run is compared with the layout xueliang logs at startup), plus \
the raw session under other onnxruntime session options.\n\n\
For each N it prints: process CPU as % of one core (from /proc/<pid>/stat), total and per camera, \
and by thread group; the CPU of the RTSP server and of everything else on the machine; stream fps \
received and detection fps achieved per camera (counter deltas from GET /api/v1/cameras over the \
measuring window); frames dropped before detection and before decoding; resident memory (VmRSS) \
total and per camera; frame-arrival-to-event-stored latency p50/p99 (recorded_at - started_at of \
the object events that started in the window); and the ratios to the limits.\n\n\
Columns: cpu% = xueliang, % of one core; %/cam = per camera; peer% = the cameras' side (the RTSP server, or the GB devices: sipp and the PS senders); other% = \
everything else on the machine; det fps = mean/slowest camera; drop dt/dc = frames dropped before \
detection/decoding; inf = inference workers x threads; dec us/f = decode threads' CPU per decoded \
frame; codec us/f, conv us/f = of that, inside the video decoder and converting pictures (the \
cameras' decode_cpu_seconds and convert_cpu_seconds); inf ms/d = inference CPU per detection; \
proc us/f = process CPU per received frame; dec/ffm, dec/ffs = ffmpeg's CPU per frame (plain, with \
scaling) / ours; codec/ffm, codec/ffK = ffmpeg's CPU per frame (one clip, K clips interleaved on \
its thread: --interleaved-inputs) / our decoder's; proc/ffm = ours / ffmpeg's; \
inf/bare = bare CPU per inference / ours; det/cap = detections/s / the bare sessions' back-to-back \
rate. A run keeps up with <= 1 % dropped before detection, >= 95 % of the detection rate and every \
camera online.\n\n\
Needs: the release `xueliang` binary next to this one (cargo build --release -p xueliang), \
Debian's /usr/bin/python3 with GStreamer (or, with --rtsp-peer light, \
xueliang-rtsp-peer next to this binary: cargo build --release -p xueliang-bench), the ffmpeg CLI, onnxruntime under .local/ \
(scripts/setup.sh). The clip is made by scripts/make-fixtures.sh when missing.\n\n\
Examples:\n  cargo run --release -p xueliang-bench -- --cameras 8 --seconds 60\n  \
cargo run --release -p xueliang-bench -- --find-max --seconds 30 --json bench.json"
)]
struct Cli {
    /// Numbers of cameras to run, one measurement each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "8")]
    cameras: Vec<usize>,
    /// Length of each measuring window, seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Warm-up after every camera is online, before the window starts, seconds.
    #[arg(long, default_value_t = 10.0)]
    warmup: f64,
    /// Raise N until detection falls behind (more than 1 % of frames dropped
    /// before detection, under 95 % of the configured detection rate, or a
    /// camera not online), narrow down where it stops keeping up, then where
    /// drops start below that; report the largest N sustained with nothing
    /// dropped (and the largest that kept up).
    #[arg(long)]
    find_max: bool,
    /// --find-max: first N; the ladder is N, 2N, 4N, then +8 each step.
    #[arg(long, default_value_t = 4)]
    start: usize,
    /// --find-max: never run more cameras than this.
    #[arg(long, default_value_t = 128)]
    max: usize,
    /// --find-max: narrow the limit down to within this many cameras.
    #[arg(long, default_value_t = 4)]
    resolution: usize,
    /// Detections per second per camera (`[detection] fps`).
    #[arg(long, default_value_t = 5.0)]
    detect_fps: f64,
    /// adaptive: the detection rate follows need (`[detection] adaptive`,
    /// min_fps 1: the default); full: every camera at --detect-fps always.
    #[arg(long, value_enum, default_value_t = DetectionMode::Adaptive)]
    detection: DetectionMode,
    /// busy: the D1 clip (pedestrians, cars); idle: a still picture of the same
    /// scene with light sensor noise, encoded like it at constant quality (made
    /// on first use under .local/cache/bench/).
    #[arg(long, value_enum, default_value_t = Scene::Busy)]
    scene: Scene,
    /// Serve this clip instead (an MP4 with H.264 or H.265 video).
    #[arg(long)]
    clip: Option<PathBuf>,
    /// How the cameras reach xueliang: rtsp (the GStreamer RTSP server), or
    /// gb28181 (a sipp device per camera, the clip as PS over RTP/UDP from
    /// gb28181-ps-send; needs sipp and the gb28181-ps-send binary next to
    /// xueliang). Several (`rtsp,gb28181`): each N is run with each, one
    /// after the other, and the CPU of each is compared with the first's
    /// (--find-max uses the first only).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "rtsp")]
    source: Vec<peers::Source>,
    /// The RTSP server of `--source rtsp`: gstreamer (tests/rtsp-server/serve.py,
    /// one pipeline per camera, as in the figures so far; it takes about a
    /// core per 100 cameras) or light (xueliang-rtsp-peer next to this
    /// executable: the clip packetized once, a task per camera; next to no
    /// CPU, for runs of hundreds of cameras).
    #[arg(long, value_enum, default_value_t = peers::RtspPeer::Gstreamer)]
    rtsp_peer: peers::RtspPeer,
    /// `[detector] threads` (per inference session); 0 = xueliang's default.
    #[arg(long, default_value_t = 0)]
    inference_threads: usize,
    /// `[detector] model`: the model manifest (default: the repository's
    /// default model, models/ssd_mobilenet_v2_coco.toml).
    #[arg(long)]
    model: Option<PathBuf>,
    /// `[detector] batch`: the most waiting pictures one model run takes;
    /// 0 = xueliang's default (the field is left out).
    #[arg(long, default_value_t = 0)]
    batch: usize,
    /// `[detection] regions`: crops per detected picture besides the whole
    /// frame (region detection); 0: the whole frame only.
    #[arg(long, default_value_t = 0)]
    regions: usize,
    /// `[detector] workers` (inference sessions); 0 = xueliang's default (the
    /// field is left out, for binaries that predate it).
    #[arg(long, default_value_t = 0)]
    inference_workers: usize,
    /// `[decode] threads`; 0 = xueliang's default (one per core).
    #[arg(long, default_value_t = 0)]
    decode_threads: usize,
    /// `[decode] hwaccel`: hardware decoders to try, in order (cuda, vaapi;
    /// comma-separated). Default: software.
    #[arg(long, value_delimiter = ',')]
    hwaccel: Vec<String>,
    /// `[detector] execution_providers` to try, in order (tensorrt, cuda,
    /// cpu; comma-separated). Default: the CPU.
    #[arg(long, value_delimiter = ',')]
    execution_providers: Vec<String>,
    /// Copies of the clip ffmpeg decodes at once on its one thread for the
    /// interleaved decode limit (a decode thread interleaves its cameras).
    #[arg(long, default_value_t = 8)]
    interleaved_inputs: u32,
    /// Back-to-back inferences timed for the bare inference limit.
    #[arg(long, default_value_t = 300)]
    infer_runs: u32,
    /// Skip measuring the limits (ffmpeg, bare inference).
    #[arg(long, conflicts_with = "limits_only")]
    skip_limits: bool,
    /// Measure only the limits; start no cameras.
    #[arg(long)]
    limits_only: bool,
    /// The xueliang binary; default: `xueliang` next to this executable.
    #[arg(long)]
    xueliang: Option<PathBuf>,
    /// The repository root (RTSP server, model, onnxruntime, fixtures).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The onnxruntime library (e.g. one from `onnxruntime-gpu` for the
    /// GPU execution providers); default: the one scripts/setup.sh puts
    /// under .local/.
    #[arg(long)]
    onnxruntime: Option<PathBuf>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Free text stored with the JSON results (e.g. the commit the xueliang
    /// binary was built from).
    #[arg(long)]
    note: Option<String>,
    /// Keep each run's config and logs (a temporary directory is printed).
    #[arg(long)]
    keep_logs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum DetectionMode {
    Adaptive,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Scene {
    Busy,
    Idle,
}

#[derive(Serialize)]
struct Report {
    tool: &'static str,
    version: &'static str,
    date: chrono::DateTime<chrono::Utc>,
    machine: Machine,
    xueliang: String,
    repo_commit: Option<String>,
    clip: String,
    args: Cli,
    limits: Option<Limits>,
    runs: Vec<RunEntry>,
    find_max: Option<FindMax>,
}

#[derive(Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
    memory_mb: u64,
    loadavg_at_start: [f64; 3],
}

#[derive(Serialize, Clone)]
struct Limits {
    ffmpeg_decode: limits::FfmpegDecode,
    /// ffmpeg doing what a decode thread does: decode every frame, and scale
    /// the frames due for detection to the model input (RGB24, bilinear) in one pass.
    ffmpeg_decode_scale: limits::FfmpegDecode,
    /// ffmpeg decoding `--interleaved-inputs` copies of the clip at once on
    /// its one thread, per decoded frame.
    ffmpeg_decode_interleaved: limits::FfmpegDecode,
    /// One entry per thread count; the first is the count xueliang runs with.
    inference: Vec<limits::BareInference>,
    /// The raw session's time under other onnxruntime session options.
    session_options: Vec<limits::VariantTiming>,
    /// Real-time cameras of this clip one core decodes (ffmpeg).
    decode_cameras_per_core: f64,
    /// Cameras one session using every core serves at the configured rate
    /// (back-to-back inferences per second / detection fps).
    inference_cameras_one_session: f64,
    /// The same for one single-threaded session per core, if they did not
    /// slow each other down.
    inference_cameras_session_per_core: f64,
    /// The same with the pipeline's batches (absent when the model takes none).
    inference_cameras_session_per_core_batched: Option<f64>,
    /// Cameras the machine could run if decode and inference were all it did:
    /// all cores / (decode CPU + the cheapest inference CPU, per camera-second).
    combined_cameras: f64,
}

#[derive(Serialize)]
struct RunEntry {
    cameras: usize,
    source: peers::Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<run::RunResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratios: Option<Ratios>,
}

#[derive(Serialize, Clone, Default)]
struct Ratios {
    /// ffmpeg's CPU per frame / our decode threads' CPU per frame (target >= 0.95).
    decode_vs_ffmpeg: Option<f64>,
    /// The same against ffmpeg decoding and scaling the frames due for detection
    /// (the same work as a decode thread).
    decode_vs_ffmpeg_scale: Option<f64>,
    /// ffmpeg's CPU per frame / the CPU inside our video decoder per frame
    /// (the cameras' own counters: decoding alone, without conversion).
    codec_vs_ffmpeg: Option<f64>,
    /// The same against ffmpeg decoding several copies of the clip
    /// interleaved on one thread, as our decode threads do.
    codec_vs_ffmpeg_interleaved: Option<f64>,
    /// Our whole process's CPU per received frame / ffmpeg's CPU per frame.
    process_per_frame_vs_ffmpeg: Option<f64>,
    /// Bare CPU per inference / our inference CPU per detection (1 = no overhead).
    inference_vs_bare: Option<f64>,
    /// Detections per second achieved / back-to-back inferences per second of
    /// the bare sessions (workers x one session's rate): the share of the
    /// inference capacity in use.
    detection_vs_bare_capacity: Option<f64>,
}

/// How one run went, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    /// It did not run (e.g. cameras never came online).
    Failed,
    /// Detection fell behind.
    Behind,
    /// Kept up, with some frames dropped (<= 1 %).
    KeepsUp,
    /// Kept up with nothing dropped.
    Clean,
}

impl Verdict {
    fn of(e: &RunEntry) -> Verdict {
        match &e.result {
            None => Verdict::Failed,
            Some(r) if r.nothing_dropped() => Verdict::Clean,
            Some(r) if r.keeps_up() => Verdict::KeepsUp,
            Some(_) => Verdict::Behind,
        }
    }
}

#[derive(Serialize)]
struct FindMax {
    /// Largest N that ran with nothing dropped and every camera online.
    max_nothing_dropped: Option<usize>,
    /// Largest N that kept up (<= 1 % dropped before detection, >= 95 % of the rate).
    max_keeping_up: Option<usize>,
    /// Smallest N that fell behind (or failed to run).
    first_behind: Option<usize>,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = real_main(cli) {
        eprintln!("xueliang-bench: {e:#}");
        std::process::exit(1);
    }
}

fn default_repo() -> PathBuf {
    let from_build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if from_build.join("tests/rtsp-server/serve.py").is_file() {
        from_build.canonicalize().unwrap_or(from_build)
    } else {
        PathBuf::from(".")
    }
}

fn real_main(cli: Cli) -> Result<()> {
    if cli.seconds <= 0.0 || cli.warmup < 0.0 || cli.detect_fps <= 0.0 {
        bail!("--seconds and --detect-fps must be > 0, --warmup >= 0");
    }
    if !cli.find_max && cli.cameras.contains(&0) {
        bail!("--cameras: every N must be at least 1");
    }
    // Absolute: the config written for each run is in a temporary
    // directory, and relative paths in a config are taken from there.
    let repo = std::path::absolute(cli.repo.clone().unwrap_or_else(default_repo))?;
    if !repo.join("tests/rtsp-server/serve.py").is_file() {
        bail!(
            "{} is not the repository root (no tests/rtsp-server/serve.py); use --repo",
            repo.display()
        );
    }
    let xueliang = match &cli.xueliang {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("executable directory")?
            .join("xueliang"),
    };
    if !xueliang.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p xueliang` (same target dir), or pass --xueliang",
            xueliang.display()
        );
    }
    let model = match &cli.model {
        Some(p) => std::path::absolute(p)?,
        None => repo.join("models/ssd_mobilenet_v2_coco.toml"),
    };
    let onnxruntime = match &cli.onnxruntime {
        Some(p) => std::path::absolute(p)?,
        None => repo.join(".local/onnxruntime/libonnxruntime.so.1.32.0"),
    };
    if !onnxruntime.is_file() {
        bail!(
            "{} is missing: run scripts/setup.sh (or name one with --onnxruntime)",
            onnxruntime.display()
        );
    }
    let clip = match (&cli.clip, cli.scene) {
        (Some(c), _) => c.clone(),
        (None, Scene::Busy) => ensure_busy_clip(&repo)?,
        (None, Scene::Idle) => ensure_idle_clip(&repo)?,
    };
    if !clip.is_file() {
        bail!("clip {} is missing", clip.display());
    }
    let clip = clip.canonicalize()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let machine = Machine {
        cores,
        cpu: cpu_model(),
        memory_mb: mem_total_mb(),
        loadavg_at_start: procfs::read_loadavg(),
    };
    println!(
        "xueliang-bench: {} ({} cores, {} MB), load {:.2} {:.2} {:.2}",
        machine.cpu,
        cores,
        machine.memory_mb,
        machine.loadavg_at_start[0],
        machine.loadavg_at_start[1],
        machine.loadavg_at_start[2]
    );
    println!("  xueliang: {}", xueliang.display());
    if cli.source.contains(&peers::Source::Rtsp) {
        println!("  RTSP server: {:?}", cli.rtsp_peer);
    }
    println!(
        "  clip: {} ({:?} scene), detection {} fps; [detector] workers {}, threads {}, batch {}; [decode] threads {}",
        clip.display(),
        cli.scene,
        cli.detect_fps,
        show_setting(cli.inference_workers),
        show_setting(cli.inference_threads),
        show_setting(cli.batch),
        show_setting(cli.decode_threads),
    );
    println!("  model: {}", model.display());
    println!("  note: a shared machine; other processes' CPU is reported as `other`.");

    let limits = if cli.skip_limits {
        None
    } else {
        Some(measure_limits(&cli, &onnxruntime, &model, &clip, cores)?)
    };
    if let Some(l) = &limits {
        print_limits(l, cli.detect_fps);
    }

    let spec_for = |n: usize, source: peers::Source| run::RunSpec {
        repo: repo.clone(),
        xueliang: xueliang.clone(),
        clip: clip.clone(),
        model: model.clone(),
        onnxruntime: onnxruntime.clone(),
        cameras: n,
        detect_fps: cli.detect_fps,
        adaptive: cli.detection == DetectionMode::Adaptive,
        warmup: Duration::from_secs_f64(cli.warmup),
        seconds: Duration::from_secs_f64(cli.seconds),
        inference_threads: cli.inference_threads,
        inference_workers: cli.inference_workers,
        batch: cli.batch,
        regions: cli.regions,
        decode_threads: cli.decode_threads,
        hwaccel: cli.hwaccel.clone(),
        execution_providers: cli.execution_providers.clone(),
        source,
        rtsp_peer: cli.rtsp_peer,
        keep_logs: cli.keep_logs,
    };
    let mut runs: Vec<RunEntry> = Vec::new();
    let first_source = cli.source.first().copied().unwrap_or_default();
    let measure_from = |n: usize, source: peers::Source, runs: &mut Vec<RunEntry>| -> Verdict {
        eprintln!("[bench] N = {n}: starting the cameras ({source:?}) and xueliang");
        let entry = match run::run(&spec_for(n, source)) {
            Ok(r) => {
                let ratios = limits.as_ref().map(|l| ratios(&r, l)).unwrap_or_default();
                RunEntry {
                    cameras: n,
                    source,
                    result: Some(r),
                    error: None,
                    ratios: Some(ratios),
                }
            }
            Err(e) => {
                eprintln!("[bench] N = {n} failed: {e:#}");
                RunEntry {
                    cameras: n,
                    source,
                    result: None,
                    error: Some(format!("{e:#}")),
                    ratios: None,
                }
            }
        };
        let verdict = Verdict::of(&entry);
        print_table(std::slice::from_ref(&entry));
        runs.push(entry);
        // A short pause so one run's teardown does not bleed into the next.
        std::thread::sleep(Duration::from_secs(3));
        verdict
    };
    let measure = |n: usize, runs: &mut Vec<RunEntry>| measure_from(n, first_source, runs);

    let mut find_max = None;
    if cli.find_max && !cli.limits_only {
        let step = cli.resolution.max(1);
        // 1. Up the ladder until detection falls behind.
        let mut lo: Option<usize> = None; // largest N that kept up
        let mut hi: Option<usize> = None; // smallest N that did not
        let mut n = cli.start.max(1);
        let mut steps = 0;
        while n <= cli.max {
            if measure(n, &mut runs) >= Verdict::KeepsUp {
                lo = Some(n);
            } else {
                hi = Some(n);
                break;
            }
            steps += 1;
            n = if steps < 3 { n * 2 } else { n + 8 };
        }
        // 2. Narrow down where it stops keeping up.
        if let (Some(mut l), Some(mut h)) = (lo, hi) {
            while h - l > step {
                let mid = (l + h) / 2;
                if measure(mid, &mut runs) >= Verdict::KeepsUp {
                    l = mid;
                } else {
                    h = mid;
                }
            }
            hi = Some(h);
        }
        // 3. Narrow down where drops start, below that.
        let below = |runs: &[RunEntry], clean: bool| -> Vec<usize> {
            runs.iter()
                .filter(|e| hi.is_none_or(|h| e.cameras < h))
                .filter(|e| (Verdict::of(e) == Verdict::Clean) == clean)
                .map(|e| e.cameras)
                .collect()
        };
        let clean_max = below(&runs, true).into_iter().max();
        let dirty_min = below(&runs, false)
            .into_iter()
            .filter(|n| clean_max.is_none_or(|c| *n > c))
            .min();
        if let (Some(mut c), Some(mut d)) = (clean_max, dirty_min) {
            while d - c > step {
                let mid = (c + d) / 2;
                if measure(mid, &mut runs) == Verdict::Clean {
                    c = mid;
                } else {
                    d = mid;
                }
            }
        }
        let largest = |v: Verdict| {
            runs.iter()
                .filter(|e| Verdict::of(e) >= v)
                .map(|e| e.cameras)
                .filter(|n| hi.is_none_or(|h| *n < h))
                .max()
        };
        find_max = Some(FindMax {
            max_nothing_dropped: largest(Verdict::Clean),
            max_keeping_up: largest(Verdict::KeepsUp),
            first_behind: hi,
        });
    } else if !cli.limits_only {
        for &n in &cli.cameras {
            for &source in &cli.source {
                measure_from(n, source, &mut runs);
            }
        }
    }

    println!();
    println!("== summary ==");
    print_table(&runs);
    print_rss_slope(&runs);
    print_source_comparison(&runs);
    if let Some(f) = &find_max {
        let show = |v: Option<usize>| v.map_or("none".to_owned(), |n| n.to_string());
        println!(
            "find-max: largest N with nothing dropped: {}; largest N keeping up: {}; first N behind: {}",
            show(f.max_nothing_dropped),
            show(f.max_keeping_up),
            show(f.first_behind)
        );
    }

    if let Some(path) = &cli.json {
        let report = Report {
            tool: "xueliang-bench",
            version: env!("CARGO_PKG_VERSION"),
            date: chrono::Utc::now(),
            machine,
            xueliang: xueliang.display().to_string(),
            repo_commit: git_head(&repo),
            clip: clip.display().to_string(),
            args: cli.clone(),
            limits,
            runs,
            find_max,
        };
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The busy clip: the D1 fixture, made by scripts/make-fixtures.sh when missing.
fn ensure_busy_clip(repo: &Path) -> Result<PathBuf> {
    let clip = repo.join(DEFAULT_CLIP);
    if !clip.is_file() {
        eprintln!("[bench] {DEFAULT_CLIP} is missing; running scripts/make-fixtures.sh");
        let status = Command::new(repo.join("scripts/make-fixtures.sh"))
            .current_dir(repo)
            .status()
            .context("running scripts/make-fixtures.sh")?;
        if !status.success() || !clip.is_file() {
            bail!("scripts/make-fixtures.sh did not make {DEFAULT_CLIP}");
        }
    }
    Ok(clip)
}

/// The idle clip: one frame of the busy clip held for the clip's length, with
/// light temporal noise (a real sensor's), encoded like the busy clip but with
/// constant quality (a camera's VBR mode, capped at the same 1.2 Mb/s), so the
/// bit rate falls when nothing moves as a camera's does.
fn ensure_idle_clip(repo: &Path) -> Result<PathBuf> {
    let busy = ensure_busy_clip(repo)?;
    let dir = repo.join(".local/cache/bench");
    let clip = dir.join("vtest-d1-25fps-still.mp4");
    if clip.is_file() {
        return Ok(clip);
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!("[bench] making the idle clip {}", clip.display());
    let part = dir.join(".still.part.mp4");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(&busy)
        .args([
            "-vf",
            "select=eq(n\\,0),loop=loop=794:size=1:start=0,setpts=N/(25*TB),noise=alls=3:allf=t",
            "-r",
            "25",
            "-frames:v",
            "795",
            "-an",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-threads:v",
            "1",
            "-preset",
            "medium",
            "-profile:v",
            "high",
            "-crf",
            "23",
            "-maxrate",
            "1200k",
            "-bufsize",
            "2000k",
            "-x264-params",
            "keyint=50:min-keyint=50:scenecut=0:bframes=0:open-gop=0",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            "-y",
        ])
        .arg(&part)
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg could not make the idle clip");
    }
    std::fs::rename(&part, &clip)?;
    Ok(clip)
}

fn measure_limits(
    cli: &Cli,
    onnxruntime: &Path,
    model: &Path,
    clip: &Path,
    cores: usize,
) -> Result<Limits> {
    eprintln!("[bench] limits: ffmpeg -threads 1 -benchmark (3 tries, clip looped 4 times)");
    let plays = 4;
    let one = limits::FfmpegJob {
        loops: plays - 1,
        ..Default::default()
    };
    let ffmpeg = limits::ffmpeg_decode(clip, one, 3)?;
    let manifest = xueliang_detect::Manifest::load(model).context("loading the model manifest")?;
    let p = manifest.input.geometry.placement(CLIP_SIZE.0, CLIP_SIZE.1);
    let every = (CLIP_FPS / cli.detect_fps).round().max(1.0) as u32;
    let filter = format!(
        "select=not(mod(n\\,{every})),scale={}:{}:flags=bilinear,format=rgb24",
        p.scaled_w, p.scaled_h
    );
    eprintln!("[bench] limits: ffmpeg -threads 1 -benchmark -vf {filter}");
    let scaled = limits::FfmpegJob {
        filter: Some(&filter),
        decoded_frames: Some(ffmpeg.frames),
        ..one
    };
    let ffmpeg_scale = limits::ffmpeg_decode(clip, scaled, 3)?;
    let k = cli.interleaved_inputs.max(1);
    eprintln!("[bench] limits: ffmpeg -threads 1 -benchmark, {k} copies of the clip interleaved");
    let interleaved = limits::FfmpegJob {
        inputs: k,
        decoded_frames: Some(ffmpeg.frames / u64::from(plays) * u64::from(k)),
        ..Default::default()
    };
    let ffmpeg_interleaved = limits::ffmpeg_decode(clip, interleaved, 3)?;
    // One thread (a session per core) and all cores (one session), and any
    // other count asked for.
    let mut counts = vec![1];
    for t in [cores, cli.inference_threads] {
        if t > 0 && !counts.contains(&t) {
            counts.push(t);
        }
    }
    eprintln!(
        "[bench] limits: bare inference, threads {counts:?}, {} runs each",
        cli.infer_runs
    );
    // One onnxruntime environment per process.
    let env = xueliang_detect::load_onnxruntime(onnxruntime).context("loading onnxruntime")?;
    let mut inference = limits::bare_inference(
        &env,
        model,
        clip,
        CLIP_SIZE,
        &counts,
        1,
        20,
        cli.infer_runs,
        3,
    )?;
    // Batched, as the pipeline runs it: one thread, the batch asked for.
    let batch = if cli.batch == 0 {
        xueliang_core::config::DEFAULT_BATCH
    } else {
        cli.batch
    };
    if batch > 1 {
        eprintln!("[bench] limits: bare inference, 1 thread, batches of {batch}");
        let batched = limits::bare_inference(
            &env,
            model,
            clip,
            CLIP_SIZE,
            &[1],
            batch,
            5,
            cli.infer_runs,
            3,
        )?;
        // A model without a batch dimension ran one at a time: nothing new.
        inference.extend(batched.into_iter().filter(|b| b.batch > 1));
    }
    let variant_threads: Vec<usize> = counts
        .iter()
        .copied()
        .filter(|t| *t == 1 || *t == cores)
        .collect();
    let variant_runs = (cli.infer_runs / 3).max(10);
    eprintln!(
        "[bench] limits: onnxruntime session options, threads {variant_threads:?}, {variant_runs} runs each"
    );
    let session_options =
        limits::session_variants(&env, model, clip, CLIP_SIZE, &variant_threads, variant_runs)?;
    let with_threads = |t: usize| inference.iter().find(|b| b.threads == t && b.batch == 1);
    let decode_cameras_per_core = ffmpeg.frames_per_cpu_s / CLIP_FPS;
    let inference_cameras_one_session = with_threads(cores)
        .map(|b| b.max_per_s / cli.detect_fps)
        .unwrap_or(0.0);
    let inference_cameras_session_per_core_batched = inference
        .iter()
        .find(|b| b.threads == 1 && b.batch > 1)
        .map(|b| cores as f64 * b.max_per_s / cli.detect_fps);
    let inference_cameras_session_per_core = with_threads(1)
        .map(|b| cores as f64 * b.max_per_s / cli.detect_fps)
        .unwrap_or(0.0);
    // CPU seconds one camera needs per second: decode every frame + inference
    // at the rate, at the cheapest CPU per inference measured (batched too).
    let cheapest = inference
        .iter()
        .map(|b| b.cpu_ms_per_inference)
        .fold(f64::INFINITY, f64::min);
    let per_camera_cpu = CLIP_FPS * ffmpeg.cpu_us_per_frame / 1e6 + cli.detect_fps * cheapest / 1e3;
    let combined_cameras = cores as f64 / per_camera_cpu;
    Ok(Limits {
        ffmpeg_decode: ffmpeg,
        ffmpeg_decode_scale: ffmpeg_scale,
        ffmpeg_decode_interleaved: ffmpeg_interleaved,
        inference,
        session_options,
        decode_cameras_per_core,
        inference_cameras_one_session,
        inference_cameras_session_per_core,
        inference_cameras_session_per_core_batched,
        combined_cameras,
    })
}

fn ratios(r: &run::RunResult, l: &Limits) -> Ratios {
    // Compare with the bare session of the thread count the run used.
    let bare = r
        .inference_threads
        .and_then(|t| l.inference.iter().find(|b| b.threads == t && b.batch == 1))
        .unwrap_or(&l.inference[0]);
    let workers = r.inference_workers.unwrap_or(1) as f64;
    let det_per_s = r.frames_detected as f64 / r.window_s;
    // ffmpeg's CPU per frame (a limit) / ours.
    let vs =
        |ours: Option<f64>, limit: &limits::FfmpegDecode| ours.map(|o| limit.cpu_us_per_frame / o);
    Ratios {
        decode_vs_ffmpeg: vs(r.decode_cpu_us_per_frame, &l.ffmpeg_decode),
        decode_vs_ffmpeg_scale: vs(r.decode_cpu_us_per_frame, &l.ffmpeg_decode_scale),
        codec_vs_ffmpeg: vs(r.codec_cpu_us_per_frame, &l.ffmpeg_decode),
        codec_vs_ffmpeg_interleaved: vs(r.codec_cpu_us_per_frame, &l.ffmpeg_decode_interleaved),
        process_per_frame_vs_ffmpeg: r
            .process_cpu_us_per_frame
            .map(|ours| ours / l.ffmpeg_decode.cpu_us_per_frame),
        inference_vs_bare: r
            .inference_cpu_ms_per_detection
            .map(|ours| bare.cpu_ms_per_inference / ours),
        detection_vs_bare_capacity: Some(det_per_s / (workers * bare.max_per_s)),
    }
}

fn print_limits(l: &Limits, detect_fps: f64) {
    let f = &l.ffmpeg_decode;
    println!();
    println!("== limits (same clip, same machine, measured now) ==");
    println!(
        "ffmpeg -threads 1 decode: {} frames, {:.0} frames per CPU-second ({:.0} us/frame; wall {:.2}s) \
         = {:.1} real-time {:.0} fps cameras per core",
        f.frames, f.frames_per_cpu_s, f.cpu_us_per_frame, f.rtime_s, l.decode_cameras_per_core, CLIP_FPS
    );
    let s = &l.ffmpeg_decode_scale;
    println!(
        "ffmpeg -threads 1 decode + scale to the model input at the detection rate: {:.0} us per decoded frame \
         ({} frames scaled)",
        s.cpu_us_per_frame, s.frames_out
    );
    let i = &l.ffmpeg_decode_interleaved;
    println!(
        "ffmpeg -threads 1 decode, {} copies of the clip interleaved: {:.0} us per decoded frame ({:.2} of one copy's cost)",
        i.inputs,
        i.cpu_us_per_frame,
        i.cpu_us_per_frame / f.cpu_us_per_frame
    );
    for b in &l.inference {
        println!(
            "bare inference, {} thread(s), batch {}: {:.2} ms mean, p50 {:.2}, p99 {:.2} ms wall, {:.2} ms CPU a picture; \
             {:.0} pictures/s back to back ({} detections on the test frame)",
            b.threads, b.batch, b.wall_ms_mean, b.wall_ms_p50, b.wall_ms_p99, b.cpu_ms_per_inference, b.max_per_s,
            b.detections
        );
    }
    println!("onnxruntime session options (raw session, outputs not decoded):");
    for v in &l.session_options {
        println!(
            "  {:<20} {} thread(s): {:>6.2} ms wall, {:>6.2} ms CPU per inference",
            format!("{:?}", v.variant),
            v.threads,
            v.wall_ms_mean,
            v.cpu_ms_per_inference
        );
    }
    let batched = l
        .inference_cameras_session_per_core_batched
        .map(|n| format!(" ({n:.1} batched)"))
        .unwrap_or_default();
    println!(
        "=> at {detect_fps} det/s a session on all cores serves {:.1} cameras, one 1-thread session per core {:.1}{batched}; \
         decode + inference CPU alone would allow {:.1} cameras",
        l.inference_cameras_one_session, l.inference_cameras_session_per_core, l.combined_cameras
    );
}

fn show_setting(v: usize) -> String {
    if v == 0 {
        "default".to_owned()
    } else {
        v.to_string()
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.prec$}"))
}

/// The CPU of each run from another source than the first run's against
/// the nearest run of the same N from the first source (same clip, same
/// settings, one after the other; the one before it when there is one).
fn print_source_comparison(runs: &[RunEntry]) {
    let Some(first) = runs.first().map(|r| r.source) else {
        return;
    };
    let mut lines = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let Some(o) = &run.result else { continue };
        if run.source == first {
            continue;
        }
        let same_n = |e: &&RunEntry| e.cameras == run.cameras && e.source == first;
        let before = runs[..i].iter().rev().find(same_n);
        let Some(b) = before
            .or_else(|| runs[i + 1..].iter().find(same_n))
            .and_then(|e| e.result.as_ref())
        else {
            continue;
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let group = |r: &run::RunResult, g: &str| r.threads_cpu_pct.get(g).copied().unwrap_or(0.0);
        lines.push(format!(
            "N = {}: {:?}/{first:?} CPU per camera {:.3} ({:.2} % vs {:.2} %), per received frame {:.3}; \
             tokio (ingest, API) {:.1} % vs {:.1} %; decode {:.1} % vs {:.1} %",
            run.cameras,
            run.source,
            ratio(o.xueliang_cpu_pct_per_camera, b.xueliang_cpu_pct_per_camera),
            o.xueliang_cpu_pct_per_camera,
            b.xueliang_cpu_pct_per_camera,
            ratio(
                o.process_cpu_us_per_frame.unwrap_or(0.0),
                b.process_cpu_us_per_frame.unwrap_or(0.0)
            ),
            group(o, "tokio"),
            group(b, "tokio"),
            group(o, "decode"),
            group(b, "decode"),
        ));
    }
    if !lines.is_empty() {
        println!("sources compared (target for gb28181/rtsp: within 10 %, i.e. 0.90-1.10):");
        for l in lines {
            println!("  {l}");
        }
    }
}

fn print_table(entries: &[RunEntry]) {
    println!();
    println!(
        "{:>4} {:>5} | {:>6} {:>6} {:>6} {:>6} | {:>6} {:>9} {:>7} {:>7} | {:>7} {:>6} | {:>5} {:>6} {:>6} | verdict",
        "N", "load1", "cpu%", "%/cam", "peer%", "other%", "fps in", "det fps", "drop dt", "drop dc",
        "RSS MB", "MB/cam", "evts", "p50 ms", "p99 ms"
    );
    for e in entries {
        let Some(r) = &e.result else {
            println!(
                "{:>4} failed: {}",
                e.cameras,
                e.error.as_deref().unwrap_or("?")
            );
            continue;
        };
        let verdict = if r.nothing_dropped() {
            "ok"
        } else if r.keeps_up() {
            "keeps up (some drops)"
        } else {
            "BEHIND"
        };
        let mut verdict = match (r.cameras_idle, r.settled_s) {
            (0, _) => verdict.to_owned(),
            (k, None) => format!("{verdict} ({k} idle)"),
            (k, Some(t)) => format!("{verdict} ({k} idle; all by {t:.0} s)"),
        };
        if e.source != peers::Source::Rtsp {
            verdict.push_str(&format!(" [{:?}]", e.source));
        }
        println!(
            "{:>4} {:>5.2} | {:>6.1} {:>6.2} {:>6.1} {:>6.1} | {:>6.2} {:>4.2}/{:<4.2} {:>7} {:>7} | {:>7.1} {:>6.2} | {:>5} {:>6} {:>6} | {}",
            r.cameras,
            r.loadavg_after[0],
            r.xueliang_cpu_pct,
            r.xueliang_cpu_pct_per_camera,
            r.peers_cpu_pct,
            r.other_cpu_pct,
            r.stream_fps_mean,
            r.detect_fps_mean,
            r.detect_fps_min,
            r.frames_dropped_detect,
            r.frames_dropped_decode,
            r.rss_mb_end,
            r.rss_mb_per_camera,
            r.events,
            opt(r.latency_ms_p50, 0),
            opt(r.latency_ms_p99, 0),
            verdict
        );
    }
    println!(
        "{:>4} | {:>5} {:>5} {:>9} {:>10} {:>9} {:>9} {:>9} | {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} | threads (% of one core)",
        "N",
        "inf",
        "sys%",
        "dec us/f",
        "codec us/f",
        "conv us/f",
        "inf ms/d",
        "proc us/f",
        "dec/ffm",
        "dec/ffs",
        "codec/ffm",
        "codec/ffK",
        "proc/ffm",
        "inf/bare",
        "det/cap"
    );
    for e in entries {
        let Some(r) = &e.result else { continue };
        let ra = e.ratios.clone().unwrap_or_default();
        let threads: Vec<String> = r
            .threads_cpu_pct
            .iter()
            .filter(|(_, p)| **p >= 0.05)
            .map(|(g, p)| format!("{g} {p:.1}"))
            .collect();
        println!(
            "{:>4} | {:>5} {:>5.1} {:>9} {:>10} {:>9} {:>9} {:>9} | {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} | {}",
            r.cameras,
            match (r.inference_workers, r.inference_threads) {
                (Some(w), Some(t)) => format!("{w}x{t}"),
                _ => "?".to_owned(),
            },
            r.xueliang_sys_pct,
            opt(r.decode_cpu_us_per_frame, 0),
            opt(r.codec_cpu_us_per_frame, 0),
            opt(r.convert_cpu_us_per_frame, 0),
            opt(r.inference_cpu_ms_per_detection, 2),
            opt(r.process_cpu_us_per_frame, 0),
            opt(ra.decode_vs_ffmpeg, 2),
            opt(ra.decode_vs_ffmpeg_scale, 2),
            opt(ra.codec_vs_ffmpeg, 2),
            opt(ra.codec_vs_ffmpeg_interleaved, 2),
            opt(ra.process_per_frame_vs_ffmpeg, 2),
            opt(ra.inference_vs_bare, 2),
            opt(ra.detection_vs_bare_capacity, 2),
            threads.join(", ")
        );
    }
}

/// Resident memory per added camera: the least-squares slope of RSS over N
/// (the process's fixed part, the model and onnxruntime, drops out).
fn print_rss_slope(entries: &[RunEntry]) {
    let points: Vec<(f64, f64)> = entries
        .iter()
        .filter_map(|e| e.result.as_ref())
        .map(|r| (r.cameras as f64, r.rss_mb_end))
        .collect();
    if let Some((slope, intercept)) = stats::linear_fit(&points) {
        println!(
            "RSS over N: {slope:.2} MB per added camera, {intercept:.1} MB fixed (least squares over {} runs)",
            points.len()
        );
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn mem_total_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn git_head(repo: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
