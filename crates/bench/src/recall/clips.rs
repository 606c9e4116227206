//! The clips a recall run replays, as raw Annex B made with the `ffmpeg`
//! command (what an ingest worker hands the decoder), cached under
//! `.local/cache/recall/`.
//!
//! - `walkway-d1`: the capacity bench's clip (tests/fixtures/vtest-d1-25fps.mp4,
//!   704x576, 25 fps: the footage re-timed, so people walk 2.5 times as fast).
//! - `walkway`: the footage at its own speed (tests/fixtures/vtest-h264.mp4,
//!   768x576, 10 fps).
//! - `waiting`: long still periods made from the footage: after 8, 24, 40
//!   and 56 s of it the picture holds for 20 s (people waiting, the parked
//!   van and car), with sensor noise so that no two frames are the same,
//!   re-encoded as the fixture is (libx264, 2 s GOP, no B-frames, crf 23).
//! - any other name is an MP4 path.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use xueliang_core::VideoCodec;

/// A clip ready to replay.
pub struct Clip {
    pub name: String,
    pub annexb: PathBuf,
    pub codec: VideoCodec,
    pub fps: f64,
}

/// Source frames after which the `waiting` clip holds, and for how many.
const HOLDS_AFTER: [usize; 4] = [80, 240, 400, 560];
const HOLD_FRAMES: usize = 200;

pub fn prepare(repo: &Path, name: &str) -> Result<Clip> {
    let cache = repo.join(".local/cache/recall");
    std::fs::create_dir_all(&cache).with_context(|| format!("making {}", cache.display()))?;
    let source = match name {
        "walkway-d1" => repo.join("tests/fixtures/vtest-d1-25fps.mp4"),
        "walkway" => repo.join("tests/fixtures/vtest-h264.mp4"),
        "waiting" => waiting(repo, &cache)?,
        path => PathBuf::from(path),
    };
    if !source.is_file() {
        bail!(
            "{} is missing (scripts/setup.sh makes the fixtures)",
            source.display()
        );
    }
    let (codec, fps) = probe(&source)?;
    let stem = Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
    let annexb = cache.join(format!("{stem}.annexb"));
    if !annexb.is_file() {
        let (filter, format) = match codec {
            VideoCodec::H264 => ("h264_mp4toannexb", "h264"),
            VideoCodec::H265 => ("hevc_mp4toannexb", "hevc"),
        };
        ffmpeg(
            &source,
            &["-c:v", "copy", "-bsf:v", filter, "-f", format],
            &annexb,
        )?;
    }
    Ok(Clip {
        name: name.to_owned(),
        annexb,
        codec,
        fps,
    })
}

/// The `waiting` clip (made once).
fn waiting(repo: &Path, cache: &Path) -> Result<PathBuf> {
    let out = cache.join("waiting.mp4");
    if out.is_file() {
        return Ok(out);
    }
    // Each hold adds HOLD_FRAMES - 1 repeats, shifting the later frames.
    let mut vf: Vec<String> = HOLDS_AFTER
        .iter()
        .enumerate()
        .map(|(i, at)| {
            format!(
                "loop=loop={}:size=1:start={}",
                HOLD_FRAMES - 1,
                at + i * (HOLD_FRAMES - 1)
            )
        })
        .collect();
    vf.push("setpts=N/(10*TB)".into());
    vf.push("noise=alls=3:allf=t".into());
    let vf = vf.join(",");
    let args = [
        "-vf",
        &vf,
        "-an",
        "-r",
        "10",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-x264-params",
        "keyint=20:min-keyint=20:scenecut=0:bframes=0:open-gop=0",
        "-movflags",
        "+faststart",
    ];
    ffmpeg(&repo.join("tests/fixtures/vtest-h264.mp4"), &args, &out)?;
    Ok(out)
}

fn ffmpeg(input: &Path, args: &[&str], out: &Path) -> Result<()> {
    // Written under another name with the same extension (ffmpeg picks the
    // format by it), then renamed: an interrupted run leaves no clip behind.
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let partial = out.with_file_name(format!("partial-{name}"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(args)
        .arg(&partial)
        .status()
        .context("running ffmpeg (scripts/setup.sh installs it)")?;
    if !status.success() {
        bail!(
            "ffmpeg failed making {} from {}",
            out.display(),
            input.display()
        );
    }
    std::fs::rename(&partial, out)?;
    Ok(())
}

/// The clip's video codec and frame rate, from `ffprobe`.
fn probe(path: &Path) -> Result<(VideoCodec, f64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,r_frame_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .context("running ffprobe")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.trim().split(',');
    let codec = match fields.next() {
        Some("h264") => VideoCodec::H264,
        Some("hevc") => VideoCodec::H265,
        other => bail!("{}: no H.264/H.265 video ({other:?})", path.display()),
    };
    let rate = fields.next().unwrap_or_default();
    let fps = match rate.split_once('/') {
        Some((n, d)) => n.parse::<f64>()? / d.parse::<f64>()?,
        None => rate.parse::<f64>()?,
    };
    if !(fps > 0.0 && fps.is_finite()) {
        bail!("{}: no frame rate ({rate})", path.display());
    }
    Ok((codec, fps))
}
