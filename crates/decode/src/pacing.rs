//! When a camera's next frame goes to the model: at the detection rate the
//! analytics need now (see [`DetectionNeed`](xueliang_core::DetectionNeed)),
//! and at once when something moves outside the objects they track.

use crate::motion_mask::MotionMask;
use ffmpeg_next::util::frame::Video as VideoFrame;
use xueliang_core::regions::{Region, RegionLooks, RegionPlanner};
use xueliang_core::{BBox, CameraStats, DetectionNeed, InputGeometry};

/// The detection times of one camera, in stream time.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    /// When the last frame was due (its slot, not its own time: the rate
    /// does not drift with the frame times).
    last_due: Option<f64>,
}

impl Pacer {
    /// Whether the frame at `t` is due at one detection per `interval`
    /// seconds; the due time moves on when it is.
    pub(crate) fn due(&mut self, t: f64, interval: f64) -> bool {
        let Some(last) = self.last_due else {
            self.last_due = Some(t);
            return true;
        };
        let due = last + interval;
        // A millisecond of slack absorbs rounding of 90 kHz timestamps.
        if t + 1e-3 < due {
            return false;
        }
        // Late by a whole interval or more (a gap in the stream, a switch
        // from a longer interval): start again from this frame.
        self.last_due = Some(if t - due >= interval { t } else { due });
        true
    }

    /// The next frame is due whatever its time (motion onset).
    pub(crate) fn restart(&mut self) {
        self.last_due = None;
    }
}

/// One camera's pacing: the rates, the pacer, and what a reduced rate
/// watches for.
pub(crate) struct Pacing {
    full: f64,
    reduced: f64,
    pacer: Pacer,
    /// The next full-rate beat after the last detection: a picture at or
    /// after it that the reduced rate does not show the model is one saved
    /// (counted once per beat, so that detections plus saved pictures are
    /// what the full rate would have shown).
    next_beat: Option<f64>,
    mask: MotionMask,
    regions: Vec<BBox>,
    /// Region detection's settings, and what moved between the last two
    /// pictures the model saw (its regions go around it).
    looks: RegionLooks,
    moving: Vec<BBox>,
}

impl Pacing {
    /// `full` and `reduced`: detections per second.
    pub(crate) fn new(full: f64, reduced: f64, looks: RegionLooks) -> Self {
        Pacing {
            full,
            reduced: reduced.min(full),
            pacer: Pacer::default(),
            next_beat: None,
            mask: MotionMask::default(),
            regions: Vec::new(),
            looks,
            moving: Vec::new(),
        }
    }

    fn adaptive(&self) -> bool {
        self.reduced < self.full
    }

    /// Whether `picture` (at stream time `t`) goes to the model. Under a
    /// reduced need, a picture that is not due at the reduced rate is still
    /// due (at the full rate) when something moved outside the tracked
    /// objects' regions since the last detection; a picture the mask cannot
    /// read (in device memory, not 8-bit) counts as such. A picture that is
    /// due becomes the one later pictures are compared with.
    pub(crate) fn due(&mut self, picture: &VideoFrame, t: f64, stats: &CameraStats) -> bool {
        let due = self.decide(picture, t, stats);
        if due {
            self.next_beat = Some(t + 1.0 / self.full);
            if self.looks.max > 0 {
                self.moving = self.mask.moving_boxes(picture);
            }
            if self.adaptive() || self.looks.max > 0 {
                self.mask.reference(picture);
            }
        }
        due
    }

    /// The regions for the picture just found due (`width x height`), for
    /// a model of `geometry`'s size: around what moved since the picture
    /// before it, then around the zones and lines.
    pub(crate) fn regions(&self, width: u32, height: u32, geometry: InputGeometry) -> Vec<Region> {
        if self.looks.max == 0 {
            return Vec::new();
        }
        let planner = RegionPlanner {
            frame_w: width,
            frame_h: height,
            model_w: geometry.width,
            model_h: geometry.height,
            max: self.looks.max,
        };
        planner.plan(&self.moving, &self.looks.rules_in(width, height))
    }

    fn decide(&mut self, picture: &VideoFrame, t: f64, stats: &CameraStats) -> bool {
        let full_interval = 1.0 / self.full;
        if !self.adaptive() || stats.need.need() != DetectionNeed::Reduced {
            return self.pacer.due(t, full_interval);
        }
        // The objects' own rate, never under min_fps nor over the full rate.
        let reduced = stats.need.reduced_fps().clamp(self.reduced, self.full);
        if self.pacer.due(t, 1.0 / reduced) {
            return true;
        }
        stats.need.regions_into(&mut self.regions);
        let moved = self.mask.moved_outside(picture, &self.regions);
        if moved && self.pacer.due(t, full_interval) {
            CameraStats::add(&stats.frames_woken_by_motion, 1);
            return true;
        }
        if let Some(beat) = self.next_beat.filter(|beat| t + 1e-3 >= *beat) {
            CameraStats::add(&stats.frames_reduced, 1);
            let next = beat + full_interval;
            self.next_beat = Some(if next <= t { t + full_interval } else { next });
        }
        false
    }

    /// Motion onset or a new session: the next picture is due at once, and
    /// compared with nothing older.
    pub(crate) fn restart(&mut self) {
        self.pacer.restart();
        self.next_beat = None;
        self.mask.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of `times` that are due at `interval`.
    fn due_times(p: &mut Pacer, times: impl Iterator<Item = f64>, interval: f64) -> Vec<f64> {
        times.filter(|t| p.due(*t, interval)).collect()
    }

    /// A still grey picture (nothing moves).
    fn grey() -> VideoFrame {
        let mut f = VideoFrame::new(ffmpeg_next::format::Pixel::YUV420P, 64, 48);
        f.data_mut(0).fill(100);
        f
    }

    #[test]
    fn a_reduced_need_detects_at_its_rate_and_counts_what_it_saved() {
        let stats = CameraStats::default();
        let mut p = Pacing::new(5.0, 1.0, RegionLooks::default());
        let picture = grey();
        let mut detected = 0;
        // 10 s at 10 fps: full rate first (2 s), then reduced at 1 a second.
        for i in 0..100 {
            if i == 20 {
                stats.need.set(DetectionNeed::Reduced, 1.0, Vec::new);
            }
            let t = i as f64 / 10.0;
            if p.due(&picture, t, &stats) {
                detected += 1;
            }
        }
        let saved = CameraStats::get(&stats.frames_reduced);
        assert_eq!(detected, 10 + 8, "2 s at 5/s, then 8 s at 1/s");
        assert_eq!(detected + saved, 50, "what the full rate would have shown");
        assert_eq!(CameraStats::get(&stats.frames_woken_by_motion), 0);
        // The objects' own rate (2.5 a second) over min_fps.
        stats.need.set(DetectionNeed::Reduced, 2.5, Vec::new);
        let n = (100..200)
            .filter(|i| p.due(&picture, *i as f64 / 10.0, &stats))
            .count();
        assert_eq!(n, 25);
    }

    #[test]
    fn the_rate_holds_whatever_the_frame_rate() {
        // 15 fps at 4 detections a second: 4 a second, not 3.75.
        let mut p = Pacer::default();
        let due = due_times(&mut p, (0..150).map(|i| i as f64 / 15.0), 0.25);
        assert_eq!(due.len(), 40, "{due:?}");
        // 10 fps at 5 a second: every other frame.
        let mut p = Pacer::default();
        let due = due_times(&mut p, (0..100).map(|i| i as f64 / 10.0), 0.2);
        assert_eq!(due.len(), 50);
    }

    #[test]
    fn switching_rates_takes_effect_from_the_last_detection() {
        let mut p = Pacer::default();
        let frames = |from: i32, to: i32| (from..to).map(|i| i as f64 / 10.0);
        // Reduced (1 a second) for 3 s, then full (5 a second): the first
        // full-rate detection comes 0.2 s after the last reduced one, not a
        // second later.
        assert_eq!(due_times(&mut p, frames(0, 30), 1.0), vec![0.0, 1.0, 2.0]);
        let due = due_times(&mut p, frames(21, 30), 0.2);
        assert_eq!(due.first().copied(), Some(2.2));
        assert_eq!(due.len(), 4);
        // After a gap in the stream, the rate starts again from the frame.
        assert!(p.due(10.05, 0.2));
        assert!(!p.due(10.15, 0.2));
        assert!(p.due(10.25, 0.2));
    }
}
