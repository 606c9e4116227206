//! Event storage behind traits ([`EventStore`], [`AlertStore`],
//! [`AccessStore`], [`CameraStore`]; together [`Store`]). The embedded
//! default is SQLite (one file under the data directory, migrations in
//! `migrations/sqlite/`); PostgreSQL (`migrations/postgres/`) is for sites
//! that run several nodes or back their database up with their own tools.
//! Both pass the same conformance tests; [`open`] picks one by its URL.

pub mod access;
pub mod alerts;
pub mod cameras;
mod cameras_sql;
pub mod copy;
mod error;
mod event_queries;
mod postgres;
mod postgres_access;
mod postgres_alerts;
pub mod postgres_cluster;
mod reserve;
pub mod retention;
mod rows;
mod sqlite;
mod sqlite_access;
mod sqlite_alerts;
mod store_health;
#[cfg(feature = "testing")]
pub mod testing;
mod writer;

pub use access::{AccessStore, NewToken, StepOutcome};
pub use alerts::{AlertStore, OutboxDepth};
pub use cameras::{CameraStore, StoredCamera};
pub use error::StoreError;
pub use event_queries::RECOUNT_EVENTS;
pub use postgres::{redact, PgStore};
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

/// Changes kept for a slow live subscriber before it lags.
pub(crate) const CHANGE_BUFFER: usize = 1024;

/// Everything the service keeps, on one backend.
pub trait Store: EventStore + AlertStore + AccessStore + CameraStore + 'static {
    /// Whether writes succeed (shared by every writer and `/healthz`).
    fn store_health(&self) -> std::sync::Arc<StoreHealth>;
    /// The backend itself, for what differs between them (retention).
    fn backend(&self) -> Backend;
}

/// The backends, for the few things that are not the same on both.
#[derive(Clone)]
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store for SqliteStore {
    fn store_health(&self) -> std::sync::Arc<StoreHealth> {
        SqliteStore::store_health(self)
    }
    fn backend(&self) -> Backend {
        Backend::Sqlite(self.clone())
    }
}

impl Store for PgStore {
    fn store_health(&self) -> std::sync::Arc<StoreHealth> {
        PgStore::store_health(self)
    }
    fn backend(&self) -> Backend {
        Backend::Postgres(self.clone())
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store `url` names (`sqlite://path` or `postgres://...`),
/// creating a SQLite file if missing, and brings its schema up to date.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(if is_postgres(url) {
        std::sync::Arc::new(PgStore::open(url).await?)
    } else {
        std::sync::Arc::new(SqliteStore::open(url).await?)
    })
}

/// Like [`open`], but `None` (and no file made) when a SQLite file does not
/// exist yet. A PostgreSQL database must exist; connecting is the test.
pub async fn open_existing(url: &str) -> Result<Option<std::sync::Arc<dyn Store>>, StoreError> {
    Ok(if is_postgres(url) {
        Some(std::sync::Arc::new(PgStore::open(url).await?))
    } else {
        SqliteStore::open_existing(url)
            .await?
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn Store>)
    })
}

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
    /// them (of one camera, or of all); returns how many.
    fn end_orphaned_events(
        &self,
        camera_id: Option<String>,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

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
