//! Event storage behind one trait ([`EventStore`]). The embedded default is
//! SQLite (one file under the data directory) with its own migrations in
//! `migrations/sqlite/`; other backends add their own migrations folder and
//! pass the same conformance tests.

pub mod access;
pub mod alerts;
pub mod cameras;
mod error;
mod reserve;
pub mod retention;
mod sqlite;
mod sqlite_access;
mod sqlite_alerts;
mod sqlite_cameras;
mod store_health;
#[cfg(feature = "testing")]
pub mod testing;
mod writer;

pub use access::{AccessStore, NewToken, StepOutcome};
pub use alerts::{AlertStore, OutboxDepth};
pub use cameras::{CameraStore, StoredCamera};
pub use error::StoreError;
pub use reserve::RESERVE_BYTES;
pub use retention::{Retention, RetentionPass, RetentionPolicy};
pub use sqlite::SqliteStore;
pub use store_health::{StoreHealth, StoreTrouble, TroubleKind};
pub use writer::{EventLifecycle, EventWriter};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use xueliang_core::{
    AvailabilityGroup, AvailabilityRow, BoxRecord, Bucket, Crossing, CrossingCount, Event,
    EventQuery, HealthSample, NewEvent, TrackPoint,
};

/// The largest page the API hands out. A listing returns at most one more
/// row, so a caller can ask for `page + 1` to learn whether another page follows.
pub const MAX_PAGE: u32 = 500;

/// Where events live. Every method is one short transaction.
pub trait EventStore: Send + Sync {
    /// Stores a new event and its snapshot atomically; returns its id.
    fn insert_event(&self, event: NewEvent) -> BoxFuture<'_, Result<i64, StoreError>>;

    /// Marks an event ended, with the best score and boxes seen during it and
    /// the object's track.
    fn end_event(
        &self,
        id: i64,
        ended_at: DateTime<Utc>,
        score: f32,
        boxes: Vec<BoxRecord>,
        track: Vec<TrackPoint>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Replaces an event's score, boxes and (if given) snapshot with a better one.
    fn improve_event(
        &self,
        id: i64,
        score: f32,
        boxes: Vec<BoxRecord>,
        snapshot: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records counting-line crossings.
    fn record_crossings(&self, crossings: Vec<Crossing>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Crossings per line, direction and bucket with `from <= at < to`,
    /// optionally for one camera and line.
    fn crossing_counts(
        &self,
        camera_id: Option<String>,
        line: Option<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Bucket,
    ) -> BoxFuture<'_, Result<Vec<CrossingCount>, StoreError>>;

    /// Ends events left active by a previous run that stopped without ending
    /// them; returns how many.
    fn end_orphaned_events(&self, at: DateTime<Utc>) -> BoxFuture<'_, Result<u64, StoreError>>;

    fn get_event(&self, id: i64) -> BoxFuture<'_, Result<Option<Event>, StoreError>>;

    /// Events matching the query, newest first (descending id).
    fn list_events(&self, query: EventQuery) -> BoxFuture<'_, Result<Vec<Event>, StoreError>>;

    /// Changes to events from now on (new, improved, ended), for live feeds.
    /// A subscriber that falls behind loses the oldest changes and is told
    /// how many (`RecvError::Lagged`).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<xueliang_core::EventChange>;

    /// Whether writes succeed: writers report their failures and successes
    /// here, `/healthz` reads it.
    fn health(&self) -> &StoreHealth;

    /// The JPEG snapshot of an event, if it has one.
    fn snapshot(&self, id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>>;

    /// Stores an event's clip (replacing one it had); `false` when the event
    /// is gone (removed by retention meanwhile).
    fn put_clip(
        &self,
        id: i64,
        mp4: Vec<u8>,
        duration_s: f64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The MP4 clip of an event, if it has one.
    fn clip(&self, id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>>;

    /// Stores one sampling round of camera states.
    fn insert_health_samples(
        &self,
        samples: Vec<HealthSample>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Online rate over samples with `from <= at < to`, grouped.
    fn availability(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: AvailabilityGroup,
    ) -> BoxFuture<'_, Result<Vec<AvailabilityRow>, StoreError>>;
}
