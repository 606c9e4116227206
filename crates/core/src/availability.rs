//! Health samples and the online-rate (在线率) report built from them.

use crate::camera::CameraState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::str::FromStr;
use utoipa::ToSchema;

/// A camera's state over one sampling interval ending at `at`.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthSample {
    pub camera_id: String,
    pub village: Option<String>,
    pub grid: Option<String>,
    pub at: DateTime<Utc>,
    pub state: CameraState,
    pub interval_ms: i64,
}

/// How an availability report is grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AvailabilityGroup {
    Camera,
    Village,
    Grid,
    /// One row for the whole township.
    Township,
}

impl AvailabilityGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            AvailabilityGroup::Camera => "camera",
            AvailabilityGroup::Village => "village",
            AvailabilityGroup::Grid => "grid",
            AvailabilityGroup::Township => "township",
        }
    }
}

impl FromStr for AvailabilityGroup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "camera" => Ok(AvailabilityGroup::Camera),
            "village" => Ok(AvailabilityGroup::Village),
            "grid" => Ok(AvailabilityGroup::Grid),
            "township" => Ok(AvailabilityGroup::Township),
            other => Err(format!(
                "unknown grouping `{other}` (known: camera, village, grid, township)"
            )),
        }
    }
}

/// One row of an availability report.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AvailabilityRow {
    /// The camera id, village or grid (`null` for cameras without one, and
    /// for the township row).
    pub key: Option<String>,
    /// Cameras sampled in the range.
    pub cameras: u32,
    /// Seconds of camera time sampled.
    pub sampled_s: f64,
    /// Seconds of that time the cameras delivered video.
    pub online_s: f64,
    /// `online_s / sampled_s`, 0..1.
    #[schema(minimum = 0, maximum = 1)]
    pub online_rate: f64,
}
