//! A camera's recorded video for superior platforms (GB/T 28181 cascade:
//! record queries and playback): the event clips stored with its events.
//! The pipeline implements [`RecordedClips`] over the event store
//! (crates/pipeline/src/gb_records.rs); the GB/T 28181 crate lists the
//! clips (RecordInfo) and plays their units back as PS over RTP.

use crate::live_units::LiveUnit;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// One stored event clip.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedClip {
    /// The event the clip belongs to (its stored MP4 is read by this id).
    pub event_id: i64,
    pub camera_id: String,
    /// What the event was (its kind and label), shown as the record's name.
    pub name: String,
    /// When the clip's video starts and ends (wall clock): the event's start
    /// less `[clips] pre_s`, and that plus the clip's length.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The MP4's size in bytes.
    pub bytes: u64,
}

/// Why clips cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordedClipsError {
    #[error("no clip for event {0}")]
    NoClip(i64),
    #[error("reading clips: {0}")]
    Store(String),
    #[error("event {event}'s clip cannot be read: {detail}")]
    Damaged { event: i64, detail: String },
}

/// The stored event clips of the cameras.
pub trait RecordedClips: Send + Sync {
    /// Clips of `camera_id` overlapping `from..to`, oldest first.
    fn find(
        &self,
        camera_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<RecordedClip>, RecordedClipsError>>;

    /// A clip's access units (Annex B, parameter sets before key frames),
    /// in decode order, PTS in 90 kHz ticks from the clip's start.
    fn units(&self, event_id: i64) -> BoxFuture<'_, Result<Vec<LiveUnit>, RecordedClipsError>>;
}
