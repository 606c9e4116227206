//! Cameras changed through the API while the real binary runs against the
//! real RTSP server: added, changed, disabled, deleted, and the changes kept
//! across a restart on the same data directory.

use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::time::Duration;
use xueliang_e2e::{config_header, fixture, free_port, wait_for, RtspServer, Xueliang};

/// Every API call of this file goes through here (one place to add headers,
/// e.g. an access token). Returns the status and the body (JSON, or `null`).
fn call(x: &Xueliang, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let (status, _, bytes) = call_raw(x, method, path, body)?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Like [`call`], with the content type and the raw body.
fn call_raw(
    x: &Xueliang,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, String, Vec<u8>)> {
    xueliang_e2e::http_request(
        method,
        &format!("{}/api/v1{path}", x.base),
        Some(&x.token),
        body.as_ref(),
    )
}

fn health(x: &Xueliang, id: &str) -> Result<Value> {
    match call(x, "GET", &format!("/cameras/{id}/health"), None)? {
        (200, h) => Ok(h),
        (code, body) => bail!("health of {id}: {code} {body}"),
    }
}

fn wait_online(x: &Xueliang, id: &str) -> Result<Value> {
    wait_for(Duration::from_secs(30), || {
        let h = health(x, id)?;
        Ok((h["state"] == "online" && h["frames_received"].as_u64() > Some(0)).then_some(h))
    })
}

/// The latest frame once there is one: (width, height) of the decoded JPEG.
fn frame_size(x: &Xueliang, id: &str) -> Result<Option<(u16, u16)>> {
    let (status, ctype, body) = call_raw(x, "GET", &format!("/cameras/{id}/frame.jpg"), None)?;
    if status != 200 {
        let e: Value = serde_json::from_slice(&body)?;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (404, Some("no_frame")),
            "{e}"
        );
        return Ok(None);
    }
    assert_eq!(ctype, "image/jpeg");
    let mut decoder = jpeg_decoder::Decoder::new(&body[..]);
    decoder.decode()?;
    let info = decoder.info().expect("decoded");
    Ok(Some((info.width, info.height)))
}

fn ids(x: &Xueliang) -> Result<Vec<String>> {
    let (code, list) = call(x, "GET", "/cameras", None)?;
    assert_eq!(code, 200);
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Stops the process cleanly (SIGTERM) and hands back its directory.
fn stop_keeping_dir(mut x: Xueliang) -> Result<tempfile::TempDir> {
    let dir = std::mem::replace(&mut x.dir, tempfile::tempdir()?);
    let status = x.stop()?;
    assert!(status.success(), "xueliang exits cleanly: {status:?}");
    Ok(dir)
}

#[test]
fn cameras_change_through_the_api_without_a_restart_and_the_changes_are_kept() -> Result<()> {
    // Checks answers and stored state, no timing: runs beside such tests.
    let _turn = xueliang_e2e::share_the_machine();
    let clip = fixture("vtest-h264.mp4"); // 768x576
    let d1 = fixture("vtest-d1-25fps.mp4"); // 704x576
    let args: Vec<String> = [
        "--mount".into(),
        format!("first={}", clip.display()),
        "--mount".into(),
        format!("second={}", clip.display()),
        "--mount".into(),
        format!("d1={}", d1.display()),
        "--loop".into(),
    ]
    .into();
    let server = RtspServer::start(&args)?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = format!(
        "{}\n[detection]\nfps = 2\n\n[[cameras]]\nid = \"first\"\nname = \"一号\"\nurl = \"{}\"\nvillage = \"东村\"\n",
        config_header(dir.path(), port, 0.5),
        server.url("first"),
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    wait_online(&x, "first")?;

    // Refused bodies name the field and never echo the password.
    let second = json!({"id": "second", "name": "二号", "url": server.url("second"),
        "village": "西村", "grid": "二网格", "username": "admin", "password": "pw-7731"});
    let mut no_url = second.clone();
    no_url.as_object_mut().unwrap().remove("url");
    let (code, e) = call(&x, "POST", "/cameras", Some(no_url))?;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("invalid_camera")),
        "{e}"
    );
    let msg = e["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("url") && !msg.contains("pw-7731"), "{msg}");
    let mut bad_fps = second.clone();
    bad_fps["detection"] = json!({"fps": 0});
    let (code, e) = call(&x, "POST", "/cameras", Some(bad_fps))?;
    assert_eq!(code, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("detection.fps"),
        "{e}"
    );
    let (code, e) = call(
        &x,
        "POST",
        "/cameras",
        Some(json!({"id": "first", "name": "x", "url": server.url("first")})),
    )?;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );

    // Added: it goes online and its frames are counted and analysed.
    let (code, cam) = call(&x, "POST", "/cameras", Some(second))?;
    assert_eq!(code, 201, "{cam}");
    assert_eq!(cam["id"], "second");
    assert!(!cam.to_string().contains("pw-7731"), "{cam}");
    let h = wait_online(&x, "second")?;
    assert!(h["frames_received"].as_u64() > Some(0), "{h}");
    wait_for(Duration::from_secs(30), || {
        Ok((health(&x, "second")?["frames_detected"].as_u64() > Some(0)).then_some(()))
    })?;
    let size = wait_for(Duration::from_secs(20), || frame_size(&x, "second"))?;
    assert_eq!(size, (768, 576));
    let (code, one) = call(&x, "GET", "/cameras/second", None)?;
    assert_eq!((code, one["village"].as_str()), (200, Some("西村")));
    assert_eq!(ids(&x)?, ["first", "second"]);

    // Changed to another stream: the new picture size shows in frame.jpg.
    let (code, e) = call(&x, "PATCH", "/cameras/second", Some(json!({"id": "other"})))?;
    assert_eq!(code, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`id`"),
        "{e}"
    );
    let (code, cam) = call(
        &x,
        "PATCH",
        "/cameras/second",
        Some(json!({"url": server.url("d1")})),
    )?;
    assert_eq!(code, 200, "{cam}");
    assert!(
        cam["url"].as_str().unwrap_or_default().ends_with("/d1"),
        "{cam}"
    );
    wait_for(Duration::from_secs(30), || {
        Ok((frame_size(&x, "second")? == Some((704, 576))).then_some(()))
    })?;
    wait_online(&x, "second")?;

    // Disabled: listed as disabled, no frames any more.
    let (code, cam) = call(
        &x,
        "PATCH",
        "/cameras/second",
        Some(json!({"enabled": false})),
    )?;
    assert_eq!((code, &cam["enabled"]), (200, &json!(false)), "{cam}");
    wait_for(Duration::from_secs(5), || {
        Ok((health(&x, "second")?["state"] == "disabled").then_some(()))
    })?;
    let before = health(&x, "second")?["frames_received"].clone();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(health(&x, "second")?["frames_received"], before);
    assert_eq!(frame_size(&x, "second")?, None);
    assert_eq!(
        ids(&x)?,
        ["first", "second"],
        "a disabled camera is still listed"
    );

    // The untouched camera kept running all along.
    assert_eq!(
        wait_for(Duration::from_secs(10), || frame_size(&x, "first"))?,
        (768, 576)
    );
    assert_eq!(health(&x, "first")?["state"], "online");

    // Deleted: gone from the list; its events stay.
    let (code, _) = call(&x, "DELETE", "/cameras/first", None)?;
    assert_eq!(code, 204);
    let (code, e) = call(&x, "GET", "/cameras/first", None)?;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(ids(&x)?, ["second"]);

    // Restarted on the same data with the same config file: the API's
    // changes win over the file.
    let dir = stop_keeping_dir(x)?;
    let x = Xueliang::restart(dir, port, &config)?;
    assert_eq!(
        ids(&x)?,
        ["second"],
        "deleted stays deleted; created is back"
    );
    let (_, cam) = call(&x, "GET", "/cameras/second", None)?;
    assert_eq!(cam["enabled"], false);
    assert!(
        x.log()
            .contains("camera deleted through the API; the config file's definition is not used"),
        "{}",
        x.log()
    );

    // Enabled again (with the stored password kept), and `first` re-created
    // with its old id: both run.
    let (code, _) = call(
        &x,
        "PATCH",
        "/cameras/second",
        Some(json!({"enabled": true})),
    )?;
    assert_eq!(code, 200);
    let (code, _) = call(
        &x,
        "POST",
        "/cameras",
        Some(json!({"id": "first", "name": "一号新", "url": server.url("first")})),
    )?;
    assert_eq!(code, 201);
    wait_online(&x, "second")?;
    wait_online(&x, "first")?;
    assert_eq!(
        wait_for(Duration::from_secs(20), || frame_size(&x, "second"))?,
        (704, 576)
    );
    assert_eq!(ids(&x)?, ["second", "first"]);
    assert!(!x.log().contains("pw-7731"), "the password is never logged");

    // Once more: the re-created `first` is in the file too; the database's
    // definition wins, and says so.
    let dir = stop_keeping_dir(x)?;
    let x = Xueliang::restart(dir, port, &config)?;
    assert_eq!(ids(&x)?, ["first", "second"], "file order, then the API's");
    let (_, cam) = call(&x, "GET", "/cameras/first", None)?;
    assert_eq!(cam["name"], "一号新");
    assert!(x.log().contains("overrides the config file"), "{}", x.log());
    wait_online(&x, "first")?;
    x.stop()?;
    Ok(())
}
