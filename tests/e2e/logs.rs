//! Logs written to a pipe or a file carry no colour codes; `--log-format
//! json` writes one JSON object per line for log collectors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xueliang_e2e::{config_header, free_port, http_get, xueliang_bin, ChildGuard};

const CAMERA: &str = r#"
[[cameras]]
id = "bridge"
name = "大桥"
url = "rtsp://127.0.0.1:9/bridge"
"#;

/// Starts `serve` with `args`, its standard error to a file, waits until it
/// answers, stops it with SIGTERM and returns what it logged.
fn serve_log(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("{}{CAMERA}", config_header(dir.path(), port, 1.0)),
    )
    .unwrap();
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = ChildGuard(
        Command::new(xueliang_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .args(args)
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "info")
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
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "serve exited: {text}"
        );
        assert!(Instant::now() < deadline, "serve did not answer: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let _ = child.0.wait();
    std::fs::read_to_string(&log_path).unwrap()
}

#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let log = serve_log(&[]);
    assert!(log.contains("detector ready"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = serve_log(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ready = lines
        .iter()
        .find(|l| l["fields"]["message"] == "detector ready")
        .unwrap_or_else(|| panic!("no `detector ready` line: {log}"));
    assert_eq!(ready["level"], "INFO", "{ready}");
    assert!(ready["fields"]["workers"].is_number(), "{ready}");
    assert!(ready["timestamp"].is_string(), "{ready}");
}
