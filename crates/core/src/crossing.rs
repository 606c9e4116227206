//! Counting-line crossings: every crossing is counted, per direction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::str::FromStr;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the line's left side to its right side, looking from `from` to `to`.
    Forward,
    Backward,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        }
    }
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "forward" => Ok(Direction::Forward),
            "backward" => Ok(Direction::Backward),
            other => Err(format!(
                "unknown direction `{other}` (known: forward, backward)"
            )),
        }
    }
}

/// One object crossing one line.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossing {
    pub camera_id: String,
    pub line: String,
    pub direction: Direction,
    pub label: String,
    pub at: DateTime<Utc>,
}

/// Time buckets of a crossing-count report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Minute => 60_000,
            Bucket::Hour => 3_600_000,
            Bucket::Day => 86_400_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }
}

impl FromStr for Bucket {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "minute" => Ok(Bucket::Minute),
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            other => Err(format!(
                "unknown bucket `{other}` (known: minute, hour, day)"
            )),
        }
    }
}

/// Crossings of one line in one direction during one bucket (UTC-aligned).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CrossingCount {
    pub camera_id: String,
    pub line: String,
    pub direction: Direction,
    pub bucket_start: DateTime<Utc>,
    pub count: u64,
}
