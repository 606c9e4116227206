//! From detections to events. Per camera: filters and masks drop unwanted
//! detections, a tracker gives objects stable ids, and then either
//!
//! - zones (with schedules) and their rules (intrusion, loitering, crowd,
//!   vehicle dwell) and counting lines make events, when the camera has any; or
//! - each tracked object of a watched label makes one `object` event, at most
//!   one per label per cooldown.
//!
//! Events start, improve (a better snapshot) and end; the object's track is
//! kept. This crate is pure logic on plain types: the caller feeds frames and
//! detections and stores the [`EventUpdate`](xueliang_core::EventUpdate)s.

mod camera;
mod geometry;
mod need;
mod rules;
mod schedule;
mod snapshot;
mod tracker;

pub use camera::CameraAnalytics;
pub use need::{Judged, NeedReason};
pub use schedule::Schedule;
pub use snapshot::{encode_jpeg, encode_jpeg_with_boxes, SnapshotError};
pub use tracker::{Track, Tracker};
