//! Synthetic detection sequences through filters, tracker and rules: what an
//! operator would expect from each township scene. Frames are 640x480 at 5 fps.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;
use xueliang_analytics::{encode_jpeg_with_boxes, CameraAnalytics, NeedReason};
use xueliang_core::{
    BBox, CameraRef, Config, DecodedFrame, Detection, DetectionNeed, EventKind, EventUpdate,
    NeedBoard, NewEvent, Picture,
};

const W: u32 = 640;
const H: u32 = 480;

fn camera(extra: &str) -> CameraAnalytics {
    let text = format!(
        "[detection]\nlabels = [\"person\", \"car\"]\ncooldown_s = 30\nlost_after_s = 2\n\
         [[cameras]]\nid = \"c\"\nname = \"C\"\nurl = \"rtsp://h/p\"\nvillage = \"东村\"\n{extra}\n"
    );
    CameraAnalytics::new(Config::parse(&text).unwrap().cameras.remove(0))
}

/// 2026-11-29 is a Sunday; this is 23:00 in Shanghai.
fn start() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, 29, 23, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn frame(at: DateTime<Utc>) -> DecodedFrame {
    DecodedFrame::uniform(
        CameraRef {
            index: 0,
            id: Arc::from("c"),
        },
        W,
        H,
        90,
        at,
    )
}

/// A person standing with feet at (x, y) in pixels.
fn person(x: f32, y: f32, score: f32) -> Detection {
    Detection {
        label: "person".into(),
        class_id: 0,
        score,
        bbox: BBox::new(x - 10.0, y - 60.0, x + 10.0, y),
    }
}

fn car(x: f32, y: f32) -> Detection {
    Detection {
        label: "car".into(),
        class_id: 2,
        score: 0.8,
        bbox: BBox::new(x - 40.0, y - 30.0, x + 40.0, y),
    }
}

/// Runs `frames` frames at 5 fps from `from` (frame index), each with the
/// detections `at(i)`; collects every update.
struct Run {
    cam: CameraAnalytics,
    updates: Vec<EventUpdate<Picture>>,
}

impl Run {
    fn new(extra: &str) -> Run {
        Run {
            cam: camera(extra),
            updates: Vec::new(),
        }
    }

    fn frames(&mut self, from: i64, to: i64, at: impl Fn(i64) -> Vec<Detection>) {
        for i in from..to {
            let f = frame(start() + Duration::milliseconds(i * 200));
            self.updates.extend(self.cam.observe(&f, &at(i)));
        }
    }

    fn started(&self, kind: EventKind) -> Vec<&NewEvent<Picture>> {
        self.updates
            .iter()
            .filter_map(|u| match u {
                EventUpdate::Started { event, .. } if event.kind == kind => Some(event),
                _ => None,
            })
            .collect()
    }

    fn ended(&self) -> usize {
        self.updates
            .iter()
            .filter(|u| matches!(u, EventUpdate::Ended { .. }))
            .count()
    }

    fn crossings(&self, direction: &str) -> usize {
        self.updates
            .iter()
            .filter(|u| matches!(u, EventUpdate::Crossed(c) if c.direction.as_str() == direction))
            .count()
    }
}

const YARD: &str = r#"
[[cameras.zones]]
name = "yard"
polygon = [[0.25, 0.5], [0.75, 0.5], [0.75, 1.0], [0.25, 1.0]]
labels = ["person"]
schedule = [{ days = "sun-thu", from = "22:00", to = "06:00" }]
rules = [{ name = "night-intrusion", kind = "intrusion", cooldown_s = 60 }]
"#;

#[test]
fn without_rules_each_object_makes_one_event_with_a_snapshot_and_a_track() {
    let mut r = Run::new("");
    // One person walks through for 4 s, then is gone.
    r.frames(0, 20, |i| {
        vec![person(
            100.0 + 10.0 * i as f32,
            300.0,
            0.6 + i as f32 * 0.01,
        )]
    });
    r.frames(20, 40, |_| vec![]);
    let started = r.started(EventKind::Object);
    assert_eq!(started.len(), 1);
    let e = started[0];
    assert_eq!(
        (
            e.label.as_str(),
            e.village.as_deref(),
            e.object_id.is_some()
        ),
        ("person", Some("东村"), true)
    );
    // The picture is handed on unencoded (the store writer encodes it),
    // with the object's box to draw in.
    let picture = e.snapshot.as_ref().expect("snapshot");
    assert_eq!(picture.boxes.len(), 1);
    assert!(picture.frame.model_input.is_none(), "planes only");
    let jpeg = encode_jpeg_with_boxes(&picture.frame, &picture.boxes).unwrap();
    let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
    d.decode().unwrap();
    assert_eq!(d.info().map(|i| (i.width, i.height)), Some((640, 480)));
    let ended: Vec<_> = r
        .updates
        .iter()
        .filter_map(|u| match u {
            EventUpdate::Ended { track, score, .. } => Some((track.len(), *score)),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    assert!(ended[0].0 >= 15, "the track is kept: {ended:?}");
    assert!(
        ended[0].1 > 0.7,
        "best score, after better snapshots: {ended:?}"
    );
    assert!(r
        .updates
        .iter()
        .any(|u| matches!(u, EventUpdate::Improved { .. })));
}

#[test]
fn object_events_respect_the_cooldown_and_ignore_weak_and_unwatched_detections() {
    let mut r = Run::new("");
    r.frames(0, 10, |_| {
        vec![
            person(100.0, 300.0, 0.9),
            person(400.0, 300.0, 0.8),
            person(250.0, 200.0, 0.3),
        ]
    });
    let kite = Detection {
        label: "kite".into(),
        class_id: 37,
        score: 0.99,
        bbox: BBox::new(1.0, 1.0, 50.0, 50.0),
    };
    r.frames(10, 12, |_| vec![kite.clone()]);
    // Two people at once: the cooldown allows one person event in 30 s.
    assert_eq!(r.started(EventKind::Object).len(), 1);
    // 31 s later another person appears: a new event.
    r.frames(160, 170, |_| vec![person(300.0, 400.0, 0.9)]);
    assert_eq!(r.started(EventKind::Object).len(), 2);
}

#[test]
fn intrusion_at_night_once_per_person_through_gaps_and_edges_not_by_day() {
    let mut r = Run::new(YARD);
    // A person walks into the yard (x 160 -> 320, y 300 = inside from x > 160).
    r.frames(0, 30, |i| vec![person(100.0 + 8.0 * i as f32, 300.0, 0.8)]);
    assert_eq!(r.started(EventKind::Intrusion).len(), 1);
    let e = r.started(EventKind::Intrusion)[0];
    assert_eq!(
        (e.zone.as_deref(), e.rule.as_deref()),
        (Some("yard"), Some("night-intrusion"))
    );
    // Hidden behind a tree for 1 s, then seen again: still the same event.
    r.frames(30, 35, |_| vec![]);
    r.frames(35, 53, |i| {
        vec![person(340.0 + 8.0 * (i - 35) as f32, 300.0, 0.8)]
    });
    // Stops at the zone's edge (x = 480 is the edge), feet wobbling in and out.
    r.frames(53, 60, |i| {
        vec![person(
            478.0 + if i % 2 == 0 { 5.0 } else { -5.0 },
            300.0,
            0.8,
        )]
    });
    assert_eq!(r.started(EventKind::Intrusion).len(), 1);
    assert_eq!(r.ended(), 0);
    // Walks out of the yard and waits: the event ends; walks back in within
    // the cooldown: nothing new.
    r.frames(60, 70, |i| {
        vec![person(478.0 + 8.0 * (i - 60) as f32, 300.0, 0.8)]
    });
    r.frames(70, 85, |_| vec![person(558.0, 300.0, 0.8)]);
    assert_eq!(r.ended(), 1);
    r.frames(85, 100, |i| {
        vec![person(558.0 - 8.0 * (i - 85) as f32, 300.0, 0.8)]
    });
    assert_eq!(r.started(EventKind::Intrusion).len(), 1);

    // By day (Monday 10:00) nobody counts as an intruder.
    let mut day = Run::new(YARD);
    let offset = 11 * 3600 * 5; // 11 h later, in frames
    day.frames(offset, offset + 30, |i| {
        vec![person(100.0 + 8.0 * (i - offset) as f32, 300.0, 0.8)]
    });
    assert!(day.started(EventKind::Intrusion).is_empty());
}

#[test]
fn two_people_crossing_paths_in_the_yard_are_two_intrusions() {
    let mut r = Run::new(YARD);
    r.frames(0, 30, |i| {
        vec![
            person(180.0 + 8.0 * i as f32, 300.0, 0.85),
            person(460.0 - 8.0 * i as f32, 304.0, 0.8),
        ]
    });
    let started = r.started(EventKind::Intrusion);
    assert_eq!(started.len(), 2);
    assert_ne!(started[0].object_id, started[1].object_id);
}

#[test]
fn loitering_starts_at_entry_after_the_minimum_stay() {
    let mut r = Run::new(
        r#"
[[cameras.zones]]
name = "river-bank"
polygon = [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]
rules = [{ name = "linger", kind = "loitering", min_duration_s = 180, labels = ["person"] }]
"#,
    );
    // Someone stands around on the bank for 179 s: nothing; at 180 s: one event.
    r.frames(0, 5 * 179, |i| {
        vec![person(300.0 + (i % 10) as f32, 400.0, 0.8)]
    });
    assert!(r.started(EventKind::Loitering).is_empty());
    r.frames(5 * 179, 5 * 200, |i| {
        vec![person(300.0 + (i % 10) as f32, 400.0, 0.8)]
    });
    let started = r.started(EventKind::Loitering);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].started_at, start(), "the stay started at entry");
}

#[test]
fn crowd_of_eight_for_a_minute_is_one_event_that_ends_when_they_disperse() {
    let mut r = Run::new(
        r#"
[[cameras.zones]]
name = "bridge"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
rules = [{ name = "gathering", kind = "crowd", min_count = 8, min_duration_s = 60, labels = ["person"] }]
"#,
    );
    let group = |n: usize| {
        (0..n)
            .map(|k| person(40.0 + 70.0 * k as f32, 300.0 + (k % 2) as f32 * 100.0, 0.8))
            .collect::<Vec<_>>()
    };
    r.frames(0, 5 * 50, |_| group(7));
    assert!(r.started(EventKind::Crowd).is_empty(), "7 is not a crowd");
    r.frames(5 * 50, 5 * 115, |_| group(8));
    let started = r.started(EventKind::Crowd);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].boxes.len(), 8);
    r.frames(5 * 115, 5 * 125, |_| group(3));
    assert_eq!(r.ended(), 1);
}

#[test]
fn a_car_parked_on_the_fire_lane_for_an_hour_is_one_event() {
    let mut r = Run::new(
        r#"
[[cameras.zones]]
name = "fire-lane"
polygon = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
rules = [{ name = "no-parking", kind = "vehicle_dwell", min_duration_s = 600, labels = ["car"] }]
"#,
    );
    // A car drives in, then stands for an hour (with detection jitter and the
    // odd missed frame).
    r.frames(0, 25, |i| vec![car(50.0 + 10.0 * i as f32, 400.0)]);
    r.frames(25, 5 * 3600, |i| {
        if i % 50 == 0 {
            vec![]
        } else {
            vec![car(300.0 + (i % 3) as f32, 400.0)]
        }
    });
    let started = r.started(EventKind::VehicleDwell);
    assert_eq!(started.len(), 1);
    // It stood still from about 5 s in (when it had rolled to a stop).
    assert!(
        started[0].started_at >= start() + Duration::seconds(4)
            && started[0].started_at <= start() + Duration::seconds(12)
    );
    assert_eq!(r.ended(), 0, "still parked");
    // Drives away: the event ends.
    r.frames(5 * 3600, 5 * 3600 + 30, |i| {
        vec![car(300.0 + 20.0 * (i - 5 * 3600) as f32, 400.0)]
    });
    assert_eq!(r.ended(), 1);
}

#[test]
fn line_crossings_are_counted_per_direction_and_make_events_only_as_configured() {
    let mut r = Run::new(
        r#"
[[cameras.lines]]
name = "bridge"
from = [0.5, 0.0]
to = [0.5, 1.0]
labels = ["person"]
events = "backward"
"#,
    );
    // Line from top to bottom at x = 320: walking left to right crosses from
    // the line's right side to its left: backward.
    r.frames(0, 40, |i| {
        vec![
            person(200.0 + 6.0 * i as f32, 300.0, 0.8),
            person(440.0 - 6.0 * i as f32, 420.0, 0.8),
        ]
    });
    assert_eq!((r.crossings("backward"), r.crossings("forward")), (1, 1));
    let events = r.started(EventKind::LineCrossing);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail.as_deref(), Some("backward"));
    assert!(events[0].ended_at.is_some());
    // Standing on the line, wobbling: no more counts.
    r.frames(40, 80, |i| {
        vec![person(
            320.0 + if i % 2 == 0 { 3.0 } else { -3.0 },
            200.0,
            0.8,
        )]
    });
    assert_eq!(
        r.crossings("backward") + r.crossings("forward"),
        2,
        "no new crossings"
    );
}

#[test]
fn masks_and_filters_drop_detections() {
    let mut r = Run::new(
        r#"
masks = [[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]]
filters = { person = { min_area = 0.002 } }
"#,
    );
    // Left half masked; a tiny person on the right is filtered by area.
    r.frames(0, 20, |_| {
        vec![
            person(100.0, 300.0, 0.9),
            Detection {
                label: "person".into(),
                class_id: 0,
                score: 0.9,
                bbox: BBox::new(500.0, 290.0, 504.0, 300.0),
            },
        ]
    });
    assert!(r.started(EventKind::Object).is_empty());
    r.frames(20, 40, |_| vec![person(500.0, 300.0, 0.9)]);
    assert_eq!(r.started(EventKind::Object).len(), 1);
}

/// The decoder stays busy while the analytics need anything: a moving
/// object anywhere, a still one only where rules time it.
#[test]
fn moving_objects_or_any_object_under_rules_keep_the_camera_busy() {
    // No rules: a walker counts; a parked car stops counting once it is
    // known to be stationary (5 s); nothing counts once the walker is gone.
    let mut r = Run::new("");
    assert_eq!(r.cam.need(), DetectionNeed::Nothing);
    r.frames(0, 2, |i| vec![person(100.0 + 4.0 * i as f32, 300.0, 0.9)]);
    assert_ne!(r.cam.need(), DetectionNeed::Nothing, "a confirmed walker");
    r.frames(2, 20, |i| vec![person(100.0 + 4.0 * i as f32, 300.0, 0.9)]);
    assert_ne!(r.cam.need(), DetectionNeed::Nothing);
    r.frames(20, 60, |_| vec![car(500.0, 400.0)]);
    assert_eq!(
        r.cam.need(),
        DetectionNeed::Nothing,
        "a parked car without rules does not keep the camera busy"
    );
    // Under a rule, the same still car (or a person standing still) counts.
    let mut r = Run::new(YARD);
    r.frames(0, 60, |_| vec![person(320.0, 400.0, 0.9)]);
    assert_ne!(
        r.cam.need(),
        DetectionNeed::Nothing,
        "a person standing still where rules apply"
    );
    r.frames(60, 80, |_| vec![]);
    assert_eq!(
        r.cam.need(),
        DetectionNeed::Nothing,
        "gone after lost_after_s"
    );
}

/// The full rate while an object appears, is unseen, moves fast or is near
/// a zone edge or line; the reduced rate once every object is settled.
#[test]
fn the_need_is_full_near_geometry_and_reduced_far_from_it() {
    // The yard spans x 0.25-0.75, y 0.5-1.0 (160-480, 240-480 px).
    let mut r = Run::new(YARD);
    r.frames(0, 1, |_| vec![person(320.0, 400.0, 0.9)]);
    assert_eq!(r.cam.need(), DetectionNeed::Full, "appeared, not confirmed");
    r.frames(1, 3, |_| vec![person(320.0, 400.0, 0.9)]);
    assert_eq!(
        r.cam.need(),
        DetectionNeed::Reduced,
        "confirmed, in the middle"
    );
    r.frames(3, 4, |_| vec![]);
    assert_eq!(
        r.cam.need(),
        DetectionNeed::Reduced,
        "missed once by the model: no reason for the full rate"
    );
    r.frames(4, 6, |_| vec![person(320.0, 400.0, 0.9)]);
    // Established (5 matches), then unseen so long (1.2 s) that it would end
    // (lost_after_s = 2) before the next reduced-rate detection (1 s):
    // looked for at the full rate.
    r.frames(6, 12, |_| vec![]);
    assert_eq!(r.cam.need(), DetectionNeed::Full, "about to be lost");
    r.frames(12, 13, |_| vec![person(320.0, 400.0, 0.9)]);
    assert_eq!(r.cam.need(), DetectionNeed::Reduced);
    // Looked for with two full-rate detections and not found: taken to be
    // gone (the track still lasts until lost_after_s).
    r.frames(13, 21, |_| vec![]);
    assert_eq!(
        r.cam.need(),
        DetectionNeed::Reduced,
        "given up after 2 looks"
    );
    assert_eq!(r.cam.tracks().len(), 1, "not ended yet");
    // A walker who left the picture is not looked for.
    let mut r = Run::new("");
    r.frames(0, 10, |i| vec![person(560.0 + 8.0 * i as f32, 300.0, 0.9)]);
    r.frames(10, 17, |_| vec![]);
    assert_eq!(r.cam.need(), DetectionNeed::Reduced, "gone to the right");
    // Standing just inside the fence (5 px from the edge at x = 160).
    let mut r = Run::new(YARD);
    r.frames(0, 10, |_| vec![person(165.0, 400.0, 0.9)]);
    assert_eq!(r.cam.need(), DetectionNeed::Full, "at the zone's edge");
    // Walking towards the fence at 20 px/s (a box width a second: not too
    // fast to follow), 44 px from it: near enough at that speed.
    let mut r = Run::new(YARD);
    r.frames(0, 10, |i| vec![person(80.0 + 4.0 * i as f32, 400.0, 0.9)]);
    assert_eq!(r.cam.need(), DetectionNeed::Full, "heading for the fence");
    // Walking slowly far from it: reduced.
    let mut r = Run::new(YARD);
    r.frames(0, 10, |i| vec![person(20.0, 150.0 + 2.0 * i as f32, 0.9)]);
    assert_eq!(r.cam.need(), DetectionNeed::Reduced, "far from the yard");
    // A walker at 50 px/s (2.5 widths a second of a 20 px person) needs a
    // detection every 1.5 widths: about 1.7 a second, not min_fps.
    let mut r = Run::new(YARD);
    r.frames(0, 15, |i| vec![person(20.0 + 10.0 * i as f32, 100.0, 0.9)]);
    let judged = r.cam.judged();
    assert_eq!(judged.reason.need(), DetectionNeed::Reduced);
    assert!((1.5..1.8).contains(&judged.fps), "{judged:?}");
    // One running up to 180 px/s would need more than the full rate: full.
    let mut r = Run::new(YARD);
    r.frames(0, 19, |i| vec![person(20.0 + (i * i) as f32, 100.0, 0.9)]);
    assert_eq!(r.cam.judged().reason, NeedReason::Fast);
    // Not adaptive: the full rate whenever anything keeps the camera busy.
    let mut r = Run::new(&format!("detection = {{ adaptive = false }}\n{YARD}"));
    r.frames(0, 10, |_| vec![person(320.0, 400.0, 0.9)]);
    assert_eq!(r.cam.need(), DetectionNeed::Full);
}

/// What the decoder is told: the need, and with a reduced one the regions
/// where the objects may move until the next detection.
#[test]
fn a_reduced_need_publishes_the_objects_regions() {
    let mut r = Run::new(YARD);
    r.frames(0, 10, |i| vec![person(20.0, 150.0 + 2.0 * i as f32, 0.9)]);
    let board = NeedBoard::default();
    r.cam.publish_need(&board);
    assert_eq!(board.need(), DetectionNeed::Reduced);
    let mut regions = Vec::new();
    board.regions_into(&mut regions);
    assert_eq!(regions.len(), 1);
    let b = regions[0];
    // The box (10-30, 108-168) widened by a quarter each side, and stretched
    // down to where the walker will be in a second (10 px/s).
    assert!(b.x1 < 10.0 && b.x2 > 30.0, "{b:?}");
    assert!(b.y1 < 108.0 && b.y2 > 168.0 + 9.0, "{b:?}");
}
