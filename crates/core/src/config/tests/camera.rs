//! `[[cameras]]` tables: merged defaults, required fields, the URL, ids,
//! passwords, zones.

use super::*;

#[test]
fn camera_overrides_merge_over_defaults() {
    let c = Config::parse(
        r#"
[detection]
fps = 2
thresholds = { car = 0.7 }

[[cameras]]
id = "a"
name = "A"
url = "rtsp://h/p"
detection = { fps = 4, thresholds = { person = 0.6 } }
"#,
    )
    .unwrap();
    let d = &c.cameras[0].detection;
    assert_eq!(d.fps, 4.0);
    assert_eq!(d.threshold("person"), Some(0.6));
    assert_eq!(d.threshold("car"), Some(0.7));
    assert_eq!(c.detection.fps, 2.0);
}

#[test]
fn unknown_camera_field_names_camera_and_field() {
    let e = err(&MINIMAL.replace("url =", "urll = \"x\"\nurl ="));
    assert!(
        e.contains("cameras[0] (id \"east-gate\")") && e.contains("urll"),
        "{e}"
    );
}

#[test]
fn missing_url_names_camera_and_field() {
    let e = err("[[cameras]]\nid = \"x\"\nname = \"X\"\n");
    assert!(
        e.contains("cameras[0] (id \"x\")") && e.contains("url"),
        "{e}"
    );
}

#[test]
fn malformed_url_names_camera_and_field() {
    let e = err(&MINIMAL.replace("rtsp://127.0.0.1:8554/cam1", "rtsp//nohost"));
    assert!(e.contains("east-gate") && e.contains("field `url`"), "{e}");
    let e = err(&MINIMAL.replace("rtsp://127.0.0.1", "http://127.0.0.1"));
    assert!(e.contains("scheme must be rtsp"), "{e}");
}

#[test]
fn credentials_in_url_are_refused_without_echoing_them() {
    let e = err(&MINIMAL.replace("rtsp://", "rtsp://admin:s3cret@"));
    assert!(e.contains("field `url`") && !e.contains("s3cret"), "{e}");
}

#[test]
fn duplicate_ids_and_bad_detection_values_are_errors() {
    let e = err(&format!("{MINIMAL}{MINIMAL}"));
    assert!(e.contains("duplicate camera id"), "{e}");
    let e = err(&format!("[detection]\nfps = 0\n{MINIMAL}"));
    assert!(e.contains("fps"), "{e}");
    let e = err(&MINIMAL.replace("url =", "detection = { min_score = 2.0 }\nurl ="));
    assert!(e.contains("east-gate") && e.contains("min_score"), "{e}");
}

#[test]
fn password_env_is_read_and_never_shown() {
    std::env::set_var("XUELIANG_TEST_PW", "pa55");
    let c = Config::parse(&MINIMAL.replace(
        "url =",
        "username = \"admin\"\npassword_env = \"XUELIANG_TEST_PW\"\nurl =",
    ))
    .unwrap();
    assert_eq!(c.cameras[0].password.as_ref().unwrap().expose(), "pa55");
    assert!(!format!("{:?}", c).contains("pa55"));
    let e = err(&MINIMAL.replace(
        "url =",
        "username = \"a\"\npassword_env = \"XUELIANG_NOPE\"\nurl =",
    ));
    assert!(e.contains("XUELIANG_NOPE"), "{e}");
}

#[test]
fn zone_errors_name_the_camera_zone_and_field() {
    let zones = "[[cameras.zones]]\nname = \"yard\"\npolygon = [[0.1, 0.1], [0.5, 0.5]]\n";
    let e = err(&format!("{MINIMAL}{zones}"));
    assert!(
        e.contains("east-gate") && e.contains("zone \"yard\"") && e.contains("polygon"),
        "{e}"
    );
    let ok = "[[cameras.zones]]\nname = \"yard\"\npolygon = [[0.1, 0.1], [0.5, 0.5], [0.1, 0.9]]\nlabels = [\"persn\"]\n";
    let c = Config::parse(&format!("{MINIMAL}{ok}")).unwrap();
    let e = c
        .check_labels(&[
            "person".into(),
            "car".into(),
            "truck".into(),
            "bus".into(),
            "bicycle".into(),
            "motorcycle".into(),
        ])
        .unwrap_err();
    assert!(
        e.contains("east-gate") && e.contains("zone \"yard\"") && e.contains("persn"),
        "{e}"
    );
    let e = err(&format!(
        "[detection]\ntimezone = \"Mars/Olympus\"\n{MINIMAL}"
    ));
    assert!(e.contains("timezone") && e.contains("Mars/Olympus"), "{e}");
}

#[test]
fn redact_userinfo_hides_credentials() {
    assert_eq!(redact_userinfo("rtsp://u:p@h/x"), "rtsp://***@h/x");
    assert_eq!(redact_userinfo("rtsp://h/x"), "rtsp://h/x");
}
