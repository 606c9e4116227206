//! Camera health. Every camera's state is known at all times:
//!
//! - [`CameraMonitor`] turns the ingest worker's state and the camera's
//!   counters into `online` / `degraded` / `offline` with a reason, and into
//!   `camera_offline` (after a grace period) and `camera_recovered` events;
//! - [`PictureChecker`] looks at a decoded picture every few seconds for a
//!   frozen picture, a covered lens and a turned camera;
//! - [`run_monitor`] drives the monitors once a second, publishes each camera's
//!   [`CameraHealth`](xueliang_core::CameraHealth) and writes health samples
//!   for the online-rate reports.
//!
//! The first two are pure state machines that take the time as an argument,
//! so their timing is tested in simulated time.

mod condition;
mod monitor;
mod picture;
mod task;
mod writes;

pub use monitor::{CameraMonitor, Counters};
pub use picture::PictureChecker;
pub use task::{run_monitor, MonitorChange, MonitoredCamera, FIRST_SAMPLE_AFTER};
pub use writes::QUEUED_SAMPLE_ROUNDS;
