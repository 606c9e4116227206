//! The PostgreSQL backend (`[storage] url = "postgres://..."`): the same
//! tables as SQLite's (migrations/postgres/), the same row mapping
//! (crate::rows), and the same transactions. PostgreSQL serialises nothing
//! the way SQLite's single writer does, so a read-modify-write is a
//! `SELECT ... FOR UPDATE` inside its transaction where SQLite's is an
//! immediate transaction.
//!
//! Several nodes may share the database. Each event change is told to the
//! others with `NOTIFY` in the write's own transaction ([`feed`]), and one
//! node's alert dispatcher leads at a time ([`leader`]).

mod feed;
mod leader;

use crate::rows::{
    availability_from_row, availability_sql, boxes_json, count_crossings, crossing_count_from_row,
    event_from_row, insert_crossings, insert_health_samples, millis, COLUMNS,
};
use crate::store_health::StoreHealth;
use crate::{event_queries, EventStore, StoreError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use xueliang_core::{
    AvailabilityGroup, AvailabilityRow, BoxRecord, Bucket, ChangeKind, Crossing, CrossingCount,
    Event, EventChange, EventQuery, EventStatus, HealthSample, NewEvent, TrackPoint,
};

/// Connections per node: the pipeline's store writers, the dispatcher, the
/// API's readers and retention, with room for bursts.
const MAX_CONNECTIONS: u32 = 16;
/// The planner's cost of a page read out of order, on the store's own
/// connections: the usual value for SSDs, where the server's default (4, for
/// spinning disks) makes PostgreSQL walk the whole primary key for a listing
/// by review state instead of its index (docs/performance.md, #17). A URL
/// whose `options` set it keeps its own.
const RANDOM_PAGE_COST: &str = "1.1";

#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Notified after each event insert (on any node): its alert outbox row
    /// is waiting.
    pub(crate) outbox_signal: Arc<tokio::sync::Notify>,
    changes: tokio::sync::broadcast::Sender<EventChange>,
    health: Arc<StoreHealth>,
    /// This store's name in the changes it tells the other nodes, so that
    /// it does not hear its own twice: random, one per [`PgStore::open`].
    origin: Arc<str>,
    background: Arc<Background>,
}

/// The store's own tasks (the other nodes' changes, the dispatcher's
/// election): they end with the last clone of the store, or when its pool
/// is closed.
#[derive(Default)]
struct Background {
    tasks: Mutex<Vec<AbortHandle>>,
    /// Started by the first [`crate::AlertStore::leadership`] call: only a
    /// node that runs a dispatcher takes part in the election.
    leadership: OnceLock<watch::Receiver<Option<bool>>>,
}

impl Background {
    fn keep(&self, task: AbortHandle) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and
    /// brings its schema up to date. The database must exist.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let open_error = |source| StoreError::Open {
            url: redact(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(open_error)?;
        if !url.contains("random_page_cost") {
            options = options.options([("random_page_cost", RANDOM_PAGE_COST)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let store = PgStore {
            pool,
            outbox_signal: Default::default(),
            changes: tokio::sync::broadcast::channel(crate::CHANGE_BUFFER).0,
            health: Arc::new(StoreHealth::default()),
            origin: format!("{:016x}", rand::random::<u64>()).into(),
            background: Default::default(),
        };
        store.background.keep(feed::start(&store).await);
        Ok(store)
    }

    /// Closes the connections: the other nodes' changes stop arriving, and
    /// the election (if this node took part) is left at once.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether writes succeed (shared with [`EventStore::health`]).
    pub fn store_health(&self) -> Arc<StoreHealth> {
        self.health.clone()
    }

    /// Tells this node's subscribers about a change (after its commit). The
    /// other nodes learn it from [`PgStore::notify`] in the write's
    /// transaction.
    pub(crate) fn announce(&self, id: i64, change: ChangeKind) {
        let _ = self.changes.send(EventChange { id, change });
    }

    /// Tells the other nodes about a change, in `tx`: PostgreSQL delivers
    /// the notification when `tx` commits, and never if it rolls back.
    pub(crate) async fn notify(
        &self,
        tx: &mut PgConnection,
        id: i64,
        change: ChangeKind,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(feed::CHANNEL)
            .bind(feed::payload(&self.origin, id, change))
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Whether this node's dispatcher leads; starts the election on the first call.
    pub(crate) fn leadership(&self) -> crate::alerts::Leadership {
        let state = self.background.leadership.get_or_init(|| {
            let (state, task) = leader::start(self.pool.clone());
            self.background.keep(task);
            state
        });
        crate::alerts::Leadership::follow(state.clone())
    }
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl EventStore for PgStore {
    fn insert_event(&self, e: NewEvent) -> BoxFuture<'_, Result<i64, StoreError>> {
        async move {
            let mut tx = self.pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO events (camera_id, village, grid, kind, label, score, started_at, ended_at, \
                 status, detail, frame_width, frame_height, boxes, recorded_at, zone, rule, object_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
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
            .bind(millis(Utc::now()))
            .bind(&e.zone)
            .bind(&e.rule)
            .bind(e.object_id.map(|v| v as i64))
            .fetch_one(&mut *tx)
            .await?;
            if let Some(jpeg) = &e.snapshot {
                sqlx::query("INSERT INTO snapshots (event_id, jpeg) VALUES ($1, $2)")
                    .bind(id)
                    .bind(jpeg)
                    .execute(&mut *tx)
                    .await?;
            }
            // The alert outbox row, in the event's transaction (design/alerts.md).
            sqlx::query("INSERT INTO alert_outbox (event_id, created_at) VALUES ($1, $2)")
                .bind(id)
                .bind(millis(Utc::now()))
                .execute(&mut *tx)
                .await?;
            self.notify(&mut tx, id, ChangeKind::Started).await?;
            tx.commit().await?;
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
            // The other nodes are told in the update's own statement.
            sqlx::query(
                "WITH ended AS (UPDATE events SET ended_at = $1, status = $2, \
                 score = GREATEST(score, $3), boxes = $4, track = COALESCE($5, track) \
                 WHERE id = $6 RETURNING id) SELECT pg_notify($7, $8) FROM ended",
            )
            .bind(millis(ended_at))
            .bind(EventStatus::Ended.as_str())
            .bind(score as f64)
            .bind(boxes_json(&boxes))
            .bind(track)
            .bind(id)
            .bind(feed::CHANNEL)
            .bind(feed::payload(&self.origin, id, ChangeKind::Ended))
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
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE events SET score = $1, boxes = $2 WHERE id = $3")
                .bind(score as f64)
                .bind(boxes_json(&boxes))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some(jpeg) = snapshot {
                sqlx::query(
                    "INSERT INTO snapshots (event_id, jpeg) VALUES ($1, $2) \
                     ON CONFLICT (event_id) DO UPDATE SET jpeg = excluded.jpeg",
                )
                .bind(id)
                .bind(jpeg)
                .execute(&mut *tx)
                .await?;
            }
            self.notify(&mut tx, id, ChangeKind::Improved).await?;
            tx.commit().await?;
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
            insert_crossings::<Postgres>(crossings)
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
            count_crossings::<Postgres>(camera_id, line, from, to, bucket)
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
                "UPDATE events SET ended_at = GREATEST(started_at, $1), status = $2 WHERE status = $3 \
                 AND (CAST($4 AS TEXT) IS NULL OR camera_id = $4)",
            )
            .bind(millis(at))
            .bind(EventStatus::Ended.as_str())
            .bind(EventStatus::Active.as_str())
            .bind(&camera_id)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected())
        }
        .boxed()
    }

    fn get_event(&self, id: i64) -> BoxFuture<'_, Result<Option<Event>, StoreError>> {
        async move {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"))
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
                sqlx::query_scalar("SELECT jpeg FROM snapshots WHERE event_id = $1")
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
            // The other nodes are told in the insert's own statement, if it wrote.
            let written = sqlx::query(
                "WITH written AS (INSERT INTO clips (event_id, mp4, duration_ms, bytes) \
                 SELECT id, $1, $2, $3 FROM events WHERE id = $4 \
                 ON CONFLICT (event_id) DO UPDATE SET mp4 = excluded.mp4, \
                 duration_ms = excluded.duration_ms, bytes = excluded.bytes RETURNING event_id) \
                 SELECT pg_notify($5, $6) FROM written",
            )
            .bind(mp4)
            .bind((duration_s * 1000.0).round() as i64)
            .bind(bytes)
            .bind(id)
            .bind(feed::CHANNEL)
            .bind(feed::payload(&self.origin, id, ChangeKind::Updated))
            .fetch_optional(&self.pool)
            .await?
            .is_some();
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
                sqlx::query_scalar("SELECT mp4 FROM clips WHERE event_id = $1")
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
            insert_health_samples::<Postgres>(samples)
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
