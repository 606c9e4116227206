//! How often a camera's frames need the model, judged from the tracker's
//! state and the rules' geometry (see [`DetectionNeed`]).
//!
//! - **Full** while an object appears (a track not yet confirmed), a track is
//!   uncertain (not matched in the latest detection), or an object is near a
//!   zone edge or a counting line (near enough to reach it before the next
//!   reduced-rate detection, at its speed), or moves so fast that the tracker
//!   could lose it between reduced-rate detections.
//! - **Reduced** while every object that keeps the camera busy is confirmed,
//!   seen, and far from the geometry. The decoder then shows the model a
//!   frame at the reduced rate, or at once when something moves outside the
//!   regions published here (each object's box widened to where it may go
//!   before the next detection).
//! - **Nothing** when no object keeps the camera busy: motion decides, as
//!   without tracks.
//!
//! Between detections the tracker predicts each object at its speed, so the
//! rules see the same ids at the next detection.

use crate::geometry::distance_to_segment;
use crate::rules::foot;
use crate::tracker::Track;
use chrono::{DateTime, Duration, Utc};
use xueliang_core::config::CameraConfig;
use xueliang_core::zones::Point;
use xueliang_core::{BBox, DetectionNeed};

/// An object whose feet are within this share of the frame of a zone edge or
/// a line needs the full rate whatever its speed (a person standing at the
/// fence may step over it)...
const NEAR: f64 = 0.04;
/// ...and a moving one within this many times the distance it covers before
/// the next reduced-rate detection, on top.
const REACH: f64 = 1.5;
/// An object may move this share of its box's size between two detections
/// (its reduced rate rises with its speed; at the full rate, it is fast):
/// the tracker matches a prediction to the next detection by overlap, and a
/// long stride on a wrong speed would lose it.
const MAX_STRIDE: f32 = 1.5;
/// A track matched this many times is established: looked for at the full
/// rate before it would end unseen.
const ESTABLISHED_HITS: u32 = 5;
/// An established track about to end unseen is looked for with this many
/// full-rate detections; after that it is taken to be gone (it still ends
/// only after `lost_after_s`, and any detection of it brings it back).
const LOOKS: f64 = 2.0;
/// Each object's region is its box and its predicted box, widened by this
/// share of the box's size on each side (arms, a turn, a speed change).
const REGION_MARGIN: f32 = 0.25;

/// Why the need is what it is (the first reason found; for the recall bench
/// and the logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeedReason {
    /// No object keeps the camera busy.
    NothingTracked,
    /// A track not confirmed yet was matched in the latest detection.
    Appearing,
    /// Not adaptive: any busy track needs the full rate.
    NotAdaptive,
    /// A confirmed track still in the picture was not matched for so long
    /// that it would end before the next reduced-rate detection.
    Unseen,
    /// A track moves too fast to follow at the reduced rate.
    Fast,
    /// A track is near a zone edge or a counting line.
    NearGeometry,
    /// Every track settled: the reduced rate.
    Settled,
}

impl NeedReason {
    pub fn need(self) -> DetectionNeed {
        match self {
            NeedReason::NothingTracked => DetectionNeed::Nothing,
            NeedReason::Settled => DetectionNeed::Reduced,
            _ => DetectionNeed::Full,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NeedReason::NothingTracked => "nothing tracked",
            NeedReason::Appearing => "appearing",
            NeedReason::NotAdaptive => "not adaptive",
            NeedReason::Unseen => "unseen",
            NeedReason::Fast => "fast",
            NeedReason::NearGeometry => "near geometry",
            NeedReason::Settled => "settled",
        }
    }
}

/// The judge of one camera's need: its rule geometry and rates.
pub(crate) struct NeedJudge {
    /// Zone edges (of zones with rules) and counting lines, normalised.
    segments: Vec<(Point, Point)>,
    adaptive: bool,
    /// Detections per second: the full rate, and the lowest reduced one.
    full_fps: f64,
    min_fps: f64,
    /// A track not matched for this long ends.
    lost_after: Duration,
}

/// The need after a detection: why, and with a reduced need its rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    pub reason: NeedReason,
    /// Detections per second the settled objects need (`min_fps` or more:
    /// a walker needs one before it has moved [`MAX_STRIDE`] box sizes).
    pub fps: f64,
}

impl NeedJudge {
    pub(crate) fn new(camera: &CameraConfig) -> Self {
        let mut segments = Vec::new();
        for zone in camera.rules.zones.iter().filter(|z| !z.rules.is_empty()) {
            let p = &zone.polygon;
            for (i, a) in p.iter().enumerate() {
                segments.push((*a, p[(i + 1) % p.len()]));
            }
        }
        segments.extend(camera.rules.lines.iter().map(|l| (l.from, l.to)));
        let d = &camera.detection;
        NeedJudge {
            segments,
            adaptive: d.adaptive,
            full_fps: d.fps,
            min_fps: d.reduced_fps(),
            lost_after: Duration::milliseconds((1000.0 * d.lost_after_s) as i64),
        }
    }

    /// The need after a detection at `now`. `busy(t)`: whether the track
    /// keeps the camera busy at all (see `CameraAnalytics::keeps_busy`).
    pub(crate) fn need(
        &self,
        tracks: &[Track],
        busy: impl Fn(&Track) -> bool,
        now: DateTime<Utc>,
        w: u32,
        h: u32,
    ) -> Judged {
        let full = |reason| Judged {
            reason,
            fps: self.full_fps,
        };
        let mut settled = Vec::new();
        for t in tracks {
            if !t.confirmed() {
                if t.seen_now {
                    // Something appeared: confirm it (or see it go) at the
                    // full rate.
                    return full(NeedReason::Appearing);
                }
                // Seen once and not since: most likely a false detection
                // (it ends within a second); a real object is found again
                // at the next detection.
                continue;
            }
            if !busy(t) {
                continue;
            }
            if !self.adaptive {
                return full(NeedReason::NotAdaptive);
            }
            settled.push(t);
        }
        if settled.is_empty() {
            return Judged {
                reason: NeedReason::NothingTracked,
                fps: self.full_fps,
            };
        }
        // The rate the fastest object needs, then whether any object comes
        // near the geometry before the next detection at that rate.
        let fps = settled
            .iter()
            .map(|t| needed_fps(t))
            .fold(self.min_fps, f64::max);
        if fps >= self.full_fps {
            return full(NeedReason::Fast);
        }
        let horizon = 1.0 / fps;
        if settled
            .iter()
            .any(|t| self.about_to_be_lost(t, now, horizon, w, h))
        {
            return full(NeedReason::Unseen);
        }
        if settled.iter().any(|t| self.near(t, horizon, w, h)) {
            return full(NeedReason::NearGeometry);
        }
        Judged {
            reason: NeedReason::Settled,
            fps,
        }
    }

    /// Whether an established track that is unseen would end before the
    /// next detection in `horizon` seconds while it should still be in the
    /// picture: the model must look for it at the full rate now, or its
    /// object comes back as a new one. (The model misses a walker in one
    /// detection in a few, a track lasts `lost_after_s` after its object
    /// left the picture, and a false detection seen twice is confirmed:
    /// none of these alone is a reason for the full rate.)
    fn about_to_be_lost(
        &self,
        t: &Track,
        now: DateTime<Utc>,
        horizon: f64,
        w: u32,
        h: u32,
    ) -> bool {
        let unseen = now - t.last_seen;
        let looks_from = self.lost_after - seconds(horizon);
        if t.seen_now
            || t.hits < ESTABLISHED_HITS
            || unseen <= looks_from
            || unseen > looks_from + seconds(LOOKS / self.full_fps)
        {
            return false;
        }
        let at = t.predicted(now);
        let (cx, cy) = ((at.x1 + at.x2) / 2.0, (at.y1 + at.y2) / 2.0);
        (0.0..w as f32).contains(&cx) && (0.0..h as f32).contains(&cy)
    }

    /// Whether the track's feet are within reach of a zone edge or a line:
    /// [`NEAR`], plus [`REACH`] times how far it goes in `horizon` seconds.
    fn near(&self, t: &Track, horizon: f64, w: u32, h: u32) -> bool {
        let ahead = t.predicted(t.last_seen + seconds(horizon));
        let (now, then) = (foot(&t.bbox, w, h), foot(&ahead, w, h));
        let travel = ((then[0] - now[0]).powi(2) + (then[1] - now[1]).powi(2)).sqrt();
        let reach = NEAR + REACH * travel;
        self.segments
            .iter()
            .any(|(a, b)| distance_to_segment(now, *a, *b) < reach)
    }

    /// Where each tracked object may be until the next detection at `fps`
    /// after `now`, in frame pixels: motion there is explained.
    pub(crate) fn regions(&self, tracks: &[Track], now: DateTime<Utc>, fps: f64) -> Vec<BBox> {
        tracks
            .iter()
            .map(|t| {
                let ahead = t.predicted(now + seconds(1.0 / fps));
                let b = &t.bbox;
                let (mx, my) = (REGION_MARGIN * b.width(), REGION_MARGIN * b.height());
                BBox::new(
                    b.x1.min(ahead.x1) - mx,
                    b.y1.min(ahead.y1) - my,
                    b.x2.max(ahead.x2) + mx,
                    b.y2.max(ahead.y2) + my,
                )
            })
            .collect()
    }
}

/// Detections per second a track needs so that it moves at most
/// [`MAX_STRIDE`] of its box's size between two (its speed from the tracker).
fn needed_fps(t: &Track) -> f64 {
    let ahead = t.predicted(t.last_seen + Duration::seconds(1));
    let centre = |b: &BBox| ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let ((x0, y0), (x1, y1)) = (centre(&t.bbox), centre(&ahead));
    let across = (x1 - x0).abs() / (MAX_STRIDE * t.bbox.width().max(1.0));
    let down = (y1 - y0).abs() / (MAX_STRIDE * t.bbox.height().max(1.0));
    across.max(down) as f64
}

fn seconds(s: f64) -> Duration {
    Duration::microseconds((s * 1e6) as i64)
}
