//! The operators' dashboard in a real browser: headless Chromium (Debian's
//! package) driven by playwright-core (tests/browser/dashboard.mjs) against
//! the real binary, whose camera sees the people in the test footage. The
//! script logs in as an operator (made with `xueliang user add`, as the
//! first admin is by `Xueliang::start`), waits for an event to arrive live on
//! the wall, opens and acknowledges it, and checks the audit trail and the API.
//! A second script (tests/browser/users.mjs) manages a user on the users
//! page as the admin; the result is read back through the API. The GB/T
//! 28181 device list is checked in the browser by tests/e2e/gb28181.rs.

use anyhow::{Context, Result};
use std::time::Duration;
use xueliang_e2e::{
    add_user, browser, config_header, fixture, free_port, wait_for, RtspServer, Xueliang, ADMIN,
    ADMIN_PASSWORD,
};

#[test]
fn an_operator_sees_a_live_event_and_acknowledges_it_in_the_browser() -> Result<()> {
    // Checks answers and stored state, no timing: runs beside such tests.
    let _turn = xueliang_e2e::share_the_machine();
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

    browser::run_script(&x, "dashboard.mjs", "zhang.wei", &password, &[])?;
    x.stop()?;
    Ok(())
}

#[test]
fn an_admin_manages_users_in_the_browser() -> Result<()> {
    // Checks answers and stored state, no timing: runs beside such tests.
    let _turn = xueliang_e2e::share_the_machine();
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = config_header(dir.path(), port, 1.0);
    let x = Xueliang::start(dir, port, &config, &[])?;

    browser::run_script(
        &x,
        "users.mjs",
        ADMIN,
        ADMIN_PASSWORD,
        &[("XUELIANG_NEW_USER", "li.na")],
    )?;

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
