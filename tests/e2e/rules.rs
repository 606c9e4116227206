//! Zones and counting lines on the real footage: the camera "campus",
//! watched in the footage run of `crate::pipeline`.
//!
//! How the expectations were checked: contact sheets of the clip every 2 s
//! (`ffmpeg -i tests/fixtures/vtest-h264.mp4 -vf "select='not(mod(n\,20))',
//! scale=256:192,drawgrid=w=25.6:h=19.2,tile=6x4"`, a 10x10 grid of 0.1 steps)
//! show the lawn in the lower left (below the walkway's lower edge, which
//! runs from about (0, 0.42) to (1, 0.85)) empty for the first 50 s; from
//! frame ~520 (52 s) two people step off the walkway onto the lawn together,
//! one (red jacket) walks up to the tripod and back to the walkway by frame
//! ~620, the other (long hair) crosses the lawn leftwards and leaves it at its
//! left end around frame 720. So the "lawn" zone below sees 2 people, both
//! entering between 50 s and 60 s; tracker id switches while the two walk
//! side by side may split one person's stay, hence up to 4 events. Along the
//! walkway people walk both ways all the time (at least 5 each way can be
//! followed across its middle, x = 0.45, in the sheets), so a line across
//! the walkway there counts several crossings in each direction.

use anyhow::Result;
use xueliang_e2e::Xueliang;

/// Whether a point lies on the lawn zone below: left of x = 0.55 and below
/// its top edge from (0, 0.55) to (0.55, 0.8).
fn on_lawn(p: [f64; 2]) -> bool {
    p[0] <= 0.55 && p[1] >= 0.55 + 0.25 / 0.55 * p[0]
}

/// The camera "campus" on `url` (the test footage) with the lawn zone and
/// the walkway line. Watched beside the plain cameras of
/// `crate::pipeline` in one run of the clip (a run takes 80 s).
pub(crate) fn campus_camera(url: &str) -> String {
    format!(
        r#"
[[cameras]]
id = "campus"
name = "校园步道"
url = "{url}"
detection = {{ labels = ["person"], fps = 5 }}

[[cameras.zones]]
name = "lawn"
polygon = [[0.0, 0.55], [0.55, 0.8], [0.55, 1.0], [0.0, 1.0]]
labels = ["person"]
rules = [{{ name = "keep-off-the-grass", kind = "intrusion" }}]

[[cameras.lines]]
name = "walkway"
from = [0.45, 0.25]
to = [0.45, 0.75]
labels = ["person"]
events = "both"
"#
    )
}

/// Checks the campus camera's rule events once its stream has ended;
/// `clip_start` is when it came online.
pub(crate) fn check_campus(x: &Xueliang, clip_start: chrono::DateTime<chrono::Utc>) -> Result<()> {
    let intrusions = x.all_events("&camera=campus&kind=intrusion&zone=lawn")?;
    eprintln!("lawn intrusions: {}", intrusions.len());
    assert!((2..=4).contains(&intrusions.len()), "{intrusions:#?}");
    for e in &intrusions {
        assert_eq!(e["rule"], "keep-off-the-grass");
        let started = chrono::DateTime::parse_from_rfc3339(e["started_at"].as_str().unwrap())?;
        let after =
            (started.with_timezone(&chrono::Utc) - clip_start).num_milliseconds() as f64 / 1000.0;
        assert!(
            (45.0..=75.0).contains(&after),
            "intrusion {after:.1} s into the clip: {e}"
        );
        let b = &e["boxes"][0];
        let foot = [
            (b["x1"].as_f64().unwrap() + b["x2"].as_f64().unwrap()) / 2.0 / 768.0,
            (b["y2"].as_f64().unwrap() / 576.0).min(0.999),
        ];
        assert!(on_lawn(foot), "the intruder stands on the lawn: {foot:?}");
        assert!(e["object_id"].as_u64().is_some());
        assert!(
            !e["track"].as_array().unwrap().is_empty(),
            "the track is stored: {e}"
        );
        let (status, _, jpeg) = x.get_bytes(&format!("/api/v1/events/{}/snapshot.jpg", e["id"]))?;
        assert_eq!(status, 200);
        jpeg_decoder::Decoder::new(&jpeg[..]).decode()?;
    }

    let report = x.get("/api/v1/reports/line-crossings?camera=campus&line=walkway&bucket=day")?;
    let count = |dir: &str| -> u64 {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["direction"] == dir)
            .map(|i| i["count"].as_u64().unwrap())
            .sum()
    };
    let (fwd, back) = (count("forward"), count("backward"));
    eprintln!("walkway crossings: forward {fwd}, backward {back}");
    assert!(fwd >= 3 && back >= 3, "{report}");
    assert!(fwd + back <= 60, "no double counting: {report}");
    let events = x.all_events("&camera=campus&kind=line_crossing&zone=walkway")?;
    assert_eq!(
        events.len() as u64,
        fwd + back,
        "events = \"both\": one event per crossing"
    );
    assert!(
        x.all_events("&camera=campus&kind=object")?.is_empty(),
        "a camera with rules makes no plain object events"
    );
    Ok(())
}
