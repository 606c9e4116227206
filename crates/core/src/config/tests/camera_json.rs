//! Cameras given as JSON (through the API): the file's defaults, errors that
//! name the field, passwords never echoed, labels checked.

use super::*;

fn defaults() -> CameraDefaults {
    Config::parse("[detection]\nfps = 4\nlabels = [\"person\", \"car\"]\n[health]\noffline_grace_s = 9\nsample_interval_s = 30\n")
        .unwrap()
        .camera_defaults
}

fn json_err(v: serde_json::Value) -> CameraError {
    defaults().camera_from_json(&v).unwrap_err()
}

#[test]
fn json_camera_gets_the_file_defaults_deep_merged() {
    let c = defaults()
        .camera_from_json(&serde_json::json!({
            "id": "east-gate", "name": "东门", "url": "rtsp://127.0.0.1:8554/cam1",
            "village": null, "detection": {"min_score": 0.6},
            "username": "admin", "password": "pa55"
        }))
        .unwrap();
    assert_eq!(c.detection.fps, 4.0, "[detection] default kept");
    assert_eq!(c.detection.min_score, 0.6);
    assert_eq!(c.village, None, "null counts as absent");
    assert!(c.enabled);
    assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("pa55"));
    let file = Config::parse(&format!("[health]\noffline_grace_s = 9\n{MINIMAL}")).unwrap();
    assert_eq!(
        c.health.offline_grace_s,
        file.cameras[0].health.offline_grace_s
    );
    assert_eq!(
        file.camera_definitions[0]["url"],
        "rtsp://127.0.0.1:8554/cam1"
    );
}

#[test]
fn json_camera_errors_name_the_field() {
    let base = || serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base();
        b[k] = v;
        json_err(b)
    };
    let mut no_url = base();
    no_url.as_object_mut().unwrap().remove("url");
    assert_eq!(json_err(no_url).field, "url");
    assert_eq!(with("url", "http://h/a".into()).field, "url");
    assert_eq!(with("id", "bad id!".into()).field, "id");
    assert_eq!(with("urll", "x".into()).field, "urll");
    assert_eq!(with("name", 5.into()).field, "name");
    assert_eq!(with("enabled", "yes".into()).field, "enabled");
    assert_eq!(
        with("detection", serde_json::json!({"fps": "fast"})).field,
        "detection.fps"
    );
    let e = with("detection", serde_json::json!({"fps": 0}));
    assert_eq!(e.field, "detection.fps", "{e:?}");
    assert!(e.message.contains("fps"));
    assert_eq!(
        with("detection", serde_json::json!({"fpz": 1})).field,
        "detection.fpz"
    );
    assert_eq!(
        with("health", serde_json::json!({"offline_grace_s": -1})).field,
        "health.offline_grace_s"
    );
    let e = with(
        "zones",
        serde_json::json!([{"name": "z", "polygon": [[0, 0]]}]),
    );
    assert_eq!(e.field, "zones.polygon", "{e:?}");
    assert_eq!(json_err(serde_json::json!([1])).field, "body");
}

#[test]
fn nested_errors_name_the_whole_path() {
    let zone = |extra: serde_json::Value| {
        let mut z = serde_json::json!({"name": "z", "polygon": [[0, 0], [1, 0], [1, 1]]});
        z.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json_err(
            serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a",
            "zones": [z]}),
        )
    };
    let e = zone(serde_json::json!({"name": ""}));
    assert_eq!(
        (e.field.as_str(), e.message.as_str()),
        ("zones.name", "zones: field `name` must not be empty")
    );
    assert_eq!(
        zone(serde_json::json!({"colour": 1})).field,
        "zones[0].colour"
    );
    assert_eq!(
        zone(serde_json::json!({"polygon": "x"})).field,
        "zones[0].polygon"
    );
    let crowd = serde_json::json!({"rules": [{"name": "r", "kind": "crowd", "min_count": 1}]});
    let e = zone(crowd);
    assert_eq!(e.field, "zones.rules.min_count");
    assert_eq!(
        e.message,
        "zone \"z\", rule \"r\": field `min_count` must be >= 2"
    );
    let e = json_err(
        serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a",
        "filters": {"person": {"min_area": 2}}}),
    );
    assert_eq!(e.field, "filters.person.min_area");
}

#[test]
fn json_camera_errors_never_echo_the_password() {
    let e = json_err(serde_json::json!({
        "id": "a", "name": "A", "url": "rtsp://admin:s3cret@h/a"
    }));
    assert!(e.field == "url" && !e.message.contains("s3cret"), "{e:?}");
    let e = json_err(serde_json::json!({
        "id": "a", "name": "A", "url": "rtsp://h/a", "password": 734591
    }));
    assert!(
        e.field == "password" && !e.message.contains("734591"),
        "{e:?}"
    );
    let e = json_err(serde_json::json!({
        "id": "a", "name": "A", "url": "rtsp://h/a", "password": "s3cret"
    }));
    assert!(
        e.field == "username" && !e.message.contains("s3cret"),
        "{e:?}"
    );
}

#[test]
fn camera_labels_are_checked_against_the_model() {
    let known = vec!["person".to_owned(), "car".to_owned()];
    let d = defaults();
    let cam = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d.camera_from_json(&v).unwrap()
    };
    assert!(cam(serde_json::json!({})).check_labels(&known).is_ok());
    let e = cam(serde_json::json!({"detection": {"labels": ["unicorn"]}}))
        .check_labels(&known)
        .unwrap_err();
    assert_eq!(e.field, "detection.labels");
    assert!(e.message.contains("unicorn"));
    let e = cam(serde_json::json!({"zones": [{"name": "z",
        "polygon": [[0, 0], [1, 0], [1, 1]],
        "rules": [{"name": "r", "kind": "intrusion", "labels": ["unicorn"]}]}]}))
    .check_labels(&known)
    .unwrap_err();
    assert_eq!(e.field, "zones.rules.labels");
    assert_eq!(
        e.message,
        "zone \"z\", rule \"r\": field `labels`: unknown label \"unicorn\" (see the model's labels file)"
    );
}
