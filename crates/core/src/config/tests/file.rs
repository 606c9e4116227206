//! The whole file: defaults, relative paths, unknown fields, wrong types.

use super::*;
use std::path::Path;

#[test]
fn relative_paths_are_taken_from_the_config_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.toml");
    let text = "[storage]\ndata_dir = \"state\"\nurl = \"sqlite://db/x.db\"\n\
                [detector]\nmodel = \"m/model.toml\"\nonnxruntime = \"/opt/ort.so\"\n";
    std::fs::write(&path, text).unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.storage.data_dir, dir.path().join("state"));
    assert_eq!(
        c.storage.database_url(),
        format!("sqlite://{}", dir.path().join("db/x.db").display())
    );
    assert_eq!(c.detector.model, dir.path().join("m/model.toml"));
    assert_eq!(
        c.detector.onnxruntime.as_deref(),
        Some(Path::new("/opt/ort.so"))
    );
    // Left out, the data directory is the file's too.
    std::fs::write(&path, "").unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.storage.data_dir, dir.path().join("data"));
}

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.storage.database_url(), "sqlite://data/xueliang.db");
    assert_eq!(c.cameras.len(), 1);
    let cam = &c.cameras[0];
    assert!(cam.enabled);
    assert_eq!(cam.detection.fps, 5.0);
    assert_eq!(cam.detection.threshold("person"), Some(0.5));
    assert_eq!(cam.detection.threshold("toothbrush"), None);
    assert_eq!(c.detector.batch, 4, "pictures already waiting run together");
}

#[test]
fn a_detector_batch_out_of_range_is_an_error() {
    for bad in ["0", "65"] {
        let e = err(&format!("[detector]\nbatch = {bad}\n{MINIMAL}"));
        assert!(e.starts_with("[detector]: field `batch`"), "{e}");
    }
    let c = Config::parse(&format!("[detector]\nbatch = 1\n{MINIMAL}")).unwrap();
    assert_eq!(c.detector.batch, 1);
}

#[test]
fn unknown_top_level_field_is_an_error() {
    let e = err(&format!(
        "[server]\nlisten = \"127.0.0.1:1\"\nport = 3\n{MINIMAL}"
    ));
    assert!(e.contains("port"), "{e}");
}

#[test]
fn a_value_of_the_wrong_type_is_named_by_its_field() {
    let e = err(&format!("[detection]\nfps = \"five\"\n{MINIMAL}"));
    assert!(
        e.starts_with("[detection]: field `fps`: invalid type"),
        "{e}"
    );
    let e = err(&MINIMAL.replace("url =", "enabled = \"yes\"\nurl ="));
    assert!(
        e.contains("(id \"east-gate\"): field `enabled`: invalid type"),
        "{e}"
    );
    let e = err(&MINIMAL.replace("url =", "detection = { fps = \"5\" }\nurl ="));
    assert!(
        e.contains("field `detection.fps`") || e.contains("detection: field `fps`"),
        "{e}"
    );
}
