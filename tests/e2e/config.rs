//! A bad config or a broken install is refused at startup with a message that
//! says what to fix, and the process exits non-zero.

use std::process::{Command, Output};
use xueliang_e2e::{config_header, free_port, repo, xueliang_bin};

fn run(args: &[&str], config: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(xueliang_bin())
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

const CAMERA: &str = r#"
[[cameras]]
id = "bridge"
name = "大桥"
url = "rtsp://127.0.0.1:8554/bridge"
"#;

fn header() -> String {
    config_header(
        std::path::Path::new("/tmp/xueliang-config-test"),
        free_port(),
        1.0,
    )
}

#[test]
fn bad_camera_fields_are_named_with_the_camera() {
    let cases = [
        (CAMERA.replace("url =", "ur = \"x\"\nurl ="), "ur"),
        (
            CAMERA.replace("url = \"rtsp://127.0.0.1:8554/bridge\"", ""),
            "url",
        ),
        (
            CAMERA.replace("rtsp://127.0.0.1:8554/bridge", "rtsp:/bridge"),
            "url",
        ),
        (
            CAMERA.replace("rtsp://127.0.0.1:8554/bridge", "http://127.0.0.1/bridge"),
            "url",
        ),
        (
            CAMERA.replace("url =", "detection = { fps = -1 }\nurl ="),
            "fps",
        ),
    ];
    for (camera, field) in cases {
        let (out, err) = run(&["check-config"], &format!("{}{camera}", header()));
        assert_eq!(out.status.code(), Some(2), "{camera}: {err}");
        assert!(
            err.contains("bridge") && err.contains(field),
            "{camera}: {err}"
        );
        // serve refuses the same config before starting anything.
        let (out, err2) = run(&["serve"], &format!("{}{camera}", header()));
        assert_eq!(out.status.code(), Some(2), "{err2}");
    }
}

#[test]
fn bad_zones_and_unknown_labels_are_named_with_camera_and_zone() {
    let zone = "\n[[cameras.zones]]\nname = \"yard\"\npolygon = [[0.1, 0.1], [0.9, 0.1]]\n";
    let (out, err) = run(&["check-config"], &format!("{}{CAMERA}{zone}", header()));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bridge") && err.contains("zone \"yard\"") && err.contains("polygon"),
        "{err}"
    );
    let zone = "\n[[cameras.zones]]\nname = \"yard\"\npolygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]\nlabels = [\"persn\"]\n";
    let (out, err) = run(&["check-config"], &format!("{}{CAMERA}{zone}", header()));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bridge") && err.contains("zone \"yard\"") && err.contains("persn"),
        "{err}"
    );
}

#[test]
fn the_old_spelling_of_days_is_refused_with_what_to_write() {
    let organisation = r#"
[organisation]
[[organisation.villages]]
name = "东村"
[[organisation.officers]]
id = "li"
name = "李明"
[[organisation.roster]]
officer = "li"
villages = ["东村"]
days = ["sat", "sun"]
"#;
    let text = format!("{}{organisation}{CAMERA}", header());
    let (out, err) = run(&["check-config"], &text);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[[organisation.roster]]")
            && err.contains("`days`")
            && err.contains("write days = \"sat,sun\""),
        "{err}"
    );
    let text = text.replace("days = [\"sat\", \"sun\"]", "days = \"sat,sun\"");
    let (out, err) = run(&["check-config"], &text);
    assert!(out.status.success(), "{err}");
}

#[test]
fn unknown_section_field_is_refused() {
    let (out, err) = run(
        &["check-config"],
        &format!("{}\n[detection]\nfsp = 5\n{CAMERA}", header()),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("fsp"), "{err}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = Command::new(xueliang_bin())
        .args(["serve", "--config", "/nonexistent/xueliang.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/xueliang.toml"));
}

#[test]
fn a_missing_onnxruntime_library_says_how_to_fix_it() {
    let text = format!("{}{CAMERA}", header()).replace(
        &repo()
            .join(".local/onnxruntime/libonnxruntime.so.1.32.0")
            .display()
            .to_string(),
        "/nonexistent/libonnxruntime.so",
    );
    let (out, err) = run(&["serve"], &text);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("scripts/setup.sh"),
        "{err}"
    );
    let (out, err) = run(&["check-config"], &text);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("scripts/setup.sh"), "{err}");
}

#[test]
fn a_missing_or_corrupt_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let models = repo().join("models");
    std::fs::copy(
        models.join("coco_labels.txt"),
        dir.path().join("coco_labels.txt"),
    )
    .unwrap();
    std::fs::copy(
        models.join("ssd_mobilenet_v2_coco.toml"),
        dir.path().join("m.toml"),
    )
    .unwrap();
    let text = format!("{}{CAMERA}", header()).replace(
        &models
            .join("ssd_mobilenet_v2_coco.toml")
            .display()
            .to_string(),
        &dir.path().join("m.toml").display().to_string(),
    );

    let (out, err) = run(&["serve"], &text);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ssd_mobilenet_v2_coco_raw.onnx") && err.contains("missing"),
        "{err}"
    );

    // A truncated copy: the manifest's sha256 catches it.
    let bytes = std::fs::read(models.join("ssd_mobilenet_v2_coco_raw.onnx")).unwrap();
    std::fs::write(
        dir.path().join("ssd_mobilenet_v2_coco_raw.onnx"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let (out, err) = run(&["serve"], &text);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("corrupt") && err.contains("sha256"), "{err}");
}
