//! Events: what the monitoring centre sees, queries and is alerted about.

use crate::{BBox, DecodedFrame};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// What kind of happening an event records. Detection events are `object`;
/// rules and camera health add their own kinds later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An object of a watched label appeared in the picture.
    Object,
    /// The camera has delivered no video for longer than its grace period.
    CameraOffline,
    /// The camera delivers video again after a `camera_offline` event.
    CameraRecovered,
    /// The picture has not changed at all for a while.
    VideoFrozen,
    /// The picture is black or uniform (lens covered, no light).
    VideoBlocked,
    /// The view changed: the camera was turned or moved.
    SceneChanged,
    /// An object entered a zone while its schedule was active.
    Intrusion,
    /// An object stayed in a zone longer than allowed.
    Loitering,
    /// Too many people in a zone for too long.
    Crowd,
    /// An object crossed a counting line (in a direction that makes events).
    LineCrossing,
    /// A vehicle stood still in a zone longer than allowed (e.g. a fire lane).
    VehicleDwell,
    /// The store could not write for a while because the disk was full;
    /// recorded (already ended) once writes succeed again. Not about a camera:
    /// its `camera_id` is empty and its label is [`STORE_LABEL`].
    StoreFull,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Object,
        EventKind::CameraOffline,
        EventKind::CameraRecovered,
        EventKind::VideoFrozen,
        EventKind::VideoBlocked,
        EventKind::SceneChanged,
        EventKind::Intrusion,
        EventKind::Loitering,
        EventKind::Crowd,
        EventKind::LineCrossing,
        EventKind::VehicleDwell,
        EventKind::StoreFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Object => "object",
            EventKind::CameraOffline => "camera_offline",
            EventKind::CameraRecovered => "camera_recovered",
            EventKind::VideoFrozen => "video_frozen",
            EventKind::VideoBlocked => "video_blocked",
            EventKind::SceneChanged => "scene_changed",
            EventKind::Intrusion => "intrusion",
            EventKind::Loitering => "loitering",
            EventKind::Crowd => "crowd",
            EventKind::LineCrossing => "line_crossing",
            EventKind::VehicleDwell => "vehicle_dwell",
            EventKind::StoreFull => "store_full",
        }
    }

    /// Whether the event is about the camera itself rather than what it sees.
    pub fn is_health(self) -> bool {
        matches!(
            self,
            EventKind::CameraOffline
                | EventKind::CameraRecovered
                | EventKind::VideoFrozen
                | EventKind::VideoBlocked
                | EventKind::SceneChanged
        )
    }
}

/// The label of camera-health events (they have no detected object).
pub const HEALTH_LABEL: &str = "camera";

/// The label of `store_full` events (about the service's own store).
pub const STORE_LABEL: &str = "store";

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown event kind `{s}` (known: {})", known.join(", "))
            })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of an event: `active` while the object is in view, `ended` after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BoxRecord {
    pub label: String,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// An event's picture before it is a JPEG: a copy of the frame's planes
/// (no model input) and the boxes to draw in. Analytics hands these on in
/// its [`EventUpdate<Picture>`]s, and the shard's store writer encodes them
/// on the blocking pool, so that encoding never holds up the tracking of the
/// other cameras on the same analytics thread.
#[derive(Clone, Debug)]
pub struct Picture {
    pub frame: DecodedFrame,
    pub boxes: Vec<BBox>,
}

impl Picture {
    /// The picture of `frame` with `boxes`; the planes are copied.
    pub fn of(frame: &DecodedFrame, boxes: Vec<BBox>) -> Picture {
        Picture {
            frame: DecodedFrame {
                camera: frame.camera.clone(),
                width: frame.width,
                height: frame.height,
                y: frame.y.clone(),
                u: frame.u.clone(),
                v: frame.v.clone(),
                full_range: frame.full_range,
                stream_time: frame.stream_time,
                received_at: frame.received_at,
                model_input: None,
                regions: Vec::new(),
            },
            boxes,
        }
    }
}

/// An event as analytics creates it, before the store gives it an id. `S`
/// is its snapshot: a JPEG (what the store takes), or a [`Picture`] still
/// to be encoded.
#[derive(Clone, Debug)]
pub struct NewEvent<S = Vec<u8>> {
    pub camera_id: String,
    pub village: Option<String>,
    pub grid: Option<String>,
    pub kind: EventKind,
    pub label: String,
    pub score: f32,
    pub started_at: DateTime<Utc>,
    /// Set for events that are over when they are recorded (e.g. `camera_recovered`).
    pub ended_at: Option<DateTime<Utc>>,
    /// What happened, in words, for events that need it (health events).
    pub detail: Option<String>,
    /// The zone (or counting line) and rule that made the event.
    pub zone: Option<String>,
    pub rule: Option<String>,
    /// The tracker's id of the object, stable while it is tracked.
    pub object_id: Option<u64>,
    pub frame_width: u32,
    pub frame_height: u32,
    pub boxes: Vec<BoxRecord>,
    /// The frame the event started on (a JPEG once stored).
    pub snapshot: Option<S>,
}

impl<S> NewEvent<S> {
    /// The same event with its snapshot (if any) turned into another form
    /// by `convert` (`None`: the snapshot is left out).
    pub fn map_snapshot<T>(self, convert: impl FnOnce(S) -> Option<T>) -> NewEvent<T> {
        NewEvent {
            camera_id: self.camera_id,
            village: self.village,
            grid: self.grid,
            kind: self.kind,
            label: self.label,
            score: self.score,
            started_at: self.started_at,
            ended_at: self.ended_at,
            detail: self.detail,
            zone: self.zone,
            rule: self.rule,
            object_id: self.object_id,
            frame_width: self.frame_width,
            frame_height: self.frame_height,
            boxes: self.boxes,
            snapshot: self.snapshot.and_then(convert),
        }
    }
}

impl<S> Default for NewEvent<S> {
    fn default() -> Self {
        NewEvent {
            camera_id: String::new(),
            village: None,
            grid: None,
            kind: EventKind::Object,
            label: String::new(),
            score: 0.0,
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            ended_at: None,
            detail: None,
            zone: None,
            rule: None,
            object_id: None,
            frame_width: 0,
            frame_height: 0,
            boxes: Vec::new(),
            snapshot: None,
        }
    }
}

/// A point of an object's track: when, and its box in frame pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrackPoint {
    pub at: DateTime<Utc>,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl NewEvent {
    /// A `store_full` event: writes failed for a full disk from `since`
    /// until `until`; recorded ended. It names no camera.
    pub fn store_full(since: DateTime<Utc>, until: DateTime<Utc>, detail: String) -> Self {
        NewEvent {
            kind: EventKind::StoreFull,
            label: STORE_LABEL.into(),
            score: 1.0,
            started_at: since,
            ended_at: Some(until),
            detail: Some(detail),
            ..Default::default()
        }
    }

    /// A camera-health event without picture.
    pub fn health(
        camera: &crate::config::CameraConfig,
        kind: EventKind,
        started_at: DateTime<Utc>,
        detail: String,
    ) -> Self {
        NewEvent {
            camera_id: camera.id.clone(),
            village: camera.village.clone(),
            grid: camera.grid.clone(),
            kind,
            label: HEALTH_LABEL.to_owned(),
            score: 1.0,
            started_at,
            detail: Some(detail),
            ..NewEvent::default()
        }
    }
}

/// What a stage that makes events asks the store to do. `key` names an event
/// within its producer (a camera's analytics or health checks) until the store
/// has given it an id.
/// `S` is the snapshot's form, as in [`NewEvent`].
#[derive(Debug)]
pub enum EventUpdate<S = Vec<u8>> {
    Started {
        key: u64,
        event: NewEvent<S>,
    },
    /// A better picture of the event's object: replaces score, boxes and snapshot.
    Improved {
        key: u64,
        score: f32,
        boxes: Vec<BoxRecord>,
        snapshot: Option<S>,
    },
    Ended {
        key: u64,
        ended_at: DateTime<Utc>,
        /// Best score and boxes seen during the event (object events).
        score: f32,
        boxes: Vec<BoxRecord>,
        /// The object's track while the event lasted (bounded), if tracked.
        track: Vec<TrackPoint>,
    },
    /// An object crossed a counting line (counted whether or not it makes an event).
    Crossed(crate::crossing::Crossing),
}

impl<S> EventUpdate<S> {
    /// The same update with its snapshot (if any) turned into another form
    /// by `convert` (`None`: the snapshot is left out).
    pub fn map_snapshot<T>(self, convert: impl FnOnce(S) -> Option<T>) -> EventUpdate<T> {
        match self {
            EventUpdate::Started { key, event } => EventUpdate::Started {
                key,
                event: event.map_snapshot(convert),
            },
            EventUpdate::Improved {
                key,
                score,
                boxes,
                snapshot,
            } => EventUpdate::Improved {
                key,
                score,
                boxes,
                snapshot: snapshot.and_then(convert),
            },
            EventUpdate::Ended {
                key,
                ended_at,
                score,
                boxes,
                track,
            } => EventUpdate::Ended {
                key,
                ended_at,
                score,
                boxes,
                track,
            },
            EventUpdate::Crossed(c) => EventUpdate::Crossed(c),
        }
    }

    /// The snapshot this update carries, if any.
    pub fn snapshot(&self) -> Option<&S> {
        match self {
            EventUpdate::Started { event, .. } => event.snapshot.as_ref(),
            EventUpdate::Improved { snapshot, .. } => snapshot.as_ref(),
            EventUpdate::Ended { .. } | EventUpdate::Crossed(_) => None,
        }
    }
}

/// A change to a stored event, announced to live subscribers (the SSE feed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventChange {
    pub id: i64,
    pub change: ChangeKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Started,
    Improved,
    Ended,
    /// An operator changed its workflow (acknowledged, assigned, ...), or
    /// its clip was written.
    Updated,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Started => "started",
            ChangeKind::Improved => "improved",
            ChangeKind::Ended => "ended",
            ChangeKind::Updated => "updated",
        }
    }
}

/// The text of [`ChangeKind::as_str`] (other nodes' changes arrive as text).
impl FromStr for ChangeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "started" => Ok(ChangeKind::Started),
            "improved" => Ok(ChangeKind::Improved),
            "ended" => Ok(ChangeKind::Ended),
            "updated" => Ok(ChangeKind::Updated),
            other => Err(format!(
                "unknown event change `{other}` (known: started, improved, ended, updated)"
            )),
        }
    }
}

impl EventUpdate {
    /// Ends an event that has no score, boxes or track of its own (health events).
    pub fn end(key: u64, ended_at: DateTime<Utc>) -> Self {
        EventUpdate::Ended {
            key,
            ended_at,
            score: 1.0,
            boxes: Vec::new(),
            track: Vec::new(),
        }
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
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
    pub detail: Option<String>,
    pub zone: Option<String>,
    pub rule: Option<String>,
    pub object_id: Option<u64>,
    /// The object's track (empty until the event ends, and for untracked events).
    pub track: Vec<TrackPoint>,
    /// When the store wrote the event (compare with `started_at`, the arrival
    /// of the frame that started it).
    pub recorded_at: Option<DateTime<Utc>>,
    pub frame_width: u32,
    pub frame_height: u32,
    pub boxes: Vec<BoxRecord>,
    pub has_snapshot: bool,
    /// The event's video clip, once written (after the event's end and
    /// `[clips] post_s`); `null` without one.
    pub clip: Option<ClipInfo>,
    /// Where operators have taken it.
    pub workflow: crate::access::Workflow,
    /// Marked by an operator to keep (a case file): retention and the disk
    /// budget never remove it.
    pub keep: bool,
}

/// An event's stored clip.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClipInfo {
    /// Length of the video, seconds.
    pub duration_s: f64,
    /// Size of the MP4 file.
    pub bytes: u64,
}

/// Filters and page of an event listing. Newest first; `before_id` is the cursor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    pub camera_id: Option<String>,
    pub village: Option<String>,
    pub kind: Option<EventKind>,
    pub label: Option<String>,
    pub zone: Option<String>,
    pub rule: Option<String>,
    pub status: Option<EventStatus>,
    pub grid: Option<String>,
    pub workflow: Option<crate::access::WorkflowState>,
    /// Events whose best score is at least this.
    pub min_score: Option<f32>,
    /// Only events of these villages (a scoped user); `None` for all.
    pub villages: Option<Vec<String>>,
    /// Events that started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events that started before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events with an id below this (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[cfg(test)]
mod change_kind_tests {
    use super::ChangeKind;

    #[test]
    fn change_kinds_read_back_their_text() {
        for k in [
            ChangeKind::Started,
            ChangeKind::Improved,
            ChangeKind::Ended,
            ChangeKind::Updated,
        ] {
            assert_eq!(k.as_str().parse::<ChangeKind>(), Ok(k));
        }
        assert!("closed".parse::<ChangeKind>().is_err());
    }
}
