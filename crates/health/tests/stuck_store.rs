//! A store write that waits (a full disk being retried) does not stop the
//! monitor: the cameras are still watched and their health published, and
//! the events are stored once the store takes writes again.

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use xueliang_core::{
    AvailabilityGroup, AvailabilityRow, BoxRecord, Bucket, CameraHealth, CameraState, CameraStats,
    CameraStatus, Clock, Config, Crossing, CrossingCount, Event, EventQuery, HealthReason,
    HealthSample, ManualClock, NewEvent, TrackPoint,
};
use xueliang_health::{run_monitor, MonitorChange, MonitoredCamera};
use xueliang_store::{EventStore, SqliteStore, StoreError, StoreHealth};

/// A real SQLite store whose event inserts wait until `open` turns true.
struct StuckStore {
    inner: SqliteStore,
    open: watch::Receiver<bool>,
}

impl EventStore for StuckStore {
    fn insert_event(&self, event: NewEvent) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let mut open = self.open.clone();
            let _ = open.wait_for(|o| *o).await;
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
    fn end_orphaned_events(&self, at: DateTime<Utc>) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.end_orphaned_events(at)
    }
    fn get_event(&self, id: i64) -> BoxFuture<'_, Result<Option<Event>, StoreError>> {
        self.inner.get_event(id)
    }
    fn list_events(&self, q: EventQuery) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        self.inner.list_events(q)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<xueliang_core::EventChange> {
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

/// Waits (real time, up to 10 s) for the published health to satisfy `ok`.
async fn published_when(
    published: &mut watch::Receiver<CameraHealth>,
    ok: impl Fn(&CameraHealth) -> bool,
) -> CameraHealth {
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        published.wait_for(|h| ok(h)),
    )
    .await;
    let got = got.ok().and_then(|r| r.ok()).map(|h| h.clone());
    match got {
        Some(h) => h,
        None => panic!("not published in 10 s; last: {:?}", *published.borrow()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_event_write_does_not_stop_the_cameras_being_watched() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("h.db").display());
    let (open_tx, open) = watch::channel(false);
    let store = Arc::new(StuckStore {
        inner: SqliteStore::open(&url).await.unwrap(),
        open,
    });
    let t0 = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let (changes, rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let monitor = tokio::spawn(run_monitor(
        rx,
        store.clone(),
        clock.clone(),
        std::time::Duration::from_secs(60),
        shutdown.clone(),
    ));
    let config = Config::parse(
        "health = { offline_grace_s = 2 }\n[[cameras]]\nid = \"gate\"\nname = \"G\"\nurl = \"rtsp://127.0.0.1:9/g\"\n",
    )
    .unwrap();
    let mut offline = CameraStatus::new(CameraState::Offline, t0);
    offline.reason = Some(HealthReason::Refused);
    let (status_tx, status) = watch::channel(offline);
    let (health, mut published) = watch::channel(CameraHealth::new(CameraState::Connecting, t0));
    changes
        .send(MonitorChange::Add(Box::new(MonitoredCamera {
            config: config.cameras[0].clone(),
            status,
            stats: Arc::new(CameraStats::default()),
            health,
        })))
        .await
        .unwrap();
    published_when(&mut published, |h| h.state == CameraState::Offline).await;

    // Past the grace period: the camera_offline event's insert waits.
    clock.advance(Duration::seconds(5));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    // The camera comes back: the monitor still watches and publishes it.
    status_tx.send_replace(CameraStatus::new(CameraState::Online, clock.now()));
    clock.advance(Duration::seconds(1));
    let started = Instant::now();
    published_when(&mut published, |h| h.state == CameraState::Online).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // The store takes writes again: both events are stored, in order.
    open_tx.send_replace(true);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let kinds = loop {
        let events = store
            .list_events(EventQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let kinds: Vec<_> = events
            .iter()
            .rev()
            .map(|e| (e.kind.as_str(), e.ended_at.is_some()))
            .collect();
        if kinds.len() >= 2 || Instant::now() > deadline {
            break kinds;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        kinds,
        vec![("camera_offline", true), ("camera_recovered", true)]
    );
    shutdown.cancel();
    monitor.await.unwrap();
}
