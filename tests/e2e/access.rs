//! Access control through the real binary: the CLI makes users (password on
//! standard input, never echoed), nothing but /healthz answers without a
//! token, a village user's token sees only their village's camera, and no
//! password or token ever reaches the log, a response or an error message.

use anyhow::Result;
use serde_json::json;
use std::time::Duration;
use xueliang_e2e::{
    add_user, call_json, config_header, fixture, free_port, login, wait_for, RtspServer, Xueliang,
    ADMIN_PASSWORD,
};

const CAMERA_PASSWORD: &str = "cam-Pa55-e2e-91f";
const VILLAGE_PASSWORD: &str = "village-Pa55-e2e-3d2";

#[test]
fn tokens_scopes_and_no_secret_in_logs_or_answers() -> Result<()> {
    // Checks answers and stored state, no timing: runs beside such tests.
    let _turn = xueliang_e2e::share_the_machine();
    let clip = format!("gate={}", fixture("vtest-h264.mp4").display());
    let server = RtspServer::start(&[
        "--loop".into(),
        "--mount".into(),
        clip,
        "--auth".into(),
        format!("admin:{CAMERA_PASSWORD}"),
    ])?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = format!(
        "{}\n[[cameras]]\nid = \"east-gate\"\nname = \"东村村口\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"{CAMERA_PASSWORD}\"\nvillage = \"东村\"\n\n[[cameras]]\nid = \"west-road\"\nname = \"西村路口\"\nurl = \"rtsp://127.0.0.1:{}/none\"\nvillage = \"西村\"\n",
        config_header(dir.path(), port, 1.0),
        server.url("gate"),
        free_port(),
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    let config_path = x.dir.path().join("config.toml");
    add_user(
        &config_path,
        "dongcun",
        VILLAGE_PASSWORD,
        "viewer",
        &["东村"],
        &[],
    )?;
    let base = &x.base;

    // Without a token: nothing but /healthz.
    let (status, v) = call_json("GET", &format!("{base}/api/v1/cameras"), None, None)?;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(
        call_json("GET", &format!("{base}/healthz"), None, None)?.0,
        200
    );

    // A wrong password, then the right one.
    let bad = json!({"username": "dongcun", "password": format!("{VILLAGE_PASSWORD}-typo")});
    let (status, v) = call_json(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(&bad),
    )?;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    assert!(!v.to_string().contains(VILLAGE_PASSWORD));
    let village = login(base, "dongcun", VILLAGE_PASSWORD)?;

    // The village user sees their camera, with live health, and not the other.
    let cams = wait_for(Duration::from_secs(30), || {
        let (_, v) = call_json(
            "GET",
            &format!("{base}/api/v1/cameras"),
            Some(&village),
            None,
        )?;
        let online = v["items"][0]["health"]["state"] == "online";
        Ok(online.then_some(v))
    })?;
    let ids: Vec<&str> = cams["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["east-gate"]);
    let (status, _) = call_json(
        "GET",
        &format!("{base}/api/v1/cameras/west-road/health"),
        Some(&village),
        None,
    )?;
    assert_eq!(status, 404);

    // An API token made by the admin works, and is gone once revoked.
    let (status, made) = x.call("POST", "/api/v1/tokens", Some(&json!({"name": "县平台"})))?;
    assert_eq!(status, 201, "{made}");
    let api_token = made["token"].as_str().unwrap().to_owned();
    let (status, _) = call_json(
        "GET",
        &format!("{base}/api/v1/events"),
        Some(&api_token),
        None,
    )?;
    assert_eq!(status, 200);
    let (status, _) = x.call("DELETE", &format!("/api/v1/tokens/{}", made["id"]), None)?;
    assert_eq!(status, 204);
    let (status, _) = call_json(
        "GET",
        &format!("{base}/api/v1/events"),
        Some(&api_token),
        None,
    )?;
    assert_eq!(status, 401);

    // Everything the admin can read, gathered, holds no secret.
    let mut answers = String::new();
    for path in [
        "/api/v1/cameras",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/auth/me",
    ] {
        answers.push_str(&x.get(path)?.to_string());
    }
    let log = x.log();
    for secret in [
        CAMERA_PASSWORD,
        VILLAGE_PASSWORD,
        ADMIN_PASSWORD,
        &api_token,
        &village,
        &x.token,
    ] {
        assert!(!answers.contains(secret), "a secret is in an API answer");
        assert!(!log.contains(secret), "a secret is in the log");
    }
    assert!(
        log.contains("login failed"),
        "failed logins are logged (without the password)"
    );
    drop(server);
    Ok(())
}
