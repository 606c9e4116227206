//! Event counts over a range, for the centre's charts and the county's reports.

use crate::crossing::Bucket;
use crate::event::EventQuery;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::str::FromStr;
use utoipa::ToSchema;

/// A dimension events are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsKey {
    Kind,
    Village,
    Camera,
}

impl StatsKey {
    /// The events column it groups by.
    pub fn column(self) -> &'static str {
        match self {
            StatsKey::Kind => "kind",
            StatsKey::Village => "village",
            StatsKey::Camera => "camera_id",
        }
    }
}

impl FromStr for StatsKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kind" => Ok(StatsKey::Kind),
            "village" => Ok(StatsKey::Village),
            "camera" => Ok(StatsKey::Camera),
            other => Err(format!(
                "unknown group `{other}` (known: kind, village, camera)"
            )),
        }
    }
}

/// What to count: the events a query selects (its page fields are ignored),
/// grouped by some keys and optionally by time bucket.
#[derive(Clone, Debug)]
pub struct StatsQuery {
    pub events: EventQuery,
    pub group_by: Vec<StatsKey>,
    pub bucket: Option<Bucket>,
    /// Buckets start at midnight (or the hour) of this offset from UTC, in
    /// seconds: +08:00 for Beijing time.
    pub utc_offset_s: i32,
}

/// One count. Keys not grouped by are absent.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct StatsRow {
    /// The bucket's start; only with `bucket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<DateTime<Utc>>,
    /// Only when grouped by kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::EventKind>)]
    pub kind: Option<String>,
    /// The village; `null` for cameras without one when grouping by village.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub village: Option<Option<String>>,
    /// Only when grouped by camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    pub count: u64,
}
