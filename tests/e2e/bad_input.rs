//! Cameras that refuse, lie or speak garbage get a clear offline reason, and
//! the good camera next to them keeps its full frame rate and its events.

use anyhow::Result;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;
use xueliang_e2e::{config_header, fixture, free_port, wait_for, RtspServer, Xueliang};

const SECRET: &str = "s3cret-Pa55-only-in-env";

/// A TCP peer that answers every connection with bytes that are not RTSP.
fn garbage_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"\x00\xff\xfeSSH-2.0-OpenSSH_9.2 not rtsp at all\r\n\r\n\x16\x03\x01garbage",
            );
        }
    });
    port
}

/// A TCP peer that accepts connections and never says anything.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in listener.incoming().flatten() {
            open.push(conn);
        }
    });
    port
}

fn camera(id: &str, url: &str, extra: &str) -> String {
    format!("\n[[cameras]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn failing_cameras_get_a_reason_and_the_good_ones_keep_working() -> Result<()> {
    let clip = format!("good={}", fixture("vtest-h264.mp4").display());
    let open = RtspServer::start(&["--loop".into(), "--mount".into(), clip.clone()])?;
    let locked = RtspServer::start(&[
        "--loop".into(),
        "--mount".into(),
        clip,
        "--auth".into(),
        format!("admin:{SECRET}"),
    ])?;
    let closed_port = free_port();
    let garbage_port = garbage_listener();
    let silent_port = silent_listener();
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = [
        config_header(dir.path(), port, 1.0),
        camera("good", &open.url("good"), ""),
        camera("refused", &format!("rtsp://127.0.0.1:{closed_port}/x"), ""),
        // Accepts the connection, never answers (a hung camera, or a firewall
        // that swallows packets): the request times out.
        camera(
            "unreachable",
            &format!("rtsp://127.0.0.1:{silent_port}/x"),
            "",
        ),
        camera("wrong-path", &open.url("no-such-mount"), ""),
        camera("garbage", &format!("rtsp://127.0.0.1:{garbage_port}/x"), ""),
        camera(
            "wrong-password",
            &locked.url("good"),
            "username = \"admin\"\npassword = \"not-the-password\"",
        ),
        camera(
            "with-password",
            &locked.url("good"),
            "username = \"admin\"\npassword_env = \"XUELIANG_TEST_CAMERA_PW\"",
        ),
        camera("disabled", &open.url("good"), "enabled = false"),
    ]
    .concat();
    let x = Xueliang::start(dir, port, &config, &[("XUELIANG_TEST_CAMERA_PW", SECRET)])?;

    let expect = [
        ("refused", "refused"),
        ("unreachable", "unreachable"),
        ("wrong-path", "not_found"),
        ("garbage", "protocol"),
        ("wrong-password", "auth_failed"),
    ];
    for (id, reason) in expect {
        let h = wait_for(Duration::from_secs(20), || {
            let h = x.health(id)?;
            Ok((h["state"] == "offline").then_some(h))
        })?;
        assert_eq!(h["reason"], reason, "{id}: {h}");
        assert!(
            !h["detail"].as_str().unwrap_or_default().is_empty(),
            "{id}: {h}"
        );
    }
    assert_eq!(x.health("disabled")?["state"], "disabled");

    // The good cameras: online at the stream's 10 fps, with person events.
    for id in ["good", "with-password"] {
        wait_for(Duration::from_secs(20), || {
            Ok((x.health(id)?["state"] == "online").then_some(()))
        })?;
    }
    std::thread::sleep(Duration::from_secs(4));
    for id in ["good", "with-password"] {
        let h = x.health(id)?;
        let fps = h["fps"].as_f64().unwrap();
        assert!((8.5..=11.5).contains(&fps), "{id}: fps {fps}: {h}");
        assert_eq!(h["reconnects"], 0, "{id}: {h}");
    }
    let events = wait_for(Duration::from_secs(20), || {
        let e = x.all_events("&camera=good&label=person")?;
        Ok((!e.is_empty()).then_some(e))
    })?;
    assert!(!events.is_empty());

    // Failing cameras retry with backoff, not in a tight loop: with a 1 s first
    // delay doubling to a 4 s cap, 10 s allow at most ~6 attempts.
    let before = x.health("refused")?["reconnects"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let after = x.health("refused")?["reconnects"].as_u64().unwrap();
    assert!(
        after - before <= 7,
        "{before} -> {after} reconnects in 10 s"
    );
    assert!(after > before, "it keeps retrying");

    // The password is never shown: not in the API, not in the log.
    let cameras = x.get("/api/v1/cameras")?.to_string();
    assert!(!cameras.contains(SECRET) && !cameras.contains("not-the-password"));
    let log = x.log();
    assert!(
        !log.contains(SECRET) && !log.contains("not-the-password"),
        "password in log"
    );
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}
