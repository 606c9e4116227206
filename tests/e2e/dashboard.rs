//! The operators' dashboard in a real browser: headless Chromium (Debian's
//! package) driven by playwright-core (tests/browser/dashboard.mjs) against
//! the real binary, whose camera sees the people in the test footage. The
//! script logs in as an operator (made with `xueliang user add`, as the
//! first admin is by `Xueliang::start`), waits for an event to arrive live on
//! the wall, opens and acknowledges it, and checks the audit trail and the API.
//! A second script (tests/browser/users.mjs) manages a user on the users
//! page as the admin; the result is read back through the API.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xueliang_e2e::{
    add_user, config_header, fixture, free_port, repo, wait_for, RtspServer, Xueliang, ADMIN,
    ADMIN_PASSWORD,
};

const SETUP: &str = "run scripts/setup.sh (it installs chromium, nodejs and npm, and runs \
                     `npm ci` in tests/browser)";

/// The browser test's tools, or a failure that says how to get them: a
/// missing tool fails the test, it never skips it.
fn browser_tools() -> Result<(PathBuf, PathBuf)> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        bail!("`node` is not on PATH: {SETUP}");
    }
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    if !chromium.is_file() {
        bail!("{} is missing: {SETUP}", chromium.display());
    }
    let browser_dir = repo().join("tests/browser");
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        bail!(
            "{}/node_modules/playwright-core is missing: {SETUP}",
            browser_dir.display()
        );
    }
    Ok((chromium, browser_dir))
}

#[test]
fn an_operator_sees_a_live_event_and_acknowledges_it_in_the_browser() -> Result<()> {
    let (chromium, browser_dir) = browser_tools()?;
    let clip = fixture("vtest-h264.mp4");
    let rtsp = RtspServer::start(&[
        "--mount".into(),
        format!("walkway={}", clip.display()),
        "--loop".into(),
    ])?;

    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = format!(
        r#"{header}
[[cameras]]
id = "walkway"
name = "村口步道"
url = "{url}"
village = "东村"
grid = "东村一网格"
location = "村口"
detection = {{ fps = 5, labels = ["person"], min_score = 0.5, cooldown_s = 5, lost_after_s = 2 }}
"#,
        header = config_header(dir.path(), port, 1.0),
        url = rtsp.url("walkway"),
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config)?;
    // Centre staff are operators: they handle events, they administer nothing.
    let password = format!("pw-{}-雪亮", std::process::id());
    add_user(&config_path, "zhang.wei", &password, "operator", &[], &[])?;

    let x = Xueliang::start(dir, port, &config, &[])?;
    // The pipeline runs: wait for the camera before the browser starts, so
    // that a slow start shows as such and not as a browser failure.
    wait_for(Duration::from_secs(30), || {
        Ok((x.health("walkway")?["state"] == "online").then_some(()))
    })
    .with_context(|| format!("the camera did not come online: {}", x.log()))?;

    let screenshot = x.dir.path().join("dashboard-failure.png");
    let started = Instant::now();
    let out = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .env("XUELIANG_URL", &x.base)
        .env("XUELIANG_USER", "zhang.wei")
        .env("XUELIANG_PASSWORD", &password)
        .env("XUELIANG_SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .output()
        .context("running node tests/browser/dashboard.mjs")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "browser test ({:.1} s):\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    if !out.status.success() {
        // Keep the screenshot where a person can look at it.
        let kept = std::env::temp_dir().join(format!("xueliang-dashboard-failure-{port}.png"));
        let _ = std::fs::copy(&screenshot, &kept);
        bail!(
            "the browser test failed ({}); screenshot: {}\nserver log:\n{}",
            out.status,
            kept.display(),
            x.log()
        );
    }
    assert!(
        stdout.contains("PASS"),
        "the script exited 0 without passing"
    );
    x.stop()?;
    Ok(())
}

#[test]
fn an_admin_manages_users_in_the_browser() -> Result<()> {
    let (chromium, browser_dir) = browser_tools()?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = config_header(dir.path(), port, 1.0);
    let x = Xueliang::start(dir, port, &config, &[])?;

    let screenshot = x.dir.path().join("users-failure.png");
    let out = Command::new("node")
        .arg(browser_dir.join("users.mjs"))
        .env("XUELIANG_URL", &x.base)
        .env("XUELIANG_USER", ADMIN)
        .env("XUELIANG_PASSWORD", ADMIN_PASSWORD)
        .env("XUELIANG_NEW_USER", "li.na")
        .env("XUELIANG_SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .output()
        .context("running node tests/browser/users.mjs")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let kept = std::env::temp_dir().join(format!("xueliang-users-failure-{port}.png"));
        let _ = std::fs::copy(&screenshot, &kept);
        bail!(
            "the users page test failed ({}); screenshot: {}\nserver log:\n{}",
            out.status,
            kept.display(),
            x.log()
        );
    }
    assert!(
        stdout.contains("PASS"),
        "the script exited 0 without passing"
    );

    // What the page did, read back through the API.
    let users = x.get("/api/v1/users")?;
    let li = users["items"]
        .as_array()
        .and_then(|us| us.iter().find(|u| u["username"] == "li.na"))
        .with_context(|| format!("li.na was not made: {users}"))?;
    assert_eq!(li["role"], "viewer", "{li}");
    assert_eq!(li["villages"], serde_json::json!(["东村", "西村"]), "{li}");
    assert_eq!(li["disabled"], true, "{li}");
    let tokens = x.get("/api/v1/tokens")?;
    let api_token = tokens["items"]
        .as_array()
        .and_then(|ts| {
            ts.iter()
                .find(|t| t["username"] == "li.na" && t["kind"] == "api")
        })
        .with_context(|| format!("li.na's API token is not listed: {tokens}"))?;
    assert!(api_token["revoked_at"].is_string(), "{api_token}");
    x.stop()?;
    Ok(())
}
