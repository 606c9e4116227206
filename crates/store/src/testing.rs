//! For other crates' tests (feature `testing`): a real store whose event
//! inserts can be held, as a write waiting on a full disk or a slow disk is.

use crate::{EventStore, SqliteStore, StoreError, StoreHealth};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;
use xueliang_core::{
    AvailabilityGroup, AvailabilityRow, BoxRecord, Bucket, Crossing, CrossingCount, Event,
    EventChange, EventQuery, HealthSample, NewEvent, TrackPoint,
};

/// A real SQLite store whose inserts of events (of one camera, or of all)
/// wait until `open` turns true; everything else goes straight through.
pub struct HeldInserts {
    pub inner: SqliteStore,
    /// Only this camera's inserts wait (`None`: every insert).
    pub camera: Option<&'static str>,
    pub open: watch::Receiver<bool>,
}

impl EventStore for HeldInserts {
    fn insert_event(&self, event: NewEvent) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            if self.camera.is_none_or(|c| c == event.camera_id) {
                let mut open = self.open.clone();
                let _ = open.wait_for(|o| *o).await;
            }
            self.inner.insert_event(event).await
        })
    }
    fn end_event(
        &self,
        id: i64,
        ended_at: DateTime<Utc>,
        score: f32,
        boxes: Vec<BoxRecord>,
        track: Vec<TrackPoint>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.end_event(id, ended_at, score, boxes, track)
    }
    fn improve_event(
        &self,
        id: i64,
        score: f32,
        boxes: Vec<BoxRecord>,
        snapshot: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.improve_event(id, score, boxes, snapshot)
    }
    fn put_clip(
        &self,
        id: i64,
        mp4: Vec<u8>,
        duration_s: f64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.put_clip(id, mp4, duration_s)
    }
    fn clip(&self, id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        self.inner.clip(id)
    }
    fn record_crossings(&self, c: Vec<Crossing>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.record_crossings(c)
    }
    fn crossing_counts(
        &self,
        camera_id: Option<String>,
        line: Option<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Bucket,
    ) -> BoxFuture<'_, Result<Vec<CrossingCount>, StoreError>> {
        self.inner
            .crossing_counts(camera_id, line, from, to, bucket)
    }
    fn end_orphaned_events(
        &self,
        camera_id: Option<String>,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.end_orphaned_events(camera_id, at)
    }
    fn get_event(&self, id: i64) -> BoxFuture<'_, Result<Option<Event>, StoreError>> {
        self.inner.get_event(id)
    }
    fn list_events(&self, q: EventQuery) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        self.inner.list_events(q)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<EventChange> {
        self.inner.subscribe()
    }
    fn health(&self) -> &StoreHealth {
        self.inner.health()
    }
    fn snapshot(&self, id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        self.inner.snapshot(id)
    }
    fn insert_health_samples(
        &self,
        samples: Vec<HealthSample>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.insert_health_samples(samples)
    }
    fn availability(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: AvailabilityGroup,
    ) -> BoxFuture<'_, Result<Vec<AvailabilityRow>, StoreError>> {
        self.inner.availability(from, to, group)
    }
}

/// The PostgreSQL server the tests use: `XUELIANG_TEST_POSTGRES`, or the
/// role `scripts/setup.sh` makes on the local server.
pub fn test_postgres_url() -> String {
    std::env::var("XUELIANG_TEST_POSTGRES").unwrap_or_else(|_| {
        "postgres://xueliang_test:xueliang_test@127.0.0.1:5432/postgres".to_owned()
    })
}

/// A fresh PostgreSQL database on [`test_postgres_url`]'s server, dropped
/// (with its connections) when this goes. Fails loudly when the server is
/// not there: a test that needs it never skips.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = test_postgres_url();
        let name = format!(
            "xl_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rand::random::<u32>()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                "the tests need PostgreSQL at {} (scripts/setup.sh installs and starts it): {e}",
                crate::redact(&admin)
            )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
            admin,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a runtime: drop the database from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            })
        })
        .join();
    }
}

/// Which backend a test store is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

impl TestBackend {
    /// `XUELIANG_TEST_BACKEND` (`sqlite`, the default, or `postgres`): the
    /// backend of the stores other crates' tests run on (scripts/test.sh
    /// runs them once on each).
    pub fn from_env() -> TestBackend {
        match std::env::var("XUELIANG_TEST_BACKEND").as_deref() {
            Ok("postgres") => TestBackend::Postgres,
            Ok("sqlite") | Err(_) => TestBackend::Sqlite,
            Ok(other) => panic!("XUELIANG_TEST_BACKEND={other}: expected sqlite or postgres"),
        }
    }
}

/// A store for a test and what keeps it alive (its directory or database).
pub struct TestStore {
    pub store: std::sync::Arc<dyn crate::Store>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDatabase>,
}

impl TestStore {
    /// A fresh, empty store on `backend`.
    pub async fn new(backend: TestBackend) -> TestStore {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                TestStore {
                    store: crate::open(&url).await.unwrap(),
                    url,
                    _dir: Some(dir),
                    _db: None,
                }
            }
            TestBackend::Postgres => {
                let db = TestDatabase::create().await;
                TestStore {
                    store: crate::open(&db.url).await.unwrap(),
                    url: db.url.clone(),
                    _dir: None,
                    _db: Some(db),
                }
            }
        }
    }

    /// A fresh store on the backend `XUELIANG_TEST_BACKEND` names.
    pub async fn from_env() -> TestStore {
        TestStore::new(TestBackend::from_env()).await
    }
}

/// A planner setting as the store's own connections see it (`SHOW name`).
pub async fn postgres_setting(store: &crate::PgStore, name: &str) -> String {
    sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
        .fetch_one(&store.pool)
        .await
        .unwrap()
}
