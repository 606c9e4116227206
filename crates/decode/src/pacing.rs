//! When a camera's next frame goes to the model: at the detection rate the
//! analytics need now (see [`DetectionNeed`](xueliang_core::DetectionNeed)),
//! and at once when something moves outside the objects they track.

use crate::motion_mask::MotionMask;
use ffmpeg_next::util::frame::Video as VideoFrame;
use xueliang_core::{BBox, CameraStats, DetectionNeed};

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
    /// What the full rate alone would have shown the model (to count what
    /// the reduced rate saved).
    full_only: Pacer,
    mask: MotionMask,
    regions: Vec<BBox>,
}

impl Pacing {
    /// `full` and `reduced`: detections per second.
    pub(crate) fn new(full: f64, reduced: f64) -> Self {
        Pacing {
            full,
            reduced: reduced.min(full),
            pacer: Pacer::default(),
            full_only: Pacer::default(),
            mask: MotionMask::default(),
            regions: Vec::new(),
        }
    }

    fn adaptive(&self) -> bool {
        self.reduced < self.full
    }

    /// Whether `picture` (at stream time `t`) goes to the model. Under a
    /// reduced need, a picture that is not due at the reduced rate is still
    /// due (at the full rate) when something moved outside the tracked
    /// objects' regions since the last detection; a picture the mask cannot
    /// read (in device memory, not 8-bit) counts as such.
    pub(crate) fn due(&mut self, picture: &VideoFrame, t: f64, stats: &CameraStats) -> bool {
        let full_interval = 1.0 / self.full;
        let would = self.full_only.due(t, full_interval);
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
        if would {
            CameraStats::add(&stats.frames_reduced, 1);
        }
        false
    }

    /// `picture` went to the model: later pictures are compared with it.
    pub(crate) fn detected(&mut self, picture: &VideoFrame) {
        if self.adaptive() {
            self.mask.reference(picture);
        }
    }

    /// Motion onset or a new session: the next picture is due at once, and
    /// compared with nothing older.
    pub(crate) fn restart(&mut self) {
        self.pacer.restart();
        self.full_only.restart();
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
