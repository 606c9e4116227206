//! `[health]` and a camera's `health` table: when a camera counts as offline
//! or degraded, and the picture checks (frozen, blocked, scene changed).

use crate::camera_error::CameraError;
use serde::Deserialize;

/// Health checks of one camera: `[health]`, overridden per camera by
/// `[cameras.health]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Seconds a camera must be offline before a `camera_offline` event.
    pub offline_grace_s: f64,
    /// Seconds a problem must last before the camera is `degraded` (and
    /// seconds without it before it is `online` again).
    pub degraded_after_s: f64,
    /// Degraded when the frame rate falls below this share of the camera's
    /// usual rate.
    pub min_fps_ratio: f64,
    /// Degraded when more RTP packets than this are lost per minute.
    pub max_lost_packets_per_min: f64,
    /// Run the picture checks (frozen, blocked, scene changed).
    pub picture_checks: bool,
    /// Seconds between two pictures looked at by the picture checks.
    pub picture_interval_s: f64,
    /// Seconds of an unchanged picture before `video_frozen`.
    pub frozen_after_s: f64,
    /// Seconds of a dark or uniform picture before `video_blocked`.
    pub blocked_after_s: f64,
    /// A picture whose mean brightness (0-255) is below this and whose contrast
    /// is below `blocked_max_contrast` is dark: lens covered or no light.
    pub blocked_max_brightness: f64,
    /// A picture whose contrast (standard deviation of brightness over a coarse
    /// grid, 0-255) is below this is uniform: covered, or facing a wall.
    pub blocked_max_contrast: f64,
    /// Seconds the view must differ from the usual one before `scene_changed`.
    pub scene_change_after_s: f64,
    /// The view differs when its correlation with the usual view (coarse grid,
    /// brightness-normalised) falls below this (-1..1).
    pub scene_change_min_correlation: f64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            offline_grace_s: 60.0,
            degraded_after_s: 10.0,
            min_fps_ratio: 0.5,
            max_lost_packets_per_min: 30.0,
            picture_checks: true,
            picture_interval_s: 2.0,
            frozen_after_s: 30.0,
            blocked_after_s: 20.0,
            blocked_max_brightness: 30.0,
            blocked_max_contrast: 6.0,
            scene_change_after_s: 20.0,
            scene_change_min_correlation: 0.5,
        }
    }
}

impl HealthSettings {
    /// Checks the values; the error names the field inside the table.
    pub(super) fn validate(&self) -> Result<(), CameraError> {
        let positive = [
            ("offline_grace_s", self.offline_grace_s),
            ("degraded_after_s", self.degraded_after_s),
            ("picture_interval_s", self.picture_interval_s),
            ("frozen_after_s", self.frozen_after_s),
            ("blocked_after_s", self.blocked_after_s),
            ("scene_change_after_s", self.scene_change_after_s),
        ];
        for (name, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(CameraError::new(
                    name,
                    format!("field `{name}`: must be > 0, got {v}"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.min_fps_ratio) {
            return Err(CameraError::new(
                "min_fps_ratio",
                format!(
                    "field `min_fps_ratio`: must be in [0, 1], got {}",
                    self.min_fps_ratio
                ),
            ));
        }
        if self.max_lost_packets_per_min.is_nan() || self.max_lost_packets_per_min < 0.0 {
            return Err(CameraError::new(
                "max_lost_packets_per_min",
                "field `max_lost_packets_per_min`: must be >= 0",
            ));
        }
        for (name, v) in [
            ("blocked_max_brightness", self.blocked_max_brightness),
            ("blocked_max_contrast", self.blocked_max_contrast),
        ] {
            if !(0.0..=255.0).contains(&v) {
                return Err(CameraError::new(
                    name,
                    format!("field `{name}`: must be in [0, 255], got {v}"),
                ));
            }
        }
        if !(-1.0..=1.0).contains(&self.scene_change_min_correlation) {
            return Err(CameraError::new(
                "scene_change_min_correlation",
                "field `scene_change_min_correlation`: must be in [-1, 1]",
            ));
        }
        Ok(())
    }
}

/// `[health]`: the per-camera defaults plus the settings that exist only once.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthDefaults {
    /// Seconds between two durable samples of every camera's state (for the
    /// online-rate reports).
    pub sample_interval_s: f64,
    #[serde(flatten)]
    pub camera: HealthSettings,
}

impl Default for HealthDefaults {
    fn default() -> Self {
        HealthDefaults {
            sample_interval_s: 60.0,
            camera: HealthSettings::default(),
        }
    }
}

impl HealthDefaults {
    pub(super) fn validate(&self) -> Result<(), CameraError> {
        if !(self.sample_interval_s >= 1.0 && self.sample_interval_s.is_finite()) {
            return Err(CameraError::new(
                "sample_interval_s",
                format!(
                    "field `sample_interval_s`: must be >= 1, got {}",
                    self.sample_interval_s
                ),
            ));
        }
        self.camera.validate()
    }
}
