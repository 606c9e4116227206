//! One measurement: N cameras on the real RTSP server, the real `xueliang
//! serve`, a warm-up, then a measuring window read from /proc and the API.

use crate::http;
use crate::peers::{Peers, Source};
use crate::procfs::{self, Stat};
use crate::stats;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Everything one run needs to know.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub repo: PathBuf,
    pub xueliang: PathBuf,
    pub clip: PathBuf,
    pub model: PathBuf,
    pub onnxruntime: PathBuf,
    pub cameras: usize,
    pub detect_fps: f64,
    /// `[detection] adaptive`: the rate follows need (min_fps 1) or is
    /// `detect_fps` always.
    pub adaptive: bool,
    pub warmup: Duration,
    pub seconds: Duration,
    /// `[detector] threads` and `[decode] threads`; 0 = the binary's default.
    pub inference_threads: usize,
    /// `[detector] workers`, written only when not 0 (older binaries do not
    /// know the field).
    pub inference_workers: usize,
    /// `[detector] batch`, written only when not 0.
    pub batch: usize,
    /// `[detection] regions`, written only when not 0.
    pub regions: usize,
    pub decode_threads: usize,
    /// `[decode] hwaccel` and `[detector] execution_providers`, written only
    /// when not empty (the binary's defaults: software, the CPU).
    pub hwaccel: Vec<String>,
    pub execution_providers: Vec<String>,
    /// RTSP cameras, or GB/T 28181 devices.
    pub source: Source,
    /// The RTSP server of `Source::Rtsp`.
    pub rtsp_peer: crate::peers::RtspPeer,
    pub keep_logs: bool,
}

/// A child process killed and reaped on drop (after a polite SIGTERM when
/// `stop` was not called).
pub struct Guard {
    child: Child,
    name: &'static str,
}

impl Guard {
    pub fn new(child: Child, name: &'static str) -> Guard {
        Guard { child, name }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then up to `patience` for a clean exit, then SIGKILL.
    pub fn stop(&mut self, patience: Duration) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "[bench] {} did not stop within {patience:?} of SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The camera ids of a run: `cam001`, `cam002`, ...
pub fn camera_id(i: usize) -> String {
    format!("cam{:03}", i + 1)
}

/// `key = ["a", "b"]` and a new line; nothing for an empty list.
fn toml_list(key: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("{key} = [{}]\n", quoted.join(", "))
}

/// The config the bench runs `xueliang serve` with; `cameras` are the
/// peers' camera tables (and sections).
pub fn config_text(
    spec: &RunSpec,
    data_dir: &Path,
    api: u16,
    metrics: u16,
    cameras: &str,
) -> String {
    let mut c = format!(
        r#"# written by xueliang-bench
[server]
listen = "127.0.0.1:{api}"
metrics_listen = "127.0.0.1:{metrics}"

[storage]
data_dir = "{data}"

[detector]
model = "{model}"
onnxruntime = "{ort}"
threads = {inference_threads}
{workers}{batch}{providers}
[decode]
threads = {decode_threads}
{hwaccel}
[detection]
fps = {fps}
adaptive = {adaptive}
min_fps = 1
labels = ["person", "car"]
cooldown_s = 1
{regions}"#,
        data = data_dir.display(),
        model = spec.model.display(),
        ort = spec.onnxruntime.display(),
        inference_threads = spec.inference_threads,
        workers = if spec.inference_workers > 0 {
            format!("workers = {}\n", spec.inference_workers)
        } else {
            String::new()
        },
        batch = if spec.batch > 0 {
            format!("batch = {}\n", spec.batch)
        } else {
            String::new()
        },
        providers = toml_list("execution_providers", &spec.execution_providers),
        decode_threads = spec.decode_threads,
        hwaccel = toml_list("hwaccel", &spec.hwaccel),
        fps = spec.detect_fps,
        adaptive = spec.adaptive,
        regions = if spec.regions > 0 {
            format!("regions = {}\n", spec.regions)
        } else {
            String::new()
        },
    );
    c.push_str(cameras);
    c
}

/// The counters of one camera's health object that the bench uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    pub state: String,
    pub frames_received: u64,
    pub frames_decoded: u64,
    pub decode_errors: u64,
    pub frames_dropped_decode: u64,
    pub frames_offered_to_detector: u64,
    pub frames_detected: u64,
    pub frames_dropped_detect: u64,
    pub reconnects: u64,
    /// The camera is idle (key frames only); absent in binaries before it.
    pub idle: bool,
    pub frames_skipped_idle: u64,
    /// Frames the full rate would have detected and the reduced one did not
    /// (absent in binaries before adaptive detection: 0).
    pub frames_reduced: u64,
    /// CPU seconds inside the video decoder, and converting pictures
    /// (absent in binaries before them: 0).
    pub decode_cpu_s: f64,
    pub convert_cpu_s: f64,
}

impl Counters {
    pub fn from_health(h: &Value) -> Counters {
        let n = |k: &str| h[k].as_u64().unwrap_or(0);
        Counters {
            state: h["state"].as_str().unwrap_or_default().to_owned(),
            frames_received: n("frames_received"),
            frames_decoded: n("frames_decoded"),
            decode_errors: n("decode_errors"),
            frames_dropped_decode: n("frames_dropped_decode"),
            frames_offered_to_detector: n("frames_offered_to_detector"),
            frames_detected: n("frames_detected"),
            frames_dropped_detect: n("frames_dropped_detect"),
            reconnects: n("reconnects"),
            idle: h["idle"].as_bool().unwrap_or(false),
            frames_skipped_idle: n("frames_skipped_idle"),
            frames_reduced: n("frames_reduced"),
            decode_cpu_s: h["decode_cpu_seconds"].as_f64().unwrap_or(0.0),
            convert_cpu_s: h["convert_cpu_seconds"].as_f64().unwrap_or(0.0),
        }
    }

    fn minus(&self, before: &Counters) -> Counters {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Counters {
            state: self.state.clone(),
            frames_received: d(self.frames_received, before.frames_received),
            frames_decoded: d(self.frames_decoded, before.frames_decoded),
            decode_errors: d(self.decode_errors, before.decode_errors),
            frames_dropped_decode: d(self.frames_dropped_decode, before.frames_dropped_decode),
            frames_offered_to_detector: d(
                self.frames_offered_to_detector,
                before.frames_offered_to_detector,
            ),
            frames_detected: d(self.frames_detected, before.frames_detected),
            frames_dropped_detect: d(self.frames_dropped_detect, before.frames_dropped_detect),
            reconnects: d(self.reconnects, before.reconnects),
            idle: self.idle,
            frames_skipped_idle: d(self.frames_skipped_idle, before.frames_skipped_idle),
            frames_reduced: d(self.frames_reduced, before.frames_reduced),
            decode_cpu_s: (self.decode_cpu_s - before.decode_cpu_s).max(0.0),
            convert_cpu_s: (self.convert_cpu_s - before.convert_cpu_s).max(0.0),
        }
    }
}

fn cameras(api: &http::Api) -> Result<BTreeMap<String, Counters>> {
    let v = api.get_json("/api/v1/cameras")?;
    let items = v["items"]
        .as_array()
        .context("GET /api/v1/cameras: no items")?;
    Ok(items
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                Counters::from_health(&c["health"]),
            )
        })
        .collect())
}

/// Every camera idle (key frames only) right now.
fn all_idle(api: &http::Api) -> bool {
    cameras(api).is_ok_and(|c| !c.is_empty() && c.values().all(|c| c.idle))
}

/// Object events that started in `[since, until)`, following `next_cursor`.
fn events(api: &http::Api, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<Value>> {
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!(
            "/api/v1/events?kind=object&limit=500&since={}&until={}",
            fmt(since),
            fmt(until)
        );
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = api.get_json(&q)?;
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
}

/// The inference layout xueliang reports at startup in its `detector ready`
/// log line: `(workers, threads per session)`; a binary without several
/// workers logs no `workers=` and has one.
pub fn parse_detector_layout(log: &str) -> Option<(usize, usize)> {
    let line = strip_ansi(log.lines().find(|l| l.contains("detector ready"))?);
    let field = |name: &str| -> Option<usize> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    Some((field("workers=").unwrap_or(1), field("threads=")?))
}

/// Removes terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Milliseconds from the arrival of the frame that started an event
/// (`started_at`) to the event's row being written (`recorded_at`).
pub fn event_latency_ms(event: &Value) -> Option<f64> {
    let t = |k: &str| {
        event[k]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let d = t("recorded_at")? - t("started_at")?;
    Some(d.num_microseconds()? as f64 / 1e3)
}

/// A snapshot of everything measured at one instant.
struct Snapshot {
    at: Instant,
    wall: DateTime<Utc>,
    xueliang: Stat,
    threads: BTreeMap<u32, Stat>,
    /// The peers' CPU ticks summed (those still running).
    peers: u64,
    bench: Option<Stat>,
    machine: procfs::CpuTotals,
    cameras: BTreeMap<String, Counters>,
}

fn snapshot(xl_pid: u32, peers: &[u32], api: &http::Api) -> Result<Snapshot> {
    // API first: the counters are then at most a request older than the CPU times.
    let cameras = cameras(api)?;
    Ok(Snapshot {
        at: Instant::now(),
        wall: Utc::now(),
        xueliang: procfs::read_stat(xl_pid).context("xueliang exited")?,
        threads: procfs::read_threads(xl_pid),
        peers: peers
            .iter()
            .filter_map(|p| procfs::read_stat(*p))
            .map(|s| s.ticks())
            .sum(),
        bench: procfs::read_self_stat(),
        machine: procfs::read_cpu_totals(),
        cameras,
    })
}

/// The figures of one run of N cameras.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub cameras: usize,
    /// Inference workers and threads per session, from xueliang's log.
    pub inference_workers: Option<usize>,
    pub inference_threads: Option<usize>,
    pub window_s: f64,
    pub started_at: DateTime<Utc>,
    pub loadavg_before: [f64; 3],
    pub loadavg_after: [f64; 3],
    /// CPU as % of one core (200 = both cores of a 2-core machine).
    pub machine_busy_pct: f64,
    pub xueliang_cpu_pct: f64,
    pub xueliang_cpu_pct_per_camera: f64,
    /// The part of `xueliang_cpu_pct` spent in the kernel (system time).
    pub xueliang_sys_pct: f64,
    /// The cameras' side: the RTSP server, or the GB devices (sipp and
    /// the PS senders).
    pub peers_cpu_pct: f64,
    pub bench_cpu_pct: f64,
    /// Everything else on the machine (other users' work).
    pub other_cpu_pct: f64,
    /// xueliang's CPU by thread group (thread name without its number), % of one core.
    pub threads_cpu_pct: BTreeMap<String, f64>,
    pub stream_fps_mean: f64,
    pub stream_fps_min: f64,
    pub detect_fps_configured: f64,
    pub detect_fps_mean: f64,
    pub detect_fps_min: f64,
    /// Detections plus the frames the reduced rate saved, per camera per
    /// second: the rate the cameras asked of the detector (mean, slowest).
    pub asked_fps_mean: f64,
    pub asked_fps_min: f64,
    /// Frames the full rate would have detected and the reduced one did not.
    pub frames_reduced: u64,
    pub frames_received: u64,
    pub frames_decoded: u64,
    pub decode_errors: u64,
    pub frames_dropped_decode: u64,
    pub frames_offered_to_detector: u64,
    pub frames_detected: u64,
    pub frames_dropped_detect: u64,
    /// Frames dropped before detection, % of the frames offered to the detector.
    pub dropped_detect_pct: f64,
    pub reconnects: u64,
    pub cameras_not_online: usize,
    /// Cameras idle at the end of the window (no motion: key frames only).
    pub cameras_idle: usize,
    /// Seconds from xueliang's start until every camera was idle at once
    /// (looked at every second of the warm-up; None: not within it).
    pub settled_s: Option<f64>,
    /// Frames never decoded because their camera was idle, over the window.
    pub frames_skipped_idle: u64,
    pub rss_mb_end: f64,
    pub rss_mb_max: f64,
    pub rss_mb_per_camera: f64,
    pub events: usize,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub latency_ms_max: Option<f64>,
    /// CPU of the decode threads per decoded frame (decode, plus scaling to the
    /// model input and the I420 copy of the frames sent to detection).
    pub decode_cpu_us_per_frame: Option<f64>,
    /// Of that, the CPU inside the video decoder per decoded frame (the
    /// cameras' own counters; None from binaries without them).
    pub codec_cpu_us_per_frame: Option<f64>,
    /// And converting pictures (the I420 copy, the scaling), per decoded frame.
    pub convert_cpu_us_per_frame: Option<f64>,
    /// CPU of the inference thread and onnxruntime's pool per detection.
    pub inference_cpu_ms_per_detection: Option<f64>,
    /// Whole-process CPU per received frame.
    pub process_cpu_us_per_frame: Option<f64>,
}

impl RunResult {
    /// Detection kept up: under 1 % dropped before detection and at least 95 %
    /// of the configured rate asked (detections plus what the reduced rate
    /// saved: adaptive cameras detect less by design). When every camera is
    /// idle they detect on key frames only, by design, and the rate does not
    /// apply.
    pub fn keeps_up(&self) -> bool {
        let all_idle = self.cameras > 0 && self.cameras_idle == self.cameras;
        self.dropped_detect_pct <= 1.0
            && (all_idle || self.asked_fps_mean >= 0.95 * self.detect_fps_configured)
            && self.cameras_not_online == 0
    }

    /// Sustained with nothing dropped at all.
    pub fn nothing_dropped(&self) -> bool {
        self.keeps_up() && self.frames_dropped_detect == 0 && self.frames_dropped_decode == 0
    }
}

/// Thread groups counted as inference: the `inference` threads and
/// onnxruntime's intra-op pool, whose threads inherit the name of the thread
/// that created the session (xueliang's main thread) and so are `unnamed`
/// (see [`procfs::read_threads`]).
pub const INFERENCE_GROUPS: &[&str] = &["inference", "unnamed"];

pub fn run(spec: &RunSpec) -> Result<RunResult> {
    let dir = tempfile::Builder::new()
        .prefix("xueliang-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let result = run_in(spec, dir.path());
    if spec.keep_logs || result.is_err() {
        let kept = dir.keep();
        eprintln!("[bench] logs and config kept in {}", kept.display());
    }
    result
}

/// Makes a viewer and an API token for it with the `xueliang user` commands.
fn api_token(spec: &RunSpec, config: &Path) -> Result<String> {
    use std::io::Write;
    let run = |args: &[&str], stdin: &str| -> Result<String> {
        let mut child = Command::new(&spec.xueliang)
            .arg("user")
            .args(args)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", spec.xueliang.display()))?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "xueliang user {}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    run(
        &[
            "add",
            "--username",
            "bench",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "bench-password-not-used\n",
    )?;
    run(&["token", "--username", "bench", "--name", "bench"], "")
}

fn run_in(spec: &RunSpec, dir: &Path) -> Result<RunResult> {
    let ticks = procfs::clock_ticks();
    let n = spec.cameras;
    let mut peers = Peers::start(spec, dir)?;
    let api_port = free_port()?;
    let config = config_text(
        spec,
        &dir.join("data"),
        api_port,
        free_port()?,
        &peers.config,
    );
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config)?;
    let log_path = dir.join("xueliang.log");
    let child = Command::new(&spec.xueliang)
        .args(["serve", "--config"])
        .arg(&config_path)
        .current_dir(&spec.repo)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .with_context(|| format!("starting {}", spec.xueliang.display()))?;
    let mut xl = Guard {
        child,
        name: "xueliang",
    };
    let xl_pid = xl.pid();
    let started = Instant::now();
    let api = http::Api {
        addr: ([127, 0, 0, 1], api_port).into(),
        token: api_token(spec, &config_path)?,
    };
    peers.register_devices(spec, dir)?;
    let log_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };

    // Every camera online.
    let deadline = Instant::now() + Duration::from_secs(30 + n as u64);
    let mut last_states = String::new();
    loop {
        if let Some(status) = xl.child.try_wait()? {
            bail!("xueliang exited with {status}:\n{}", log_tail());
        }
        if let Ok(cams) = cameras(&api) {
            let not_online: Vec<String> = cams
                .iter()
                .filter(|(_, c)| c.state != "online")
                .map(|(id, c)| format!("{id}={}", c.state))
                .collect();
            if cams.len() == n && not_online.is_empty() {
                break;
            }
            last_states = not_online.join(" ");
        }
        if Instant::now() > deadline {
            bail!(
                "not every camera came online within {}s ({last_states}):\n{}",
                30 + n,
                log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "[bench] {n} cameras online; warming up for {}s",
        spec.warmup.as_secs_f64()
    );
    let mut settled_s = None;
    let warm_end = Instant::now() + spec.warmup;
    while Instant::now() < warm_end {
        if settled_s.is_none() && all_idle(&api) {
            settled_s = Some(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(
            Duration::from_secs(1).min(warm_end.saturating_duration_since(Instant::now())),
        );
    }

    let load_before = procfs::read_loadavg();
    let s0 = snapshot(xl_pid, &peers.pids(), &api)?;
    let mut rss_max_kb = 0u64;
    let end = s0.at + spec.seconds;
    while Instant::now() < end {
        if let Some(kb) = procfs::read_vmrss_kb(xl_pid) {
            rss_max_kb = rss_max_kb.max(kb);
        }
        std::thread::sleep(
            Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
        );
    }
    let s1 = snapshot(xl_pid, &peers.pids(), &api)?;
    let load_after = procfs::read_loadavg();
    let rss_end_kb = procfs::read_vmrss_kb(xl_pid).unwrap_or(0);
    rss_max_kb = rss_max_kb.max(rss_end_kb);

    // Events started up to the end of the window are written within a
    // detection interval or so; give them a moment.
    std::thread::sleep(Duration::from_millis(1500));
    let evs = events(&api, s0.wall, s1.wall)?;
    let latencies: Vec<f64> = evs.iter().filter_map(event_latency_ms).collect();

    xl.stop(Duration::from_secs(20))?;
    peers.stop();
    let layout = parse_detector_layout(&std::fs::read_to_string(&log_path).unwrap_or_default());

    let window = (s1.at - s0.at).as_secs_f64();
    let pct = |t0: u64, t1: u64| t1.saturating_sub(t0) as f64 / ticks / window * 100.0;
    let xl_pct = pct(s0.xueliang.ticks(), s1.xueliang.ticks());
    let server_pct = pct(s0.peers, s1.peers);
    let bench_pct = match (&s0.bench, &s1.bench) {
        (Some(a), Some(b)) => pct(a.ticks(), b.ticks()),
        _ => 0.0,
    };
    let dm = s1.machine.total.saturating_sub(s0.machine.total).max(1) as f64;
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1) as f64;
    let machine_pct = s1.machine.busy.saturating_sub(s0.machine.busy) as f64 / dm * cores * 100.0;
    let groups = procfs::thread_group_ticks(&s0.threads, &s1.threads);
    let threads_cpu_pct: BTreeMap<String, f64> = groups
        .iter()
        .map(|(g, t)| (g.clone(), *t as f64 / ticks / window * 100.0))
        .collect();

    let mut total = Counters::default();
    let mut stream_fps = Vec::new();
    let mut detect_fps = Vec::new();
    let mut asked_fps = Vec::new();
    let mut not_online = 0;
    let mut idle = 0;
    for (id, after) in &s1.cameras {
        let before = s0.cameras.get(id).cloned().unwrap_or_default();
        let d = after.minus(&before);
        if after.state != "online" {
            not_online += 1;
        }
        idle += after.idle as usize;
        total.frames_skipped_idle += d.frames_skipped_idle;
        stream_fps.push(d.frames_received as f64 / window);
        detect_fps.push(d.frames_detected as f64 / window);
        asked_fps.push((d.frames_detected + d.frames_reduced) as f64 / window);
        total.frames_reduced += d.frames_reduced;
        total.frames_received += d.frames_received;
        total.frames_decoded += d.frames_decoded;
        total.decode_errors += d.decode_errors;
        total.frames_dropped_decode += d.frames_dropped_decode;
        total.frames_offered_to_detector += d.frames_offered_to_detector;
        total.frames_detected += d.frames_detected;
        total.frames_dropped_detect += d.frames_dropped_detect;
        total.reconnects += d.reconnects;
        total.decode_cpu_s += d.decode_cpu_s;
        total.convert_cpu_s += d.convert_cpu_s;
    }
    let group_s = |names: &[&str]| -> f64 {
        groups
            .iter()
            .filter(|(g, _)| names.contains(&g.as_str()))
            .map(|(_, t)| *t as f64 / ticks)
            .sum()
    };
    let per = |num: f64, den: u64, scale: f64| (den > 0).then(|| num * scale / den as f64);
    let mb = |kb: u64| kb as f64 / 1024.0;
    Ok(RunResult {
        cameras: n,
        inference_workers: layout.map(|l| l.0),
        inference_threads: layout.map(|l| l.1),
        window_s: window,
        started_at: s0.wall,
        loadavg_before: load_before,
        loadavg_after: load_after,
        machine_busy_pct: machine_pct,
        xueliang_cpu_pct: xl_pct,
        xueliang_cpu_pct_per_camera: xl_pct / n as f64,
        xueliang_sys_pct: pct(s0.xueliang.stime, s1.xueliang.stime),
        peers_cpu_pct: server_pct,
        bench_cpu_pct: bench_pct,
        other_cpu_pct: (machine_pct - xl_pct - server_pct - bench_pct).max(0.0),
        threads_cpu_pct,
        stream_fps_mean: stats::mean(&stream_fps).unwrap_or(0.0),
        stream_fps_min: stats::min(&stream_fps).unwrap_or(0.0),
        detect_fps_configured: spec.detect_fps,
        detect_fps_mean: stats::mean(&detect_fps).unwrap_or(0.0),
        detect_fps_min: stats::min(&detect_fps).unwrap_or(0.0),
        asked_fps_mean: stats::mean(&asked_fps).unwrap_or(0.0),
        asked_fps_min: stats::min(&asked_fps).unwrap_or(0.0),
        frames_reduced: total.frames_reduced,
        frames_received: total.frames_received,
        frames_decoded: total.frames_decoded,
        decode_errors: total.decode_errors,
        frames_dropped_decode: total.frames_dropped_decode,
        frames_offered_to_detector: total.frames_offered_to_detector,
        frames_detected: total.frames_detected,
        frames_dropped_detect: total.frames_dropped_detect,
        dropped_detect_pct: if total.frames_offered_to_detector > 0 {
            total.frames_dropped_detect as f64 * 100.0 / total.frames_offered_to_detector as f64
        } else {
            0.0
        },
        reconnects: total.reconnects,
        cameras_not_online: not_online + n.saturating_sub(s1.cameras.len()),
        cameras_idle: idle,
        settled_s,
        frames_skipped_idle: total.frames_skipped_idle,
        rss_mb_end: mb(rss_end_kb),
        rss_mb_max: mb(rss_max_kb),
        rss_mb_per_camera: mb(rss_end_kb) / n as f64,
        events: latencies.len(),
        latency_ms_p50: stats::percentile(&latencies, 50.0),
        latency_ms_p99: stats::percentile(&latencies, 99.0),
        latency_ms_max: stats::max(&latencies),
        decode_cpu_us_per_frame: per(group_s(&["decode"]), total.frames_decoded, 1e6),
        codec_cpu_us_per_frame: per(total.decode_cpu_s, total.frames_decoded, 1e6)
            .filter(|_| total.decode_cpu_s > 0.0),
        convert_cpu_us_per_frame: per(total.convert_cpu_s, total.frames_decoded, 1e6)
            .filter(|_| total.decode_cpu_s > 0.0),
        inference_cpu_ms_per_detection: per(group_s(INFERENCE_GROUPS), total.frames_detected, 1e3),
        process_cpu_us_per_frame: per(xl_pct / 100.0 * window, total.frames_received, 1e6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers;

    #[test]
    fn latency_from_event_times() {
        let e = serde_json::json!({
            "started_at": "2026-11-29T14:59:40.974Z",
            "recorded_at": "2026-11-29T14:59:41.100Z"
        });
        assert_eq!(event_latency_ms(&e), Some(126.0));
        assert_eq!(
            event_latency_ms(&serde_json::json!({"started_at": "x"})),
            None
        );
    }

    #[test]
    fn detector_layout_from_the_log() {
        let old =
            "2026-11-29T15:40:01Z  INFO xueliang::serve: detector ready model=m.toml threads=2\n";
        assert_eq!(parse_detector_layout(old), Some((1, 2)));
        let new = "x\n\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m detector ready \
                   \u{1b}[3mworkers\u{1b}[0m\u{1b}[2m=\u{1b}[0m2 \u{1b}[3mthreads\u{1b}[0m\u{1b}[2m=\u{1b}[0m1\n";
        assert_eq!(parse_detector_layout(new), Some((2, 1)));
        assert_eq!(parse_detector_layout("nothing here"), None);
    }

    #[test]
    fn counters_from_health_and_deltas() {
        let h = serde_json::json!({"state": "online", "frames_received": 100, "frames_detected": 20,
                                   "frames_dropped_detect": 1});
        let a = Counters::from_health(&h);
        assert_eq!(a.frames_received, 100);
        assert_eq!(a.frames_decoded, 0);
        let b = Counters {
            frames_received: 40,
            frames_detected: 8,
            ..Counters::default()
        };
        let d = a.minus(&b);
        assert_eq!(
            (
                d.frames_received,
                d.frames_detected,
                d.frames_dropped_detect
            ),
            (60, 12, 1)
        );
    }

    /// A spec of `cameras` cameras from `source` with the binary's defaults.
    fn spec(cameras: usize, source: Source) -> RunSpec {
        RunSpec {
            repo: "/r".into(),
            xueliang: "/r/x".into(),
            clip: "/r/c.mp4".into(),
            model: "/r/m.toml".into(),
            onnxruntime: "/r/o.so".into(),
            cameras,
            detect_fps: 5.0,
            adaptive: true,
            warmup: Duration::ZERO,
            seconds: Duration::ZERO,
            inference_threads: 0,
            inference_workers: 0,
            batch: 0,
            regions: 0,
            decode_threads: 0,
            hwaccel: vec![],
            execution_providers: vec![],
            source,
            rtsp_peer: crate::peers::RtspPeer::Gstreamer,
            keep_logs: false,
        }
    }

    #[test]
    fn config_has_every_camera() {
        let spec = RunSpec {
            hwaccel: vec!["cuda".into(), "vaapi".into()],
            execution_providers: vec!["cuda".into(), "cpu".into()],
            batch: 2,
            regions: 3,
            ..spec(3, Source::Rtsp)
        };
        let c = config_text(&spec, Path::new("/tmp/d"), 1, 2, &peers::rtsp_cameras(3, 3));
        assert_eq!(c.matches("[[cameras]]").count(), 3);
        assert!(c.contains("url = \"rtsp://127.0.0.1:3/cam003\""));
        let parsed = xueliang_core::Config::parse(&c).expect("a valid config");
        assert_eq!(parsed.cameras.len(), 3);
        assert_eq!(parsed.cameras[2].id, "cam003");
        assert_eq!(parsed.detection.fps, 5.0);
        assert_eq!(
            parsed.decode.hwaccel,
            [xueliang_core::HwAccel::Cuda, xueliang_core::HwAccel::Vaapi]
        );
        assert_eq!(parsed.detector.execution_providers.len(), 2);
        assert_eq!(parsed.detector.batch, 2);
        assert_eq!(parsed.cameras[0].detection.regions, 3);
        // Without them the binary's defaults stay.
        let plain = RunSpec {
            hwaccel: vec![],
            execution_providers: vec![],
            batch: 0,
            regions: 0,
            ..spec
        };
        let c = config_text(&plain, Path::new("/tmp/d"), 1, 2, "");
        assert!(!c.contains("hwaccel") && !c.contains("execution_providers"));
        assert!(!c.contains("batch") && !c.contains("regions"));
    }

    #[test]
    fn gb28181_config_has_a_device_channel_per_camera() {
        let spec = spec(2, Source::Gb28181);
        let cameras = peers::gb28181_cameras(2, 5070, 30000);
        let c = config_text(&spec, Path::new("/tmp/d"), 1, 2, &cameras);
        let parsed = xueliang_core::Config::parse(&c).expect("a valid config");
        let gb = parsed.gb28181.expect("a [gb28181] section");
        assert_eq!(gb.rtp_ports, (30000, 30003));
        assert_eq!(parsed.cameras.len(), 2);
        assert_eq!(
            parsed.cameras[1].url.as_str(),
            "gb28181://34020000001320000002/34020000001310000001"
        );
    }
}
