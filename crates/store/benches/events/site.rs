//! The simulated site: cameras in villages and grids, each with its own
//! busyness and rules, and the events they make: what the fill writes in
//! bulk and what the insert phase hands to `insert_event`. Everything comes
//! from one seed, so two runs (and the two backends) get the same events.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use xueliang_core::{BoxRecord, EventKind, TrackPoint, WorkflowState, HEALTH_LABEL};

/// The share of the day's events in each local hour (UTC+8): quiet nights,
/// busy mornings and evenings.
const HOURLY: [f64; 24] = [
    0.3, 0.25, 0.2, 0.2, 0.25, 0.4, 0.7, 1.1, 1.4, 1.4, 1.3, 1.3, 1.3, 1.3, 1.3, 1.4, 1.5, 1.6,
    1.6, 1.4, 1.1, 0.9, 0.6, 0.4,
];
/// Beijing time, for the hours above.
const UTC_OFFSET_MS: i64 = 8 * 3600 * 1000;
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Share of cameras with zones and rules (a school yard, a riverbank, a fire lane).
const RULED_CAMERAS: f64 = 0.4;
/// Share of health events (camera offline, recovered, frozen, blocked,
/// turned): they have no snapshot, so this is also the share of events
/// without one.
const HEALTH_SHARE: f64 = 0.05;

pub struct Camera {
    pub id: String,
    pub village: usize,
    pub grid: usize,
    pub width: u32,
    pub height: u32,
    pub ruled: bool,
}

pub struct Site {
    pub cameras: Vec<Camera>,
    pub villages: Vec<String>,
    pub grids: Vec<String>,
    /// Cumulative busyness of the cameras, for picking one by weight.
    cumulative: Vec<f64>,
}

impl Site {
    /// `cameras` cameras spread evenly over `villages` villages of
    /// `grids_per_village` grids; each camera's share of the events is
    /// log-normal (sigma 1): the busiest make ~20x the median camera's, the
    /// quietest a few a day.
    pub fn new(seed: u64, cameras: usize, villages: usize, grids_per_village: usize) -> Site {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5117e);
        let village_names: Vec<String> =
            (1..=villages).map(|v| format!("village-{v:02}")).collect();
        let grids: Vec<String> = (0..villages * grids_per_village)
            .map(|g| {
                format!(
                    "village-{:02}-grid-{}",
                    g / grids_per_village + 1,
                    g % grids_per_village + 1
                )
            })
            .collect();
        let mut cumulative = Vec::with_capacity(cameras);
        let mut total = 0.0;
        let cameras = (0..cameras)
            .map(|c| {
                let grid = c * grids.len() / cameras;
                total += normal(&mut rng).exp();
                cumulative.push(total);
                let (width, height) = match rng.gen_range(0..20) {
                    0..=11 => (1920, 1080),
                    12..=16 => (1280, 720),
                    _ => (704, 576),
                };
                Camera {
                    id: format!("cam-{:04}", c + 1),
                    village: grid / grids_per_village,
                    grid,
                    width,
                    height,
                    ruled: rng.gen_bool(RULED_CAMERAS),
                }
            })
            .collect();
        Site {
            cameras,
            villages: village_names,
            grids,
            cumulative,
        }
    }

    /// A camera, by busyness.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().expect("cameras");
        let x = rng.gen::<f64>() * total;
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.cameras.len() - 1)
    }

    /// What camera `camera` sees next.
    pub fn spec(&self, rng: &mut impl Rng, camera: usize) -> Spec {
        let cam = &self.cameras[camera];
        let health = rng.gen_bool(HEALTH_SHARE);
        if health {
            let (kind, ms, detail) = match rng.gen_range(0..100) {
                0..=39 => (
                    EventKind::CameraOffline,
                    rng.gen_range(60_000..7_200_000),
                    "no video for 60 s (connection refused)".to_owned(),
                ),
                40..=79 => (
                    EventKind::CameraRecovered,
                    0,
                    "offline for 14.2 min".to_owned(),
                ),
                80..=87 => (
                    EventKind::VideoFrozen,
                    rng.gen_range(30_000..1_800_000),
                    "the picture has not changed for 60 s".to_owned(),
                ),
                88..=93 => (
                    EventKind::VideoBlocked,
                    rng.gen_range(30_000..1_800_000),
                    "the picture is uniform (covered lens?)".to_owned(),
                ),
                _ => (
                    EventKind::SceneChanged,
                    rng.gen_range(30_000..1_800_000),
                    "the view moved".to_owned(),
                ),
            };
            return Spec {
                kind,
                label: HEALTH_LABEL,
                score: 1.0,
                zone: None,
                rule: None,
                object_id: None,
                detail: Some(detail),
                boxes: Vec::new(),
                duration_ms: ms,
                width: 0,
                height: 0,
            };
        }
        let label = match rng.gen_range(0..100) {
            0..=59 => "person",
            60..=84 => "car",
            85..=89 => "motorcycle",
            90..=94 => "bicycle",
            _ => "truck",
        };
        let object = |rng: &mut dyn rand::RngCore, label, ms| Spec {
            kind: EventKind::Object,
            label,
            score: 0.0,
            zone: None,
            rule: None,
            object_id: Some(rng.gen_range(1..2_000_000)),
            detail: None,
            boxes: Vec::new(),
            duration_ms: ms,
            width: cam.width,
            height: cam.height,
        };
        let mut spec = if !cam.ruled {
            let ms = rng.gen_range(3_000..60_000);
            object(rng, label, ms)
        } else {
            let r = rng.gen_range(0..100);
            let (kind, zone, rule, label, ms, detail) = match r {
                0..=46 => (
                    EventKind::Object,
                    None,
                    None,
                    label,
                    rng.gen_range(3_000..60_000),
                    None,
                ),
                47..=67 => (
                    EventKind::Intrusion,
                    Some("school_yard"),
                    Some("yard_at_night"),
                    "person",
                    rng.gen_range(5_000..120_000),
                    None,
                ),
                68..=83 => (
                    EventKind::LineCrossing,
                    Some("entrance_line"),
                    Some("entering"),
                    label,
                    0,
                    None,
                ),
                84..=91 => (
                    EventKind::Loitering,
                    Some("riverbank"),
                    Some("riverbank_loitering"),
                    "person",
                    rng.gen_range(60_000..600_000),
                    Some("stayed 95 s (rule: 60 s)".to_owned()),
                ),
                92..=97 => (
                    EventKind::VehicleDwell,
                    Some("fire_lane"),
                    Some("fire_lane_parking"),
                    "car",
                    rng.gen_range(120_000..1_800_000),
                    Some("stood still 185 s (rule: 120 s)".to_owned()),
                ),
                _ => (
                    EventKind::Crowd,
                    Some("square"),
                    Some("square_crowd"),
                    "person",
                    rng.gen_range(30_000..600_000),
                    Some("12 in the zone (rule: at least 10)".to_owned()),
                ),
            };
            let mut s = object(rng, label, ms);
            s.kind = kind;
            s.zone = zone;
            s.rule = rule;
            s.detail = detail;
            if kind == EventKind::Crowd {
                s.object_id = None;
            }
            s
        };
        let boxes = if spec.kind == EventKind::Crowd {
            rng.gen_range(10..16)
        } else {
            1
        };
        spec.boxes = (0..boxes)
            .map(|_| a_box(rng, spec.label, cam.width, cam.height))
            .collect();
        spec.score = spec.boxes.iter().map(|b| b.score).fold(0.0, f32::max);
        spec
    }
}

/// An event as the pipeline would make it, before it has a time.
pub struct Spec {
    pub kind: EventKind,
    pub label: &'static str,
    pub score: f32,
    pub zone: Option<&'static str>,
    pub rule: Option<&'static str>,
    /// The tracker's id, for events of one object.
    pub object_id: Option<u64>,
    pub detail: Option<String>,
    pub boxes: Vec<BoxRecord>,
    /// How long it lasts; 0 for events recorded already ended (a line
    /// crossing, a camera back online).
    pub duration_ms: i64,
    /// The frame the boxes refer to (0 x 0 for health events).
    pub width: u32,
    pub height: u32,
}

impl Spec {
    /// The object's track at its end, `points` points over its duration
    /// (none for events that are not one object's).
    pub fn track(&self, rng: &mut impl Rng, started_ms: i64, points: usize) -> Vec<TrackPoint> {
        if self.object_id.is_none() || self.duration_ms == 0 || points == 0 {
            return Vec::new();
        }
        let b = &self.boxes[0];
        let (mut x, mut y) = (b.x1, b.y1);
        let (w, h) = (b.x2 - b.x1, b.y2 - b.y1);
        (0..points)
            .map(|i| {
                x = (x + rng.gen_range(-20.0..20.0)).clamp(0.0, self.width as f32 - w);
                y = (y + rng.gen_range(-10.0..10.0)).clamp(0.0, self.height as f32 - h);
                let at = started_ms + self.duration_ms * i as i64 / points as i64;
                TrackPoint {
                    at: time(at),
                    x1: x,
                    y1: y,
                    x2: x + w,
                    y2: y + h,
                }
            })
            .collect()
    }
}

fn a_box(rng: &mut impl Rng, label: &str, width: u32, height: u32) -> BoxRecord {
    let (w, h) = (width as f32, height as f32);
    let bw = w * rng.gen_range(0.04..0.2);
    let bh = h * rng.gen_range(0.1..0.4);
    let x1 = rng.gen_range(0.0..w - bw);
    let y1 = rng.gen_range(0.0..h - bh);
    BoxRecord {
        label: label.to_owned(),
        score: rng.gen_range(0.5..0.98),
        x1,
        y1,
        x2: x1 + bw,
        y2: y1 + bh,
    }
}

/// A standard normal deviate (Box-Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time in range")
}

/// One stored event of the fill, in the columns `insert_event`, `end_event`
/// and the operators' workflow write.
pub struct Row {
    pub id: i64,
    pub camera: usize,
    pub kind: EventKind,
    pub label: &'static str,
    pub score: f32,
    pub started_at: i64,
    /// `None` while active.
    pub ended_at: Option<i64>,
    pub detail: Option<String>,
    pub width: u32,
    pub height: u32,
    /// JSON, as the store writes it.
    pub boxes: String,
    pub recorded_at: i64,
    pub zone: Option<&'static str>,
    pub rule: Option<&'static str>,
    pub object_id: Option<u64>,
    /// JSON, or `None` (no track, or not ended).
    pub track: Option<String>,
    pub workflow: WorkflowState,
    pub assignee: Option<String>,
    pub workflow_at: Option<i64>,
    pub workflow_by: Option<String>,
    pub keep: bool,
}

/// The fill's events in time (and id) order: `total` events over `days`
/// days before `end_ms`, more by day than by night.
pub struct Fill<'a> {
    site: &'a Site,
    rng: StdRng,
    total: u64,
    end_ms: i64,
    start_ms: i64,
    track_points: usize,
    /// Sum of the hourly weights over all slots, and so far.
    weight_total: f64,
    weight_done: f64,
    slot: i64,
    emitted: u64,
    pending: std::collections::VecDeque<i64>,
}

impl<'a> Fill<'a> {
    pub fn new(
        site: &'a Site,
        seed: u64,
        total: u64,
        days: u32,
        end_ms: i64,
        track_points: usize,
    ) -> Self {
        let start_ms = end_ms - days as i64 * DAY_MS;
        let slots = (end_ms - start_ms) / MINUTE_MS;
        let weight_total = (0..slots).map(|s| weight(start_ms + s * MINUTE_MS)).sum();
        Fill {
            site,
            rng: StdRng::seed_from_u64(seed),
            total,
            end_ms,
            start_ms,
            track_points,
            weight_total,
            weight_done: 0.0,
            slot: 0,
            emitted: 0,
            pending: Default::default(),
        }
    }

    /// The next event's start time.
    fn next_start(&mut self) -> Option<i64> {
        while self.pending.is_empty() {
            let at = self.start_ms + self.slot * MINUTE_MS;
            if at >= self.end_ms {
                return None;
            }
            self.weight_done += weight(at);
            self.slot += 1;
            let target = if at + MINUTE_MS >= self.end_ms {
                self.total
            } else {
                ((self.total as f64 * self.weight_done / self.weight_total) as u64).min(self.total)
            };
            let mut starts: Vec<i64> = (self.emitted..target)
                .map(|_| at + self.rng.gen_range(0..MINUTE_MS))
                .collect();
            starts.sort_unstable();
            self.emitted = target;
            self.pending.extend(starts);
        }
        self.pending.pop_front()
    }
}

impl Iterator for Fill<'_> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let started_at = self.next_start()?;
        let rng = &mut self.rng;
        let camera = self.site.pick(rng);
        let spec = self.site.spec(rng, camera);
        let end = started_at + spec.duration_ms;
        let ended_at = (end <= self.end_ms).then_some(end);
        let track = match ended_at {
            Some(_) => spec.track(rng, started_at, self.track_points),
            None => Vec::new(),
        };
        let age = self.end_ms - started_at;
        let workflow = review(rng, age);
        let reviewed = workflow != WorkflowState::New;
        let workflow_at =
            reviewed.then(|| (started_at + rng.gen_range(300_000..2 * DAY_MS)).min(self.end_ms));
        let workflow_by = reviewed.then(|| format!("op{:02}", rng.gen_range(1..13)));
        let grid = &self.site.grids[self.site.cameras[camera].grid];
        let assignee = (workflow == WorkflowState::Assigned
            || (workflow == WorkflowState::Resolved && rng.gen_bool(0.5)))
        .then(|| format!("{grid}-worker"));
        let keep = workflow == WorkflowState::Resolved && rng.gen_bool(0.01);
        let id = self.emitted as i64 - self.pending.len() as i64;
        Some(Row {
            id,
            camera,
            kind: spec.kind,
            label: spec.label,
            score: spec.score,
            started_at,
            ended_at,
            boxes: serde_json::to_string(&spec.boxes).expect("boxes serialise"),
            recorded_at: started_at + rng.gen_range(40..400),
            track: (!track.is_empty())
                .then(|| serde_json::to_string(&track).expect("track serialises")),
            detail: spec.detail,
            width: spec.width,
            height: spec.height,
            zone: spec.zone,
            rule: spec.rule,
            object_id: spec.object_id,
            workflow,
            assignee,
            workflow_at,
            workflow_by,
            keep,
        })
    }
}

/// Where operators have taken an event of this age: most are never looked
/// at; older ones are more often resolved or false alarms.
fn review(rng: &mut impl Rng, age_ms: i64) -> WorkflowState {
    let r = rng.gen_range(0..100);
    if age_ms > 7 * DAY_MS {
        match r {
            0..=69 => WorkflowState::New,
            70..=72 => WorkflowState::Acknowledged,
            73..=74 => WorkflowState::Assigned,
            75..=92 => WorkflowState::Resolved,
            _ => WorkflowState::FalseAlarm,
        }
    } else {
        match r {
            0..=84 => WorkflowState::New,
            85..=90 => WorkflowState::Acknowledged,
            91..=94 => WorkflowState::Assigned,
            95..=98 => WorkflowState::Resolved,
            _ => WorkflowState::FalseAlarm,
        }
    }
}

fn weight(at_ms: i64) -> f64 {
    HOURLY[((at_ms + UTC_OFFSET_MS).rem_euclid(DAY_MS) / 3_600_000) as usize]
}
