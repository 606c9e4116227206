//! Relative paths in the config file are taken from the file's directory, so
//! `check-config` and `serve` work from any working directory; the default
//! model and onnxruntime are the installation's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xueliang_e2e::{free_port, http_get, repo, xueliang_bin, ChildGuard};

const CAMERA: &str = r#"
[[cameras]]
id = "bridge"
name = "大桥"
url = "rtsp://127.0.0.1:9/bridge"
"#;

/// A config directory with the model and onnxruntime under relative names
/// (links to the repository's), and the config text naming them relatively.
fn config_dir(port: u16) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("models"), dir.path().join("models")).unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::os::unix::fs::symlink(
        repo().join(".local/onnxruntime/libonnxruntime.so.1.32.0"),
        dir.path().join("lib/libonnxruntime.so"),
    )
    .unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
metrics_listen = "127.0.0.1:{metrics}"

[storage]
data_dir = "state"
url = "sqlite://db/xueliang.db"

[detector]
model = "models/ssd_mobilenet_v2_coco.toml"
onnxruntime = "lib/libonnxruntime.so"
{CAMERA}"#,
        metrics = free_port(),
    );
    (dir, text)
}

fn xueliang(cwd: &Path) -> Command {
    let mut cmd = Command::new(xueliang_bin());
    cmd.current_dir(cwd).env_remove("ORT_DYLIB_PATH");
    cmd
}

#[test]
fn relative_paths_are_taken_from_the_config_files_directory() {
    let port = free_port();
    let (dir, text) = config_dir(port);
    let config = dir.path().join("xueliang.toml");
    std::fs::write(&config, text).unwrap();
    std::fs::create_dir(dir.path().join("db")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    let out = xueliang(elsewhere.path())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = ChildGuard(
        xueliang(elsewhere.path())
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(
        http_get(&format!("http://127.0.0.1:{port}/healthz")),
        Ok((200, _, _))
    ) {
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        assert!(child.0.try_wait().unwrap().is_none(), "serve exited: {log}");
        assert!(Instant::now() < deadline, "serve did not answer: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(dir.path().join("db/xueliang.db").is_file());
    assert!(dir.path().join("state").is_dir());
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "written in the working directory: {left:?}"
    );
}

#[test]
fn the_default_model_and_onnxruntime_are_found_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("xueliang.toml");
    std::fs::write(&config, CAMERA).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = xueliang(elsewhere.path())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_demo_config_is_checked_in_place_from_another_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = xueliang(elsewhere.path())
        .args(["check-config", "--config"])
        .arg(repo().join("config/demo.toml"))
        .env("XUELIANG_DEMO_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 cameras"));
}
