//! Detection throughput of two ways to use the cores: one session with
//! `cores` threads, or `cores` sessions with one thread each (what
//! `[detector] workers` chooses). Runs the default model on a frame of the
//! footage for a few seconds each and prints frames/s and the ratio.
//!
//! `cargo run --release -p xueliang-detect --example inference_layout [seconds]`

use std::path::Path;
use std::time::{Duration, Instant};
use xueliang_core::ModelInput;
use xueliang_detect::{load_onnxruntime, Detector, Manifest, OrtDetector};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env = load_onnxruntime(&repo.join(xueliang_core::config::DEFAULT_ONNXRUNTIME))?;
    let manifest = Manifest::load(&repo.join("models/ssd_mobilenet_v2_coco.toml"))?;
    let g = manifest.input.geometry;
    let rgb = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(repo.join("tests/fixtures/vtest-h264.mp4"))
        .args([
            "-vf",
            "select=eq(n\\,100),scale=300:300",
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()?
        .stdout;
    let input = ModelInput {
        width: g.width,
        height: g.height,
        rgb,
        placement: g.placement(768, 576),
    };
    let cores = std::thread::available_parallelism()?.get();
    let run = |sessions: usize,
               threads: usize|
     -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
        let limit = Duration::from_secs_f64(seconds);
        let frames: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..sessions)
                .map(|_| {
                    let (env, manifest, input) = (&env, manifest.clone(), &input);
                    s.spawn(move || {
                        let mut d = OrtDetector::new(env, manifest, threads).expect("session");
                        d.detect(input, 768, 576, 0.25).expect("warm-up");
                        let start = Instant::now();
                        let mut n = 0;
                        while start.elapsed() < limit {
                            d.detect(input, 768, 576, 0.25).expect("inference");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        Ok(frames as f64 / seconds)
    };
    let one = run(1, cores).map_err(|e| e.to_string())?;
    let many = run(cores, 1).map_err(|e| e.to_string())?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("cores: {cores}; load average: {}", load.trim());
    println!(
        "1 session x {cores} threads: {one:.1} frames/s ({:.2} ms each)",
        1000.0 / one
    );
    println!("{cores} sessions x 1 thread: {many:.1} frames/s");
    println!("ratio (sessions per core / one session): {:.2}", many / one);
    Ok(())
}
