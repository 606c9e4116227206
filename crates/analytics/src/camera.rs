//! Everything one camera's detections go through: filters and masks, the
//! tracker, then rules (or plain object events), and the events' pictures.

use crate::geometry::inside;
use crate::need::{Judged, NeedJudge};
use crate::rules::{foot, Happening, RuleEngine};
use crate::tracker::{Track, Tracker};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use xueliang_core::config::CameraConfig;
use xueliang_core::{
    BBox, BoxRecord, DecodedFrame, Detection, DetectionNeed, EventKind, EventUpdate, NeedBoard,
    NewEvent, Picture, TrackPoint,
};

/// Points kept of an object's track in a stored event.
const TRACK_POINTS: usize = 100;
/// A better snapshot replaces the event's when the score improves this much...
const IMPROVE_BY: f32 = 0.05;
/// ... at most this often.
const IMPROVE_EVERY: Duration = Duration::seconds(1);

struct OpenEvent {
    objects: Vec<u64>,
    started_at: DateTime<Utc>,
    best_score: f32,
    best_boxes: Vec<BoxRecord>,
    last_snapshot: DateTime<Utc>,
}

pub struct CameraAnalytics {
    camera: CameraConfig,
    tracker: Tracker,
    rules: Option<RuleEngine>,
    /// Object events (cameras without rules): label -> last event start.
    last_object_event: HashMap<String, DateTime<Utc>>,
    /// Object events: object -> event key.
    object_events: HashMap<u64, u64>,
    open: HashMap<u64, OpenEvent>,
    next_key: u64,
    need: NeedJudge,
    /// The latest detected frame's time and size.
    latest: Option<(DateTime<Utc>, u32, u32)>,
}

fn record(label: &str, score: f32, b: &BBox) -> BoxRecord {
    BoxRecord {
        label: label.to_owned(),
        score,
        x1: b.x1,
        y1: b.y1,
        x2: b.x2,
        y2: b.y2,
    }
}

impl CameraAnalytics {
    pub fn new(camera: CameraConfig) -> Self {
        let lost = Duration::milliseconds((camera.detection.lost_after_s * 1000.0) as i64);
        let rules = camera
            .rules
            .has_rules()
            .then(|| RuleEngine::new(&camera, camera.detection.tz()));
        CameraAnalytics {
            need: NeedJudge::new(&camera),
            latest: None,
            camera,
            tracker: Tracker::new(lost),
            rules,
            last_object_event: HashMap::new(),
            object_events: HashMap::new(),
            open: HashMap::new(),
            // Keys of rule events come from the rule engine; object events use
            // the upper half of the key space.
            next_key: 1 << 62,
        }
    }

    /// Whether a detection passes the camera's filters and masks.
    fn wanted(&self, d: &Detection, w: u32, h: u32) -> bool {
        let watched = self.camera.detection.threshold(&d.label).is_some()
            || self.rules.as_ref().is_some_and(|r| r.watches(&d.label));
        if !watched {
            return false;
        }
        if let Some(f) = self.camera.rules.filters.get(&d.label) {
            let area = (d.bbox.area() / (w * h) as f32) as f64;
            let aspect = (d.bbox.width() / d.bbox.height().max(1.0)) as f64;
            let fails = f.min_area.is_some_and(|v| area < v)
                || f.max_area.is_some_and(|v| area > v)
                || f.min_aspect.is_some_and(|v| aspect < v)
                || f.max_aspect.is_some_and(|v| aspect > v);
            if fails {
                return false;
            }
        }
        let at = foot(&d.bbox, w, h);
        !self.camera.rules.masks.iter().any(|m| inside(at, m))
    }

    fn confident(&self, d: &Detection) -> bool {
        let t = self
            .camera
            .detection
            .threshold(&d.label)
            .unwrap_or(self.camera.detection.min_score);
        d.score >= t
    }

    /// Feeds one frame's detections; returns the event updates.
    pub fn observe(
        &mut self,
        frame: &DecodedFrame,
        detections: &[Detection],
    ) -> Vec<EventUpdate<Picture>> {
        let now = frame.received_at;
        let (w, h) = (frame.width, frame.height);
        self.latest = Some((now, w, h));
        let kept: Vec<Detection> = detections
            .iter()
            .filter(|d| self.wanted(d, w, h))
            .cloned()
            .collect();
        let confident: Vec<bool> = kept.iter().map(|d| self.confident(d)).collect();
        let ended = self.tracker.update(now, &kept, &confident, w, h);
        let happenings = match &mut self.rules {
            Some(r) => r.update(now, self.tracker.tracks(), &ended, w, h),
            None => self.object_happenings(now, &ended),
        };
        let mut updates = self.materialise(happenings, frame, &ended);
        self.improve(frame, &mut updates);
        updates
    }

    /// Plain object events: one per confirmed, confident track of a watched
    /// label, at most one per label per cooldown.
    fn object_happenings(&mut self, now: DateTime<Utc>, ended: &[Track]) -> Vec<Happening> {
        let mut out = Vec::new();
        for t in ended {
            if let Some(key) = self.object_events.remove(&t.id) {
                out.push(Happening::End {
                    key,
                    at: t.last_seen,
                });
            }
        }
        let cooldown = Duration::milliseconds((self.camera.detection.cooldown_s * 1000.0) as i64);
        let candidates: Vec<(u64, String)> = self
            .tracker
            .tracks()
            .iter()
            .filter(|t| t.confirmed() && t.seen_now && !self.object_events.contains_key(&t.id))
            .filter(|t| {
                self.camera
                    .detection
                    .threshold(&t.label)
                    .is_some_and(|th| t.score >= th)
            })
            .map(|t| (t.id, t.label.clone()))
            .collect();
        for (id, label) in candidates {
            if self
                .last_object_event
                .get(&label)
                .is_some_and(|t| now - *t < cooldown)
            {
                // Within the cooldown: this object never gets an event.
                self.object_events.insert(id, 0);
                continue;
            }
            self.last_object_event.insert(label, now);
            let key = self.next_key;
            self.next_key += 1;
            self.object_events.insert(id, key);
            out.push(Happening::Start {
                key,
                kind: EventKind::Object,
                zone: String::new(),
                rule: None,
                objects: vec![id],
                started_at: now,
                ended: false,
                detail: None,
            });
        }
        out.retain(|h| !matches!(h, Happening::End { key: 0, .. }));
        out
    }

    fn find<'a>(&'a self, id: u64, ended: &'a [Track]) -> Option<&'a Track> {
        self.tracker
            .tracks()
            .iter()
            .chain(ended)
            .find(|t| t.id == id)
    }

    fn materialise(
        &mut self,
        happenings: Vec<Happening>,
        frame: &DecodedFrame,
        ended: &[Track],
    ) -> Vec<EventUpdate<Picture>> {
        let mut out = Vec::new();
        for h in happenings {
            match h {
                Happening::Crossed(c) => out.push(EventUpdate::Crossed(c)),
                Happening::Start {
                    key,
                    kind,
                    zone,
                    rule,
                    objects,
                    started_at,
                    ended: instant,
                    detail,
                } => {
                    let tracks: Vec<&Track> = objects
                        .iter()
                        .filter_map(|id| self.find(*id, ended))
                        .collect();
                    let Some(main) = tracks.iter().max_by(|a, b| a.score.total_cmp(&b.score))
                    else {
                        continue;
                    };
                    let label = main.label.clone();
                    let score = main.score;
                    let boxes: Vec<BoxRecord> = tracks
                        .iter()
                        .map(|t| record(&t.label, t.score, &t.bbox))
                        .collect();
                    let rects: Vec<BBox> = tracks.iter().map(|t| t.bbox).collect();
                    let snapshot = Some(Picture::of(frame, rects));
                    let object_id = (objects.len() == 1).then_some(objects[0]);
                    let event = NewEvent {
                        camera_id: self.camera.id.clone(),
                        village: self.camera.village.clone(),
                        grid: self.camera.grid.clone(),
                        kind,
                        label,
                        score,
                        started_at,
                        ended_at: instant.then_some(started_at),
                        detail,
                        zone: (!zone.is_empty()).then_some(zone),
                        rule,
                        object_id,
                        frame_width: frame.width,
                        frame_height: frame.height,
                        boxes: boxes.clone(),
                        snapshot,
                    };
                    if !instant {
                        self.open.insert(
                            key,
                            OpenEvent {
                                objects,
                                started_at,
                                best_score: score,
                                best_boxes: boxes,
                                last_snapshot: frame.received_at,
                            },
                        );
                    }
                    out.push(EventUpdate::Started { key, event });
                }
                Happening::End { key, at } => out.extend(self.close(key, at, ended)),
            }
        }
        out
    }

    /// A clearly better view of a single object's open event replaces its picture.
    fn improve(&mut self, frame: &DecodedFrame, out: &mut Vec<EventUpdate<Picture>>) {
        let now = frame.received_at;
        let mut better = Vec::new();
        for (key, e) in &self.open {
            let [id] = e.objects.as_slice() else { continue };
            let Some(t) = self
                .tracker
                .tracks()
                .iter()
                .find(|t| t.id == *id && t.seen_now)
            else {
                continue;
            };
            if t.score >= e.best_score + IMPROVE_BY && now - e.last_snapshot >= IMPROVE_EVERY {
                better.push((*key, t.label.clone(), t.score, t.bbox));
            }
        }
        for (key, label, score, bbox) in better {
            let snapshot = Some(Picture::of(frame, vec![bbox]));
            let boxes = vec![record(&label, score, &bbox)];
            if let Some(e) = self.open.get_mut(&key) {
                e.best_score = score;
                e.best_boxes = boxes.clone();
                e.last_snapshot = now;
            }
            out.push(EventUpdate::Improved {
                key,
                score,
                boxes,
                snapshot,
            });
        }
    }

    /// Ends every open event (the camera stopped or the service shuts down).
    pub fn end_all(&mut self) -> Vec<EventUpdate<Picture>> {
        let now = self
            .tracker
            .tracks()
            .iter()
            .map(|t| t.last_seen)
            .max()
            .unwrap_or_else(Utc::now);
        let ended = self.tracker.clear();
        let mut happenings = match &mut self.rules {
            Some(r) => r.end_all(now),
            None => Vec::new(),
        };
        for t in &ended {
            if let Some(key) = self.object_events.remove(&t.id).filter(|k| *k != 0) {
                happenings.push(Happening::End {
                    key,
                    at: t.last_seen,
                });
            }
        }
        happenings
            .into_iter()
            .filter_map(|h| match h {
                Happening::End { key, at } => self.close(key, at, &ended),
                _ => None,
            })
            .collect()
    }

    /// Closes an open event, with the object's track while it lasted.
    fn close(
        &mut self,
        key: u64,
        at: DateTime<Utc>,
        ended: &[Track],
    ) -> Option<EventUpdate<Picture>> {
        let open = self.open.remove(&key)?;
        let track = match open.objects.as_slice() {
            [id] => self
                .find(*id, ended)
                .map(|t| track_points(t, open.started_at, at))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Some(EventUpdate::Ended {
            key,
            ended_at: at,
            score: open.best_score,
            boxes: open.best_boxes,
            track,
        })
    }

    /// Whether the object keeps the camera busy (every frame decoded):
    /// any confirmed track that moves, and on a camera with rules any
    /// confirmed track at all (a person standing still in a loitering zone, a
    /// car on the fire lane: the rules time how long they stay). A stationary
    /// object on a camera without rules has had its event and does not count,
    /// so a parked car does not keep the camera busy all night.
    fn keeps_busy(&self, t: &Track) -> bool {
        t.confirmed() && (self.rules.is_some() || t.stationary_since.is_none())
    }

    /// What the next frames need from the model, after the latest detection.
    pub fn need(&self) -> DetectionNeed {
        self.judged().reason.need()
    }

    /// Why [`Self::need`] is what it is, and a reduced need's rate.
    pub fn judged(&self) -> Judged {
        let (now, w, h) = self.latest.unwrap_or((Utc::now(), 1, 1));
        self.need
            .need(self.tracker.tracks(), |t| self.keeps_busy(t), now, w, h)
    }

    /// Publishes the need for the camera's decoder, with a reduced need's
    /// rate and the tracked objects' regions.
    pub fn publish_need(&self, board: &NeedBoard) {
        let now = self.latest.map_or_else(Utc::now, |(at, _, _)| at);
        let judged = self.judged();
        board.set(judged.reason.need(), judged.fps, || {
            self.need.regions(self.tracker.tracks(), now, judged.fps)
        });
    }

    /// The live tracks (confirmed or not).
    pub fn tracks(&self) -> &[Track] {
        self.tracker.tracks()
    }

    /// The camera is idle (its stream shows no motion) at `now` and the frame
    /// was not shown to the model: the confirmed objects are taken to be
    /// still where they were, so their tracks and open events last through
    /// the idle time and a parked car is the same object when the camera
    /// wakes. Nothing ends or starts here.
    pub fn hold(&mut self, now: DateTime<Utc>) {
        self.tracker.hold(now);
    }

    /// Whether no event is open.
    pub fn is_idle(&self) -> bool {
        self.open.is_empty()
    }
}

/// The track's points between `from` and `to`, thinned to at most `TRACK_POINTS`.
fn track_points(t: &Track, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<TrackPoint> {
    let pts: Vec<&(DateTime<Utc>, BBox)> = t
        .history
        .iter()
        .filter(|(at, _)| *at >= from && *at <= to)
        .collect();
    let step = pts.len().div_ceil(TRACK_POINTS).max(1);
    pts.iter()
        .step_by(step)
        .map(|(at, b)| TrackPoint {
            at: *at,
            x1: b.x1,
            y1: b.y1,
            x2: b.x2,
            y2: b.y2,
        })
        .collect()
}
