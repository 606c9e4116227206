//! From detections to events. For now: each object of a watched label that
//! appears (matched across frames by box overlap) opens one event, at most one
//! per camera and label per cooldown; the event ends when the object has not
//! been seen for `lost_after_s`. Tracking, zones and rules come later.
//!
//! This crate is pure logic on plain types: the caller feeds frames and
//! detections and stores the [`EventUpdate`]s it gets back.

mod appearance;
mod snapshot;

pub use appearance::CameraAnalytics;
pub use snapshot::{encode_jpeg, SnapshotError};
