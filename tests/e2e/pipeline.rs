//! Footage in, events out: an H.264 and an H.265 camera served from the test
//! clip, each watched by the real pipeline until its stream ends, beside a
//! third camera of the same clip with a zone and a counting line
//! (`crate::rules`): one 80 s run of the footage for both.

use anyhow::Result;
use serde_json::Value;
use std::time::Duration;
use xueliang_e2e::{config_header, fixture, free_port, wait_for, RtspServer, Xueliang};

/// The clip is 79.5 s (795 frames at 10 fps).
const CLIP_FRAMES: u64 = 795;
const COOLDOWN_S: f64 = 10.0;

/// A camera without rules; `adaptive`: the detection rate follows need
/// (the default) or is 5 a second whenever the camera is busy.
fn camera(id: &str, url: &str, adaptive: bool) -> String {
    camera_with(id, url, &format!("adaptive = {adaptive}"))
}

/// A camera without rules, with more `detection` fields.
fn camera_with(id: &str, url: &str, detection: &str) -> String {
    format!(
        r#"
[[cameras]]
id = "{id}"
name = "测试 {id}"
url = "{url}"
village = "东村"
detection = {{ fps = 5, {detection}, labels = ["person"], min_score = 0.5, cooldown_s = {COOLDOWN_S}, lost_after_s = 2 }}
"#
    )
}

/// Checks one camera's events after its stream ended; returns how many.
fn check_camera(x: &Xueliang, id: &str) -> Result<usize> {
    let events = x.all_events(&format!("&camera={id}"))?;
    let persons: Vec<&Value> = events.iter().filter(|e| e["label"] == "person").collect();
    assert_eq!(
        persons.len(),
        events.len(),
        "only person events were asked for"
    );
    // People walk through the picture the whole clip (the model sees a person in
    // every frame), and a new person enters every few seconds, so after the
    // first event a new one may start each time the 10 s cooldown has passed
    // and someone new appears: at most ceil(79.5 / 10) = 8 events. Fewer than
    // 4 would mean new people were missed or merged into old appearances for
    // most of the clip.
    let n = persons.len();
    eprintln!("{id}: {n} person events");
    assert!(
        (4..=8).contains(&n),
        "{id}: {n} person events, expected 4..=8: {persons:#?}"
    );

    let mut starts: Vec<i64> = Vec::new();
    for e in &persons {
        assert_eq!(e["kind"], "object");
        assert_eq!(e["village"], "东村");
        assert!(e["score"].as_f64().unwrap() >= 0.5);
        let (w, h) = (
            e["frame_width"].as_f64().unwrap(),
            e["frame_height"].as_f64().unwrap(),
        );
        assert_eq!((w, h), (768.0, 576.0));
        for b in e["boxes"].as_array().unwrap() {
            let (x1, y1, x2, y2) = (
                b["x1"].as_f64().unwrap(),
                b["y1"].as_f64().unwrap(),
                b["x2"].as_f64().unwrap(),
                b["y2"].as_f64().unwrap(),
            );
            assert!(
                0.0 <= x1 && x1 < x2 && x2 <= w && 0.0 <= y1 && y1 < y2 && y2 <= h,
                "box outside frame: {b}"
            );
        }
        let started = chrono::DateTime::parse_from_rfc3339(e["started_at"].as_str().unwrap())?;
        starts.push(started.timestamp_millis());
    }
    starts.sort();
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= (COOLDOWN_S * 1000.0) as i64 - 1,
            "events closer than the cooldown: {starts:?}"
        );
    }

    // The snapshot is a JPEG of the stream's size.
    let id0 = persons[0]["id"].as_i64().unwrap();
    let (status, ctype, jpeg) = x.get_bytes(&format!("/api/v1/events/{id0}/snapshot.jpg"))?;
    assert_eq!((status, ctype.as_str()), (200, "image/jpeg"));
    let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
    let pixels = d.decode()?;
    let info = d.info().unwrap();
    assert_eq!((info.width, info.height), (768, 576));
    assert!(
        pixels.iter().map(|&p| p as u64).sum::<u64>() > 0,
        "snapshot is not black"
    );
    let one = x.get(&format!("/api/v1/events/{id0}"))?;
    assert_eq!(one["id"].as_i64(), Some(id0));
    Ok(n)
}

#[test]
fn h264_and_h265_cameras_and_a_camera_with_rules_turn_the_footage_into_events() -> Result<()> {
    let server = RtspServer::start(&[
        "--mount".into(),
        format!("h264={}", fixture("vtest-h264.mp4").display()),
        "--mount".into(),
        format!("h265={}", fixture("vtest-h265.mp4").display()),
        "--mount".into(),
        format!("cam={}", fixture("vtest-h264.mp4").display()),
    ])?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    // A long backoff: after the clip ends the camera must not replay it within the test.
    let config = format!(
        "{}{}{}{}",
        config_header(dir.path(), port, 120.0),
        camera("h264", &server.url("h264"), true),
        camera("h265", &server.url("h265"), false),
        crate::rules::campus_camera(&server.url("cam"))
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    wait_for(Duration::from_secs(20), || {
        Ok((x.health("campus")?["state"] == "online").then_some(()))
    })?;
    let campus_online = std::time::Instant::now();
    let clip_start = chrono::Utc::now();

    // A person event arrives through the API within seconds of the stream starting.
    let first = wait_for(Duration::from_secs(20), || {
        Ok(x.all_events("&label=person&kind=object")?
            .into_iter()
            .next())
    })?;
    assert_eq!(first["status"], "active", "{first}");

    // The streams run to the end of the clip in real time, then end.
    for id in ["h264", "h265", "campus"] {
        let h = wait_for(Duration::from_secs(120), || {
            let h = x.health(id)?;
            Ok((h["state"] == "offline").then_some(h))
        })?;
        assert_eq!(h["reason"], "stream_ended", "{id}: {h}");
        let received = h["frames_received"].as_u64().unwrap();
        assert!(
            received >= CLIP_FRAMES - 5,
            "{id}: only {received} frames: {h}"
        );
        assert_eq!(h["decode_errors"], 0, "{id}: {h}");
        let count = |k: &str| h[k].as_u64().unwrap();
        if id == "h265" {
            // 5 detections/s on a 10 fps stream: every other frame.
            let detected = count("frames_detected");
            assert!(
                (380..=400).contains(&detected),
                "{id}: {detected} frames detected: {h}"
            );
            assert_eq!(count("frames_reduced"), 0, "not adaptive: {h}");
        } else {
            // Adaptive: what the full rate would have offered is offered or
            // saved (frames the motion mask sent off the full rate's beat
            // come on top). Without rules, walkers settled far from
            // everything save some (xueliang-recall: 18 % on this footage);
            // the campus camera's line and lawn are where people walk.
            let asked = count("frames_offered_to_detector") + count("frames_reduced");
            assert!((380..=440).contains(&asked), "{id}: {asked} asked: {h}");
            eprintln!("{id}: {} of {asked} frames saved", count("frames_reduced"));
            if id == "h264" {
                assert!(count("frames_reduced") >= 20, "{id}: nothing saved: {h}");
            }
        }
        // Nothing should be dropped on an idle machine; allow 2 % for a busy
        // one (these tests run beside each other).
        let dropped = h["frames_dropped_detect"].as_u64().unwrap();
        assert!(
            dropped <= 8,
            "{id}: {dropped} frames dropped before detection: {h}"
        );
    }
    assert!(
        campus_online.elapsed() > Duration::from_secs(70),
        "the whole clip was watched"
    );
    crate::rules::check_campus(&x, clip_start)?;
    let n264 = check_camera(&x, "h264")?;
    let n265 = check_camera(&x, "h265")?;
    // The same footage in two codecs gives nearly the same events.
    assert!(n264.abs_diff(n265) <= 2, "h264 {n264} vs h265 {n265}");

    // A clean stop ends every open event.
    let stopped = x.stop()?;
    assert!(stopped.success(), "exit status {stopped}");
    Ok(())
}

/// Region detection in the running service: a camera with `regions = 2`
/// watching the walkway (people move everywhere, so there is always motion
/// to put regions around) has the model look at up to two regions per
/// detected frame besides the whole frame, counted in its health and its
/// metrics, and still turns the footage into person events.
#[test]
fn a_camera_with_regions_has_them_looked_at_in_its_detected_frames() -> Result<()> {
    let server = RtspServer::start(&[
        "--mount".into(),
        format!("walkway={}", fixture("vtest-h264.mp4").display()),
    ])?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = format!(
        "{}{}",
        config_header(dir.path(), port, 120.0),
        camera_with(
            "regions",
            &server.url("walkway"),
            "adaptive = false, regions = 2"
        ),
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    let h = wait_for(Duration::from_secs(60), || {
        let h = x.health("regions")?;
        Ok((h["frames_detected"].as_u64().unwrap_or(0) >= 50).then_some(h))
    })?;
    let detected = h["frames_detected"].as_u64().unwrap();
    let regions = h["regions_detected"].as_u64().unwrap();
    // Walkers move in every picture: nearly every frame gets both regions.
    assert!(
        regions >= detected && regions <= 2 * detected + 4,
        "{regions} regions in {detected} frames: {h}"
    );
    let metrics = x.metrics()?;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("xueliang_camera_regions_detected_total{") && l.contains("regions"))
        .unwrap_or_else(|| panic!("no regions metric in {metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse()?;
    assert!(counted >= regions as f64, "{line} against {regions}");
    wait_for(Duration::from_secs(20), || {
        Ok(x.all_events("&camera=regions&label=person")?
            .into_iter()
            .next())
    })?;
    assert!(x.stop()?.success());
    Ok(())
}
