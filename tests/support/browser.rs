//! The browser scripts under `tests/browser/`: headless Chromium (Debian's
//! package) driven by playwright-core, run with node against a running
//! `xueliang serve`. A missing tool fails the test with how to get it; it
//! never skips it.

use crate::{repo, Xueliang};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

const SETUP: &str = "run scripts/setup.sh (it installs chromium, nodejs and npm, and runs \
                     `npm ci` in tests/browser)";

/// Chromium and the folder of the scripts (with playwright-core installed).
fn tools() -> Result<(PathBuf, PathBuf)> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        bail!("`node` is not on PATH: {SETUP}");
    }
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    if !chromium.is_file() {
        bail!("{} is missing: {SETUP}", chromium.display());
    }
    let dir = repo().join("tests/browser");
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        bail!(
            "{}/node_modules/playwright-core is missing: {SETUP}",
            dir.display()
        );
    }
    Ok((chromium, dir))
}

/// Runs `tests/browser/<script>` against `x`, logged in as `user`, with
/// `envs` besides; fails with the script's output, a screenshot kept in the
/// temporary directory and the server's log unless the script passed.
pub fn run_script(
    x: &Xueliang,
    script: &str,
    user: &str,
    password: &str,
    envs: &[(&str, &str)],
) -> Result<()> {
    let (chromium, dir) = tools()?;
    let screenshot = x.dir.path().join("browser-failure.png");
    let started = Instant::now();
    let out = Command::new("node")
        .arg(dir.join(script))
        .env("XUELIANG_URL", &x.base)
        .env("XUELIANG_USER", user)
        .env("XUELIANG_PASSWORD", password)
        .env("XUELIANG_SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running node tests/browser/{script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{script} ({:.1} s):\n{stdout}{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let name = script.trim_end_matches(".mjs");
        let kept = std::env::temp_dir().join(format!(
            "xueliang-{name}-failure-{}.png",
            std::process::id()
        ));
        let _ = std::fs::copy(&screenshot, &kept);
        bail!(
            "{script} failed ({}); screenshot: {}\nserver log:\n{}",
            out.status,
            kept.display(),
            x.log()
        );
    }
    if !stdout.contains("PASS") {
        bail!("{script} exited 0 without passing");
    }
    Ok(())
}
