//! A full disk under the real service: its data directory is a 64 MiB tmpfs
//! mounted by the test (needs root; the test fails, never skips, when it
//! cannot mount), filled by the test while a camera is watched. The process
//! stays up, `/healthz` says why the store is degraded, the camera stays
//! online and is still watched (an outage and its recovery show in its
//! health while the disk is full); once space returns a `store_full` event is recorded and the
//! events of the full stretch are stored.

use anyhow::Result;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use xueliang_e2e::{
    config_header, fixture, free_port, http_get_json, wait_for, RtspServer, Xueliang,
};

/// A size-limited tmpfs at a path, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("cannot run mount");
        assert!(
            out.status.success(),
            "this test needs root to mount a tmpfs at {}: {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the disk refuses more.
fn fill(path: &Path) -> Result<u64> {
    let mut f = std::fs::File::create(path)?;
    let block = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write_all(&block) {
            Ok(()) => written += block.len() as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(e.into()),
        }
    }
    while f.write_all(&[0u8; 512]).is_ok() {}
    Ok(written)
}

fn objects(x: &Xueliang) -> Result<Vec<Value>> {
    x.all_events("&camera=gate&kind=object")
}

#[test]
fn a_full_disk_keeps_the_service_up_and_loses_no_event() -> Result<()> {
    let args = [
        "--mount".into(),
        format!("gate={}", fixture("vtest-h264.mp4").display()),
        "--loop".into(),
    ];
    let server = RtspServer::start(&args)?;
    let rtsp_port = server.port;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let fs = Tmpfs::mount(&data, "64m");
    let port = free_port();
    let config = format!(
        "{}\n[health]\nsample_interval_s = 1\noffline_grace_s = 2\n\n[[cameras]]\nid = \"gate\"\nname = \"gate\"\nurl = \"{}\"\n\
         detection = {{ fps = 5, labels = [\"person\"], min_score = 0.5, cooldown_s = 2, lost_after_s = 1 }}\n",
        config_header(dir.path(), port, 0.5),
        server.url("gate"),
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    wait_for(Duration::from_secs(30), || {
        Ok((!objects(&x)?.is_empty()).then_some(()))
    })?;

    // The disk fills up under the running service.
    let filler = fs.0.join("filler");
    let filled = fill(&filler)?;
    let full_at = chrono::Utc::now();
    let h = wait_for(Duration::from_secs(30), || {
        let h = http_get_json(&healthz)?;
        Ok((h["status"] == "degraded").then_some(h))
    })?;
    assert_eq!(h["store"]["kind"], "full", "{h}");
    assert!(
        h["store"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("disk full"),
        "{h}"
    );
    // Full for a while: the process serves, the camera is watched and online.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(1));
        // /healthz answering is the process up.
        let cams = x.get("/api/v1/cameras")?;
        let gate = &cams["items"][0];
        assert_eq!(gate["id"], "gate");
        assert_eq!(gate["health"]["state"], "online", "{gate}");
        assert_eq!(http_get_json(&healthz)?["status"], "degraded");
        // Stored events are still read (new connections write nothing).
        assert!(!objects(&x)?.is_empty());
    }

    // The camera is still watched: it goes offline (its camera_offline event
    // written or waiting) and comes back, and its health shows both.
    drop(server);
    wait_for(Duration::from_secs(20), || {
        Ok((x.health("gate")?["state"] == "offline").then_some(()))
    })?;
    std::thread::sleep(Duration::from_secs(4)); // past the grace period
    let _back = RtspServer::start_on(rtsp_port, &args)?;
    wait_for(Duration::from_secs(30), || {
        Ok((x.health("gate")?["state"] == "online").then_some(()))
    })?;
    assert_eq!(http_get_json(&healthz)?["status"], "degraded");

    // Space returns.
    std::fs::remove_file(&filler)?;
    let full = wait_for(Duration::from_secs(60), || {
        Ok(x.all_events("&kind=store_full")?.pop())
    })?;
    assert_eq!(full["status"], "ended", "{full}");
    assert!(
        full["detail"]
            .as_str()
            .unwrap_or("")
            .contains("disk was full"),
        "{full}"
    );
    assert_eq!(http_get_json(&healthz)?["status"], "ok");
    // The outage's events and those of the full stretch were stored.
    let offline = x.all_events("&kind=camera_offline&camera=gate")?;
    assert_eq!(offline.len(), 1, "{offline:?}");
    let later = wait_for(Duration::from_secs(30), || {
        let later: Vec<Value> = objects(&x)?
            .into_iter()
            .filter(|e| {
                e["started_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t > full_at)
            })
            .collect();
        Ok((!later.is_empty()).then_some(later))
    })?;
    eprintln!(
        "filled {} MiB; {} object events since the disk filled; store_full: {}",
        filled / (1024 * 1024),
        later.len(),
        full["detail"]
    );
    drop(x);
    drop(fs);
    Ok(())
}
