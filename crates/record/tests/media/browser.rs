//! The live-view fragments played by a real browser: headless Chromium
//! (Debian's package, driven by playwright-core as the dashboard's browser
//! tests are) appends our init segment and media segments to a Media Source
//! Extensions SourceBuffer and plays them (tests/browser/mse.mjs). H.264 as
//! cameras send it, and with B-frames (signed composition offsets).

use crate::common::*;
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use xueliang_record::{FragmentWriter, Sample, Segment};

const SETUP: &str = "run scripts/setup.sh (it installs chromium, nodejs and npm, and runs \
                     `npm ci` in tests/browser)";

fn browser_dir() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    ensure!(
        Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "`node` is not on PATH: {SETUP}"
    );
    ensure!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: {SETUP}"
    );
    ensure!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules/playwright-core is missing: {SETUP}"
    );
    Ok(dir)
}

/// Writes the live segments of `samples` as init.mp4, 0001.m4s, ... and
/// mime.txt into `out`; returns the picture size.
fn write_segments(samples: &[Sample], out: &Path) -> Result<(u32, u32)> {
    let mut writer = FragmentWriter::new();
    let mut segments = Vec::new();
    for s in samples {
        segments.extend(writer.push(s)?);
    }
    segments.extend(writer.finish());
    let mut size = None;
    let mut n = 0;
    for segment in segments {
        match segment {
            Segment::Init(init) => {
                ensure!(size.is_none(), "one init segment for one stream");
                std::fs::write(out.join("init.mp4"), &init.data)?;
                std::fs::write(out.join("mime.txt"), init.config.mime_type())?;
                size = Some((init.config.width(), init.config.height()));
            }
            Segment::Media(media) => {
                n += 1;
                std::fs::write(out.join(format!("{n:04}.m4s")), &media.data)?;
            }
        }
    }
    ensure!(n >= 2, "{n} media segments");
    size.context("no init segment")
}

/// Plays the first 6 s of `clip` through MSE in Chromium.
fn plays_in_chromium(clip: &Path) -> Result<()> {
    let dir = browser_dir()?;
    let samples = read_samples(clip)?;
    let first_key = samples
        .iter()
        .position(|s| s.is_key)
        .context("no key frame")?;
    let end = samples
        .iter()
        .position(|s| s.pts >= samples[first_key].pts + 6 * TICKS)
        .unwrap_or(samples.len());
    let out = tempfile::tempdir()?;
    let (width, height) = write_segments(&samples[first_key..end], out.path())?;
    let run = Command::new("node")
        .arg(dir.join("mse.mjs"))
        .env("XUELIANG_MSE_DIR", out.path())
        .env("XUELIANG_MSE_WIDTH", width.to_string())
        .env("XUELIANG_MSE_HEIGHT", height.to_string())
        .env("XUELIANG_SCREENSHOT", out.path().join("failure.png"))
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{}: {said}", clip.display());
    ensure!(
        run.status.success(),
        "mse.mjs on {}: {said}",
        clip.display()
    );
    Ok(())
}

#[test]
fn chromium_plays_the_live_fragments_of_the_d1_camera() -> Result<()> {
    plays_in_chromium(&fixture("vtest-d1-25fps.mp4"))
}

#[test]
fn chromium_plays_the_live_fragments_of_a_stream_with_b_frames() -> Result<()> {
    plays_in_chromium(&h264_bframes()?)
}
