//! `[detection]` and a camera's `detection` table: rate, labels, score
//! thresholds, event cooldown, and the time zone of schedules.

use crate::camera_error::CameraError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Detection settings: the `[detection]` defaults, overridden per camera by
/// `[cameras.detection]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSettings {
    /// Detections per second to run on this camera (independent of its frame rate).
    pub fps: f64,
    /// Follow need: `fps` while objects appear, are uncertain or move near a
    /// zone edge or counting line; `min_fps` while every tracked object is
    /// stable and far from them and nothing else moves. False: `fps` always.
    pub adaptive: bool,
    /// Detections per second while the analytics need only the reduced rate
    /// (at most `fps`).
    pub min_fps: f64,
    /// Labels that make events.
    pub labels: Vec<String>,
    /// Minimum score for labels without their own threshold.
    pub min_score: f32,
    /// Per-label minimum scores.
    pub thresholds: BTreeMap<String, f32>,
    /// Seconds after an event of a label starts on a camera before another
    /// event of the same label may start there.
    pub cooldown_s: f64,
    /// Seconds an object may go unseen before its appearance (and event) ends.
    pub lost_after_s: f64,
    /// Time zone of zone schedules (IANA name).
    pub timezone: String,
    /// Region detection: besides the whole frame, the model looks at up to
    /// this many crops of each detected frame at (nearly) their own
    /// resolution, around what moved and around the zones and lines, and
    /// finds people too small in the whole frame. Each costs one more
    /// inference. 0: the whole frame only.
    pub regions: usize,
}

/// The most regions a camera may ask for per frame.
pub const MAX_REGIONS: usize = 16;

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings {
            fps: 5.0,
            adaptive: true,
            min_fps: 1.0,
            labels: vec![
                "person".into(),
                "car".into(),
                "motorcycle".into(),
                "bicycle".into(),
                "truck".into(),
                "bus".into(),
            ],
            min_score: 0.5,
            thresholds: BTreeMap::new(),
            cooldown_s: 30.0,
            lost_after_s: 3.0,
            timezone: "Asia/Shanghai".into(),
            regions: 0,
        }
    }
}

impl DetectionSettings {
    /// Detections per second while only the reduced rate is needed: `fps`
    /// when not adaptive, never more than `fps`, and at least two per
    /// `lost_after_s` (an object missed once by the model at the reduced rate
    /// must not be lost before it is looked for again at the full rate).
    pub fn reduced_fps(&self) -> f64 {
        if self.adaptive {
            self.min_fps.max(2.0 / self.lost_after_s).min(self.fps)
        } else {
            self.fps
        }
    }

    /// The time zone of schedules (Asia/Shanghai when the name is unknown,
    /// which validation refuses).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// The minimum score for a label, or `None` when the label makes no events.
    pub fn threshold(&self, label: &str) -> Option<f32> {
        if !self.labels.iter().any(|l| l == label) {
            return None;
        }
        Some(
            self.thresholds
                .get(label)
                .copied()
                .unwrap_or(self.min_score),
        )
    }

    /// The lowest threshold of any watched label: detections below it are noise.
    pub fn floor(&self) -> f32 {
        self.labels
            .iter()
            .filter_map(|l| self.threshold(l))
            .fold(f32::INFINITY, f32::min)
    }

    /// Checks the values; the error names the field inside the table.
    pub(super) fn validate(&self) -> Result<(), CameraError> {
        if !(self.fps > 0.0 && self.fps <= 60.0) {
            return Err(CameraError::new(
                "fps",
                format!("field `fps`: must be in (0, 60], got {}", self.fps),
            ));
        }
        if !(self.min_fps > 0.0 && self.min_fps <= 60.0) {
            return Err(CameraError::new(
                "min_fps",
                format!("field `min_fps`: must be in (0, 60], got {}", self.min_fps),
            ));
        }
        if self.labels.is_empty() {
            return Err(CameraError::new(
                "labels",
                "field `labels`: must name at least one label",
            ));
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(CameraError::new(
                "min_score",
                format!(
                    "field `min_score`: must be in [0, 1], got {}",
                    self.min_score
                ),
            ));
        }
        for (label, t) in &self.thresholds {
            if !(0.0..=1.0).contains(t) {
                let field = format!("thresholds.{label}");
                let message = format!("field `{field}`: must be in [0, 1], got {t}");
                return Err(CameraError::new(field, message));
            }
        }
        if !(self.cooldown_s >= 0.0 && self.cooldown_s.is_finite()) {
            return Err(CameraError::new(
                "cooldown_s",
                format!("field `cooldown_s`: must be >= 0, got {}", self.cooldown_s),
            ));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(CameraError::new(
                "timezone",
                format!(
                    "field `timezone`: unknown time zone \"{}\" (use an IANA name such as Asia/Shanghai)",
                    self.timezone
                ),
            ));
        }
        if self.regions > MAX_REGIONS {
            return Err(CameraError::new(
                "regions",
                format!(
                    "field `regions`: at most {MAX_REGIONS} regions per frame, got {}",
                    self.regions
                ),
            ));
        }
        if !(self.lost_after_s > 0.0 && self.lost_after_s.is_finite()) {
            return Err(CameraError::new(
                "lost_after_s",
                format!(
                    "field `lost_after_s`: must be > 0, got {}",
                    self.lost_after_s
                ),
            ));
        }
        Ok(())
    }
}
