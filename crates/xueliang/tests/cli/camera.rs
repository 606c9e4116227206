//! `xueliang camera ...` and `check-config` against a real SQLite file: a
//! camera changed through the API names a label the (new) model lacks, so
//! `serve` would refuse to start; the operator sees it and reverts it offline.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use xueliang_store::{AccessStore, CameraStore, SqliteStore};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn xueliang(config: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xueliang"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("xueliang runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A config whose model knows only `person` and `bicycle` (the repo's model
/// with a shorter labels file), with one camera, `gate`.
fn setup(dir: &Path) -> PathBuf {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let manifest = std::fs::read_to_string(models.join("ssd_mobilenet_v2_coco.toml"))
        .unwrap()
        .replace(
            "file = \"ssd_mobilenet_v2_coco_raw.onnx\"",
            &format!(
                "file = \"{}\"",
                models.join("ssd_mobilenet_v2_coco_raw.onnx").display()
            ),
        )
        .replace("labels = \"coco_labels.txt\"", "labels = \"labels.txt\"");
    std::fs::write(dir.join("model.toml"), manifest).unwrap();
    std::fs::write(dir.join("labels.txt"), "person\nbicycle\n").unwrap();
    // check-config only checks that the library is there.
    std::fs::write(dir.join("libonnxruntime.so"), "").unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[storage]
data_dir = "{dir}/data"

[detector]
model = "{dir}/model.toml"
onnxruntime = "{dir}/libonnxruntime.so"

[detection]
labels = ["person", "bicycle"]

[[cameras]]
id = "gate"
name = "Gate"
url = "rtsp://127.0.0.1:8554/gate"
detection = {{ labels = ["person"] }}
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    config
}

async fn store(dir: &Path) -> SqliteStore {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let url = format!("sqlite://{}", dir.join("data/xueliang.db").display());
    SqliteStore::open(&url).await.unwrap()
}

#[tokio::test]
async fn a_stored_camera_that_no_longer_validates_is_reported_and_reverted() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let ok = xueliang(&config, &["check-config"]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(
        !dir.path().join("data").exists(),
        "check-config makes no database"
    );

    // Changed through the API when the model still knew cars; added with a
    // password.
    let changed = json!({"id": "gate", "name": "Gate 2", "url": "rtsp://127.0.0.1:8554/gate2",
        "detection": {"labels": ["car"]}});
    let added = json!({"id": "shop", "name": "Shop", "url": "rtsp://127.0.0.1:8554/shop",
        "username": "admin", "password": "pw-7731"});
    let now = chrono::Utc::now();
    {
        let store = store(dir.path()).await;
        store.put_camera("gate", &changed, now).await.unwrap();
        store.put_camera("shop", &added, now).await.unwrap();
    }

    let list = xueliang(&config, &["camera", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    assert!(
        lines[0].starts_with("gate\tdatabase (changed through the API)\tINVALID:")
            && lines[0].contains("\"car\""),
        "{}",
        list.stdout
    );
    assert_eq!(lines[1], "shop\tdatabase (added through the API)\tvalid");

    let check = xueliang(&config, &["check-config"]);
    assert_eq!(check.code, Some(2), "{}", check.stderr);
    let fix = format!(
        "xueliang camera revert --config {} --id gate",
        config.display()
    );
    assert!(
        check
            .stderr
            .contains("camera \"gate\" (as changed through the API, stored in the database)")
            && check.stderr.contains("\"car\"")
            && check.stderr.trim_end().ends_with(&fix),
        "{}",
        check.stderr
    );

    let show = xueliang(&config, &["camera", "show", "--id", "shop"]);
    assert_eq!(show.code, Some(0), "{}", show.stderr);
    let shown: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["url"], "rtsp://127.0.0.1:8554/shop");
    assert_eq!(shown["password"], "***");
    assert!(!show.stdout.contains("pw-7731"), "{}", show.stdout);

    let revert = xueliang(&config, &["camera", "revert", "--id", "gate"]);
    assert_eq!(revert.code, Some(0), "{}", revert.stderr);
    let list = xueliang(&config, &["camera", "list"]);
    assert!(
        list.stdout.starts_with("gate\tfile\tvalid\n"),
        "{}",
        list.stdout
    );
    let show = xueliang(&config, &["camera", "show", "--id", "gate"]);
    let shown: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["name"], "Gate", "the file's definition");
    let check = xueliang(&config, &["check-config"]);
    assert_eq!(check.code, Some(0), "{}", check.stderr);

    // A camera added through the API is deleted.
    let revert = xueliang(&config, &["camera", "revert", "--id", "shop"]);
    assert_eq!(revert.code, Some(0), "{}", revert.stderr);
    let list = xueliang(&config, &["camera", "list"]);
    assert_eq!(list.stdout, "gate\tfile\tvalid\n");
    let gone = xueliang(&config, &["camera", "revert", "--id", "shop"]);
    assert_eq!(gone.code, Some(1));
    assert!(
        gone.stderr.contains("no camera \"shop\""),
        "{}",
        gone.stderr
    );

    let store = store(dir.path()).await;
    assert!(store.list_cameras().await.unwrap().is_empty());
    let audit = store
        .list_audit(Some(("camera".into(), "gate".into())), None, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].user.as_str()),
        ("camera.revert", "cli")
    );
}

#[tokio::test]
async fn a_camera_deleted_through_the_api_comes_back_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    store(dir.path())
        .await
        .delete_camera("gate", chrono::Utc::now())
        .await
        .unwrap();
    let list = xueliang(&config, &["camera", "list"]);
    assert_eq!(list.stdout, "gate\tdeleted through the API\tnot run\n");
    let show = xueliang(&config, &["camera", "show", "--id", "gate"]);
    assert_eq!(show.code, Some(1));
    assert!(
        show.stderr.contains("deleted through the API"),
        "{}",
        show.stderr
    );
    let revert = xueliang(&config, &["camera", "revert", "--id", "gate"]);
    assert_eq!(revert.code, Some(0), "{}", revert.stderr);
    let list = xueliang(&config, &["camera", "list"]);
    assert_eq!(list.stdout, "gate\tfile\tvalid\n");
}
