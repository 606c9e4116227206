//! The embedded SQLite backend.

use crate::error::StoreError;
use crate::rows::{
    availability_from_row, availability_sql, boxes_json, count_crossings, crossing_count_from_row,
    event_from_row, insert_crossings, insert_health_samples, millis, COLUMNS,
};
use crate::store_health::StoreHealth;
use crate::{event_queries, EventStore};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};
use xueliang_core::{
    AvailabilityGroup, AvailabilityRow, BoxRecord, Bucket, ChangeKind, Crossing, CrossingCount,
    Event, EventChange, EventQuery, EventStatus, HealthSample, NewEvent, TrackPoint,
};

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Notified after each event insert: its alert outbox row is waiting.
    pub(crate) outbox_signal: std::sync::Arc<tokio::sync::Notify>,
    /// Event changes for live subscribers; bounded, the slowest lose the oldest.
    changes: tokio::sync::broadcast::Sender<EventChange>,
    /// Whether writes succeed, shared by every writer.
    health: Arc<StoreHealth>,
    /// The database file (its `-wal` and `-shm` files lie beside it).
    pub(crate) file: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`) and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        SqliteStore::connect(url, options(url)?.create_if_missing(true)).await
    }

    /// Opens the database at `url` like [`SqliteStore::open`] if its file
    /// exists; `None`, and no file made, if it does not.
    pub async fn open_existing(url: &str) -> Result<Option<SqliteStore>, StoreError> {
        let options = options(url)?;
        if !options.get_filename().exists() {
            return Ok(None);
        }
        SqliteStore::connect(url, options).await.map(Some)
    }

    async fn connect(url: &str, options: SqliteConnectOptions) -> Result<SqliteStore, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Open {
                url: url.to_owned(),
                source,
            })?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        if let Err(e) = enable_incremental_vacuum(&pool).await {
            // An upgraded site with a large file and less free space than
            // its size: start anyway; deleted rows' pages are still reused
            // inside the file, only not given back to the file system.
            warn!(
                error = %e,
                "cannot switch the database to incremental vacuum (it needs as much free space \
                 as the file); retention frees pages for reuse inside the file; tried again at \
                 the next start"
            );
        }
        Ok(SqliteStore {
            pool,
            outbox_signal: Default::default(),
            changes: tokio::sync::broadcast::channel(crate::CHANGE_BUFFER).0,
            health: Arc::new(match reserve_path(options.get_filename()) {
                Some(reserve) => StoreHealth::with_reserve(reserve),
                None => StoreHealth::default(),
            }),
            file: options.get_filename().to_owned(),
        })
    }
}

/// The reserve file beside the database `file` (`<file>.reserve`); none
/// for an in-memory database.
fn reserve_path(file: &std::path::Path) -> Option<PathBuf> {
    if file.as_os_str() == ":memory:" {
        return None;
    }
    let mut name = file.as_os_str().to_owned();
    name.push(".reserve");
    Some(PathBuf::from(name))
}

/// Retention gives freed pages back to the file system with `PRAGMA
/// incremental_vacuum`, which needs `auto_vacuum = INCREMENTAL`. A database
/// has it after one full `VACUUM`, done here once (instant for a new one): it
/// rewrites the file (needing as much free space again, and time in
/// proportion to its size) and is logged. It is not a connection option: on
/// a database that has it, setting it again writes the header, so every new
/// connection would write, and on a full disk fail (`SQLITE_FULL`) before
/// it could read anything.
async fn enable_incremental_vacuum(pool: &SqlitePool) -> Result<(), StoreError> {
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(pool)
        .await?;
    if mode == 2 {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    info!(
        "switching the database to incremental vacuum (a one-time VACUUM; the file is rewritten)"
    );
    sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM").execute(&mut *conn).await?;
    info!("database switched to incremental vacuum");
    Ok(())
}

fn options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::Open {
        url: url.to_owned(),
        source,
    })?;
    // WAL with synchronous = FULL: every commit is on disk before it returns,
    // so an event, and the alert told about it, survive a power cut
    // (docs/deployment.md, "Disk and retention").
    Ok(options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        // The WAL is cut back to this after a checkpoint (it counts in the budget).
        .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

impl SqliteStore {
    /// Whether writes succeed (shared with [`EventStore::health`]).
    pub fn store_health(&self) -> Arc<StoreHealth> {
        self.health.clone()
    }

    pub(crate) fn announce(&self, id: i64, change: ChangeKind) {
        // No subscriber is not an error.
        let _ = self.changes.send(EventChange { id, change });
    }
}

/// Gives a connection that ran a write transaction back to the pool if the
/// write succeeded, and closes it if not. After `SQLITE_FULL` (or another I/O
/// error) SQLite may roll the transaction back on its own; sqlx still counts
/// it open, so the connection's next transaction would only be a savepoint
/// inside a dangling one — holding the write lock, and lost. A new
/// connection starts clean.
pub(crate) async fn pooled_if_written<T>(
    conn: PoolConnection<Sqlite>,
    written: Result<T, StoreError>,
) -> Result<T, StoreError> {
    if written.is_err() {
        let _ = conn.detach().close().await;
    }
    written
}

impl EventStore for SqliteStore {
    fn insert_event(&self, e: NewEvent) -> BoxFuture<'_, Result<i64, StoreError>> {
        async move {
            let mut conn = self.pool.acquire().await?;
            let written = async {
            let mut tx = conn.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO events (camera_id, village, grid, kind, label, score, started_at, ended_at, \
                 status, detail, frame_width, frame_height, boxes, recorded_at, zone, rule, object_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(&e.camera_id)
            .bind(&e.village)
            .bind(&e.grid)
            .bind(e.kind.as_str())
            .bind(&e.label)
            .bind(e.score as f64)
            .bind(millis(e.started_at))
            .bind(e.ended_at.map(millis))
            .bind(if e.ended_at.is_some() { EventStatus::Ended } else { EventStatus::Active }.as_str())
            .bind(&e.detail)
            .bind(e.frame_width as i64)
            .bind(e.frame_height as i64)
            .bind(boxes_json(&e.boxes))
            .bind(millis(chrono::Utc::now()))
            .bind(&e.zone)
            .bind(&e.rule)
            .bind(e.object_id.map(|v| v as i64))
            .fetch_one(&mut *tx)
            .await?;
            if let Some(jpeg) = &e.snapshot {
                sqlx::query("INSERT INTO snapshots (event_id, jpeg) VALUES (?, ?)")
                    .bind(id)
                    .bind(jpeg)
                    .execute(&mut *tx)
                    .await?;
            }
            // The alert outbox row, in the event's transaction (design/alerts.md).
            sqlx::query("INSERT INTO alert_outbox (event_id, created_at) VALUES (?, ?)")
                .bind(id)
                .bind(millis(chrono::Utc::now()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(id)
            }
            .await;
            let id = pooled_if_written(conn, written).await?;
            self.outbox_signal.notify_one();
            self.announce(id, ChangeKind::Started);
            Ok(id)
        }
        .boxed()
    }

    fn end_event(
        &self,
        id: i64,
        ended_at: DateTime<Utc>,
        score: f32,
        boxes: Vec<BoxRecord>,
        track: Vec<TrackPoint>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let track = (!track.is_empty())
                .then(|| serde_json::to_string(&track).expect("track serialises"));
            sqlx::query(
                "UPDATE events SET ended_at = ?, status = ?, score = MAX(score, ?), boxes = ?, \
                 track = COALESCE(?, track) WHERE id = ?",
            )
            .bind(millis(ended_at))
            .bind(EventStatus::Ended.as_str())
            .bind(score as f64)
            .bind(boxes_json(&boxes))
            .bind(track)
            .bind(id)
            .execute(&self.pool)
            .await?;
            self.announce(id, ChangeKind::Ended);
            Ok(())
        }
        .boxed()
    }

    fn improve_event(
        &self,
        id: i64,
        score: f32,
        boxes: Vec<BoxRecord>,
        snapshot: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut conn = self.pool.acquire().await?;
            let written = async {
            let mut tx = conn.begin().await?;
            sqlx::query("UPDATE events SET score = ?, boxes = ? WHERE id = ?")
                .bind(score as f64)
                .bind(boxes_json(&boxes))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some(jpeg) = snapshot {
                sqlx::query("INSERT INTO snapshots (event_id, jpeg) VALUES (?, ?) ON CONFLICT (event_id) DO UPDATE SET jpeg = excluded.jpeg")
                    .bind(id)
                    .bind(jpeg)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
            }
            .await;
            pooled_if_written(conn, written).await?;
            self.announce(id, ChangeKind::Improved);
            Ok(())
        }
        .boxed()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<EventChange> {
        self.changes.subscribe()
    }

    fn health(&self) -> &StoreHealth {
        &self.health
    }

    fn record_crossings(&self, crossings: Vec<Crossing>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            if crossings.is_empty() {
                return Ok(());
            }
            insert_crossings::<Sqlite>(crossings)
                .build()
                .execute(&self.pool)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn crossing_counts(
        &self,
        camera_id: Option<String>,
        line: Option<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Bucket,
    ) -> BoxFuture<'_, Result<Vec<CrossingCount>, StoreError>> {
        async move {
            count_crossings::<Sqlite>(camera_id, line, from, to, bucket)
                .build()
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(crossing_count_from_row)
                .collect()
        }
        .boxed()
    }

    fn end_orphaned_events(
        &self,
        camera_id: Option<String>,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let r = sqlx::query(
                "UPDATE events SET ended_at = MAX(started_at, ?), status = ? WHERE status = ? \
                 AND (CAST(? AS TEXT) IS NULL OR camera_id = ?)",
            )
            .bind(millis(at))
            .bind(EventStatus::Ended.as_str())
            .bind(EventStatus::Active.as_str())
            .bind(&camera_id)
            .bind(&camera_id)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected())
        }
        .boxed()
    }

    fn get_event(&self, id: i64) -> BoxFuture<'_, Result<Option<Event>, StoreError>> {
        async move {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(event_from_row).transpose()
        }
        .boxed()
    }

    fn list_events(&self, q: EventQuery) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        async move { event_queries::list_events(&self.pool, &q).await }.boxed()
    }

    fn snapshot(&self, id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        async move {
            Ok(
                sqlx::query_scalar("SELECT jpeg FROM snapshots WHERE event_id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        }
        .boxed()
    }

    fn put_clip(
        &self,
        id: i64,
        mp4: Vec<u8>,
        duration_s: f64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let bytes = mp4.len() as i64;
            let written = sqlx::query(
                "INSERT OR REPLACE INTO clips (event_id, mp4, duration_ms, bytes) \
                 SELECT id, ?, ?, ? FROM events WHERE id = ?",
            )
            .bind(mp4)
            .bind((duration_s * 1000.0).round() as i64)
            .bind(bytes)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
                > 0;
            if written {
                self.announce(id, ChangeKind::Updated);
            }
            Ok(written)
        }
        .boxed()
    }

    fn clip(&self, id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        async move {
            Ok(
                sqlx::query_scalar("SELECT mp4 FROM clips WHERE event_id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        }
        .boxed()
    }

    fn insert_health_samples(
        &self,
        samples: Vec<HealthSample>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            if samples.is_empty() {
                return Ok(());
            }
            insert_health_samples::<Sqlite>(samples)
                .build()
                .execute(&self.pool)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn availability(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: AvailabilityGroup,
    ) -> BoxFuture<'_, Result<Vec<AvailabilityRow>, StoreError>> {
        async move {
            sqlx::query(&availability_sql(group))
                .bind(millis(from))
                .bind(millis(to))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(availability_from_row)
                .collect()
        }
        .boxed()
    }
}
