//! Events: what the monitoring centre sees, queries and is alerted about.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What kind of happening an event records. Detection events are `object`;
/// rules and camera health add their own kinds later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An object of a watched label appeared in the picture.
    Object,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Object => "object",
        }
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "object" => Ok(EventKind::Object),
            other => Err(format!("unknown event kind `{other}` (known: object)")),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of an event: `active` while the object is in view, `ended` after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Active,
    Ended,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Active => "active",
            EventStatus::Ended => "ended",
        }
    }
}

impl FromStr for EventStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(EventStatus::Active),
            "ended" => Ok(EventStatus::Ended),
            other => Err(format!(
                "unknown event status `{other}` (known: active, ended)"
            )),
        }
    }
}

/// A box of an event, in pixels of the event's frame (`frame_width x frame_height`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoxRecord {
    pub label: String,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// An event as analytics creates it, before the store gives it an id.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub camera_id: String,
    pub village: Option<String>,
    pub grid: Option<String>,
    pub kind: EventKind,
    pub label: String,
    pub score: f32,
    pub started_at: DateTime<Utc>,
    pub frame_width: u32,
    pub frame_height: u32,
    pub boxes: Vec<BoxRecord>,
    /// JPEG of the frame the event started on.
    pub snapshot: Option<Vec<u8>>,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub camera_id: String,
    pub village: Option<String>,
    pub grid: Option<String>,
    pub kind: EventKind,
    pub label: String,
    pub score: f32,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: EventStatus,
    pub frame_width: u32,
    pub frame_height: u32,
    pub boxes: Vec<BoxRecord>,
    pub has_snapshot: bool,
}

/// Filters and page of an event listing. Newest first; `before_id` is the cursor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    pub camera_id: Option<String>,
    pub village: Option<String>,
    pub kind: Option<EventKind>,
    pub label: Option<String>,
    pub status: Option<EventStatus>,
    /// Events that started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events that started before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events with an id below this (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}
