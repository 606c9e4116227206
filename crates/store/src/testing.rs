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
    fn end_orphaned_events(&self, at: DateTime<Utc>) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.end_orphaned_events(at)
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
