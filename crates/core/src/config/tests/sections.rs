//! The sections other than `[[cameras]]`: `[storage]`, `[health]`,
//! `[decode]` and `[server]`.

use super::*;
use std::path::Path;

#[test]
fn storage_retention_defaults_and_checks() {
    let c = Config::parse(MINIMAL).unwrap();
    let s = &c.storage;
    assert_eq!(
        (
            s.retention_days,
            s.health_retention_days,
            s.audit_retention_days
        ),
        (90, 400, 365)
    );
    assert_eq!(s.max_disk_bytes(), None);
    let c = Config::parse(&format!(
        "[storage]\nmax_disk_gb = 2.5\nretention_days = 30\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(c.storage.max_disk_bytes(), Some(2_500_000_000));
    assert_eq!(c.storage.retention_days, 30);
    let c = Config::parse(&format!(
        "[storage]\nurl = \"postgres://xl@db:5432/xueliang\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(c.storage.database_url(), "postgres://xl@db:5432/xueliang");
    for (bad, field) in [
        ("retention_days = 0", "retention_days"),
        ("max_disk_gb = -1.0", "max_disk_gb"),
        ("health_retention_days = 0", "health_retention_days"),
        ("url = \"mysql://db/xl\"", "url"),
        ("url = \"postgress://db/xl\"", "url"),
    ] {
        let e = Config::parse(&format!("[storage]\n{bad}\n{MINIMAL}")).unwrap_err();
        assert!(e.starts_with("[storage]") && e.contains(field), "{e}");
    }
}

#[test]
fn health_defaults_and_camera_overrides() {
    let c = Config::parse(&format!(
        "[health]\nsample_interval_s = 30\noffline_grace_s = 5\n{}",
        MINIMAL.replace("url =", "health = { frozen_after_s = 9 }\nurl =")
    ))
    .unwrap();
    assert_eq!(c.health.sample_interval_s, 30.0);
    assert_eq!(c.health.camera.offline_grace_s, 5.0);
    let h = &c.cameras[0].health;
    assert_eq!((h.offline_grace_s, h.frozen_after_s), (5.0, 9.0));
    assert_eq!(h.blocked_after_s, HealthSettings::default().blocked_after_s);
}

#[test]
fn unknown_or_bad_health_fields_are_errors() {
    let e = err(&format!("[health]\noffline_grace = 5\n{MINIMAL}"));
    assert!(e.contains("[health]") && e.contains("offline_grace"), "{e}");
    let e = err(&MINIMAL.replace("url =", "health = { sample_interval_s = 5 }\nurl ="));
    assert!(
        e.contains("east-gate") && e.contains("sample_interval_s"),
        "{e}"
    );
    let e = err(&MINIMAL.replace("url =", "health = { min_fps_ratio = 2 }\nurl ="));
    assert!(
        e.contains("east-gate") && e.contains("min_fps_ratio"),
        "{e}"
    );
}

#[test]
fn decode_idle_settings_default_and_validate() {
    let c = Config::parse(MINIMAL).unwrap();
    assert!(c.decode.idle_key_frames_only);
    assert_eq!(c.decode.idle_after_s, 10.0);
    let c = Config::parse(&format!(
        "[decode]\nidle_key_frames_only = false\nidle_after_s = 30\n{MINIMAL}"
    ))
    .unwrap();
    assert!(!c.decode.idle_key_frames_only);
    assert_eq!(c.decode.idle_after_s, 30.0);
    let e = err(&format!("[decode]\nidle_after_s = 0.5\n{MINIMAL}"));
    assert!(e.contains("[decode]") && e.contains("idle_after_s"), "{e}");
    let e = err(&format!("[decode]\nidle_after = 5\n{MINIMAL}"));
    assert!(e.contains("idle_after"), "{e}");
}

#[test]
fn decode_hwaccel_list_parses_in_order_and_names_the_field_when_wrong() {
    let c = Config::parse(MINIMAL).unwrap();
    assert!(c.decode.hwaccel.is_empty(), "software only by default");
    assert_eq!(c.decode.vaapi_device, None);
    let c = Config::parse(&format!(
        "[decode]\nhwaccel = [\"vaapi\", \"cuda\"]\nvaapi_device = \"/dev/dri/renderD129\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(c.decode.hwaccel, [HwAccel::Vaapi, HwAccel::Cuda]);
    assert_eq!(
        c.decode.vaapi_device.as_deref(),
        Some(Path::new("/dev/dri/renderD129"))
    );
    let e = err(&format!(
        "[decode]\nhwaccel = [\"cuda\", \"nvdec\"]\n{MINIMAL}"
    ));
    assert!(
        e.contains("hwaccel") && e.contains("nvdec") && e.contains("vaapi"),
        "{e}"
    );
    let e = err(&format!("[decode]\nhwaccel = \"cuda\"\n{MINIMAL}"));
    assert!(e.contains("hwaccel"), "{e}");
    let e = err(&format!(
        "[decode]\nhwaccel = [\"cuda\", \"cuda\"]\n{MINIMAL}"
    ));
    assert!(
        e.contains("[decode]") && e.contains("`hwaccel`") && e.contains("twice"),
        "{e}"
    );
    let e = err(&format!("[decode]\nvaapi_device = \"\"\n{MINIMAL}"));
    assert!(
        e.contains("[decode]") && e.contains("`vaapi_device`"),
        "{e}"
    );
}

#[test]
fn trusted_proxies_are_read_and_a_bad_one_is_named() {
    let c = Config::parse(&format!(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n{MINIMAL}"
    ))
    .unwrap();
    assert!(c
        .server
        .trusted_proxies
        .contains("10.9.8.7".parse().unwrap()));
    assert!(c
        .server
        .trusted_proxies
        .contains("127.0.0.1".parse().unwrap()));
    assert!(!c
        .server
        .trusted_proxies
        .contains("127.0.0.2".parse().unwrap()));
    assert!(Config::parse(MINIMAL)
        .unwrap()
        .server
        .trusted_proxies
        .is_empty());
    let e = Config::parse(&format!(
        "[server]\ntrusted_proxies = [\"10.0.0.0/99\"]\n{MINIMAL}"
    ))
    .unwrap_err();
    assert!(
        e.contains("trusted_proxies") && e.contains("10.0.0.0/99"),
        "{e}"
    );
}

#[test]
fn live_and_clips_defaults_checks_and_camera_kinds() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!((c.live.max_viewers_per_camera, c.live.max_viewers), (8, 64));
    assert!(c.clips.enabled && c.clips.kinds.contains(&crate::EventKind::Intrusion));
    assert_eq!(c.clips.ring_bytes(), 4 << 20);
    assert_eq!(c.cameras[0].clips, None);
    // Values out of range name the section and field; unknown fields and
    // kinds are refused by the parser, which names them and the line.
    for (section, bad, field, checked) in [
        ("live", "max_viewers = 0", "max_viewers", true),
        (
            "live",
            "max_viewers_per_camera = 0",
            "max_viewers_per_camera",
            true,
        ),
        ("live", "max_viewer = 3", "max_viewer", false),
        ("clips", "pre_s = -1.0", "pre_s", true),
        ("clips", "max_s = 0.0", "max_s", true),
        ("clips", "ring_mb = 0.0", "ring_mb", true),
        ("clips", "kinds = [\"camera_offline\"]", "kinds", true),
        ("clips", "kinds = [\"intrusionn\"]", "intrusionn", false),
    ] {
        let e = Config::parse(&format!("[{section}]\n{bad}\n{MINIMAL}")).unwrap_err();
        assert!(!checked || e.starts_with(&format!("[{section}]")), "{e}");
        assert!(e.contains(field), "{bad}: {e}");
    }
    let c = Config::parse(&MINIMAL.replace("url =", "clips = [\"loitering\"]\nurl =")).unwrap();
    assert_eq!(c.cameras[0].clips, Some(vec![crate::EventKind::Loitering]));
}

#[test]
fn cluster_needs_postgres_and_checks_its_fields() {
    let pg = "[storage]\nurl = \"postgres://xl@db/xueliang\"\n";
    let c = Config::parse(&format!("{pg}[cluster]\nnode_id = \"node-1\"\n{MINIMAL}")).unwrap();
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.node_id(), "node-1");
    assert_eq!((cluster.max_cameras, cluster.lease_s), (0, 15.0));
    let with_url = format!("{pg}[cluster]\napi_url = \"http://10.0.0.5:8080/\"\n{MINIMAL}");
    let c = Config::parse(&with_url).unwrap().cluster.unwrap();
    assert_eq!(c.api_url(), Ok(Some("http://10.0.0.5:8080".to_owned())));
    assert!(Config::parse(MINIMAL).unwrap().cluster.is_none());
    let e = Config::parse(&format!("[cluster]\nnode_id = \"a\"\n{MINIMAL}")).unwrap_err();
    assert!(
        e.starts_with("[cluster]") && e.contains("PostgreSQL"),
        "{e}"
    );
    for (bad, field) in [
        ("lease_s = 1.0", "lease_s"),
        ("node_id = \"node 1\"", "node_id"),
        ("node_id = \"\"", "node_id"),
        ("nodeid = \"a\"", "nodeid"),
        ("api_url = \"10.0.0.5:8080\"", "api_url"),
        ("api_url = \"ftp://10.0.0.5\"", "api_url"),
        ("api_url = \"http://10.0.0.5:8080/api/v1\"", "api_url"),
    ] {
        let e = Config::parse(&format!("{pg}[cluster]\n{bad}\n{MINIMAL}")).unwrap_err();
        assert!(e.contains(field), "{bad}: {e}");
    }
}

#[test]
fn region_detection_is_off_by_default_and_its_cap_is_checked() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.cameras[0].detection.regions, 0);
    let c = Config::parse(&MINIMAL.replace("url =", "detection = { regions = 4 }\nurl =")).unwrap();
    assert_eq!(c.cameras[0].detection.regions, 4);
    let e = err(&MINIMAL.replace("url =", "detection = { regions = 17 }\nurl ="));
    assert!(
        e.contains("east-gate") && e.contains("regions") && e.contains("at most 16"),
        "{e}"
    );
}
