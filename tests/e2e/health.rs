//! Camera health against the real RTSP server: outages and recovery, stalls,
//! wrong passwords, and many cameras of which some fail.

use anyhow::Result;
use serde_json::Value;
use std::time::Duration;
use xueliang_e2e::{config_header, fixture, free_port, wait_for, RtspServer, Xueliang};

fn mount(name: &str) -> Vec<String> {
    vec![
        "--mount".into(),
        format!("{name}={}", fixture("vtest-h264.mp4").display()),
    ]
}

fn camera(id: &str, url: &str, extra: &str) -> String {
    format!("\n[[cameras]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nvillage = \"东村\"\n{extra}\n")
}

fn events(x: &Xueliang, kind: &str, camera: &str) -> Result<Vec<Value>> {
    x.all_events(&format!("&kind={kind}&camera={camera}"))
}

#[test]
fn a_server_that_dies_and_returns_gives_offline_then_recovered() -> Result<()> {
    let mut args = mount("cam");
    args.push("--loop".into());
    let server = RtspServer::start(&args)?;
    let rtsp_port = server.port;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = format!(
        "{}\n[health]\noffline_grace_s = 3\nsample_interval_s = 1\n{}",
        config_header(dir.path(), port, 0.5),
        camera("cam", &server.url("cam"), "")
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    wait_for(Duration::from_secs(20), || {
        Ok((x.health("cam")?["state"] == "online").then_some(()))
    })?;

    drop(server); // killed mid-stream
    let h = wait_for(Duration::from_secs(20), || {
        let h = x.health("cam")?;
        Ok((h["state"] == "offline").then_some(h))
    })?;
    assert!(
        ["refused", "stream_ended", "protocol"].contains(&h["reason"].as_str().unwrap()),
        "{h}"
    );
    let offline = wait_for(Duration::from_secs(20), || {
        Ok(events(&x, "camera_offline", "cam")?.pop())
    })?;
    assert_eq!(offline["status"], "active", "{offline}");
    assert!(events(&x, "camera_recovered", "cam")?.is_empty());

    let _back = RtspServer::start_on(rtsp_port, &args)?;
    let recovered = wait_for(Duration::from_secs(30), || {
        Ok(events(&x, "camera_recovered", "cam")?.pop())
    })?;
    assert_eq!(recovered["status"], "ended");
    assert!(
        recovered["detail"].as_str().unwrap().contains("min"),
        "{recovered}"
    );
    let offline = x.get(&format!("/api/v1/events/{}", offline["id"]))?;
    assert_eq!(
        offline["status"], "ended",
        "the outage event ends at recovery: {offline}"
    );
    assert!(offline["ended_at"].as_str().unwrap() <= recovered["started_at"].as_str().unwrap());
    assert_eq!(x.health("cam")?["state"], "online");
    assert_eq!(
        events(&x, "camera_offline", "cam")?.len(),
        1,
        "one outage, one event"
    );

    // The outage shows in the online rate (samples every second).
    std::thread::sleep(Duration::from_secs(2));
    let report = x.get("/api/v1/reports/availability?group_by=camera")?;
    let rate = report["items"][0]["online_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate < 1.0, "{report}");
    Ok(())
}

#[test]
fn sixteen_cameras_four_failing_the_twelve_good_keep_their_frame_rate() -> Result<()> {
    let mut args = vec!["--loop".to_string()];
    for i in 0..12 {
        args.extend(mount(&format!("good{i}")));
    }
    args.extend(["--silent".to_string(), "stall".to_string()]);
    let open = RtspServer::start(&args)?;
    let mut locked_args = mount("locked");
    locked_args.extend([
        "--loop".into(),
        "--auth".into(),
        "admin:right-password".into(),
    ]);
    let locked = RtspServer::start(&locked_args)?;
    let garbage = std::net::TcpListener::bind("127.0.0.1:0")?;
    let garbage_port = garbage.local_addr()?.port();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut c in garbage.incoming().flatten() {
            let _ = c.write_all(b"\xff\xfe garbage, not RTSP\r\n\r\n");
        }
    });

    let dir = tempfile::tempdir()?;
    let port = free_port();
    let mut config = config_header(dir.path(), port, 1.0);
    // One detection a second: the point is the frame rate of the good
    // cameras beside failing ones. On the slow (AVX2) hosts of 2026-12 a
    // detection costs ~63 ms of CPU, so 12 x 2/s (1.5 cores for inference
    // alone) left no room and detection fell behind now and then.
    config.push_str("\n[detection]\nfps = 1\n");
    for i in 0..12 {
        config.push_str(&camera(
            &format!("good{i}"),
            &open.url(&format!("good{i}")),
            "",
        ));
    }
    config.push_str(&camera("stall", &open.url("stall"), ""));
    config.push_str(&camera(
        "wrong-password",
        &locked.url("locked"),
        "username = \"admin\"\npassword = \"wrong\"",
    ));
    config.push_str(&camera(
        "garbage",
        &format!("rtsp://127.0.0.1:{garbage_port}/x"),
        "",
    ));
    config.push_str(&camera(
        "refused",
        &format!("rtsp://127.0.0.1:{}/x", free_port()),
        "",
    ));
    let x = Xueliang::start(dir, port, &config, &[])?;

    for (id, reason) in [
        ("stall", "stalled"),
        ("wrong-password", "auth_failed"),
        ("garbage", "protocol"),
        ("refused", "refused"),
    ] {
        let h = wait_for(Duration::from_secs(30), || {
            let h = x.health(id)?;
            Ok((h["state"] == "offline").then_some(h))
        })?;
        assert_eq!(h["reason"], reason, "{id}: {h}");
    }
    // Let the good cameras run a full measuring window beside the failing ones.
    wait_for(Duration::from_secs(30), || {
        let all_online = (0..12).all(|i| {
            x.health(&format!("good{i}"))
                .is_ok_and(|h| h["state"] == "online")
        });
        Ok(all_online.then_some(()))
    })?;
    let at_start: Vec<Value> = (0..12)
        .map(|i| x.health(&format!("good{i}")))
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(12));
    let mut rates = Vec::new();
    let mut dropped = 0;
    for (i, start) in at_start.iter().enumerate() {
        let h = x.health(&format!("good{i}"))?;
        let delta = |k: &str| h[k].as_u64().unwrap() - start[k].as_u64().unwrap();
        dropped += delta("frames_dropped_detect");
        let fps = h["fps"].as_f64().unwrap();
        rates.push(fps);
        assert!((9.0..=11.0).contains(&fps), "good{i} at {fps} fps: {h}");
        assert!(
            (0.85..=1.15).contains(&h["detection_fps"].as_f64().unwrap()),
            "good{i}: {h}"
        );
        assert_eq!(h["frames_dropped_decode"], 0, "good{i}: {h}");
        assert_eq!(h["reconnects"], 0, "good{i}: {h}");
    }
    // Detection keeps up in steady state: 12 cameras x 1/s x 12 s = 144 frames
    // offered; a few may be replaced while other tests load the machine.
    eprintln!("12 good cameras, fps: {rates:?}; {dropped} of ~144 frames dropped before detection");
    assert!(
        dropped <= 8,
        "{dropped} frames dropped before detection in 12 s"
    );

    // Wrong password: backed off (1 s doubling to 4 s), not a tight loop.
    let before = x.health("wrong-password")?["reconnects"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(12));
    let after = x.health("wrong-password")?["reconnects"].as_u64().unwrap();
    assert!(
        after > before && after - before <= 6,
        "{before} -> {after} attempts in 12 s"
    );
    assert!(!x.log().contains("panicked"));
    Ok(())
}
