//! Event write latency while retention removes 1 M expired events: prints
//! the p50/p99 of `insert_event` when idle and during the cleanup, and their
//! ratio (docs/performance.md, "Retention").
//!
//! cargo run --release -p xueliang-store --example retention_p99 [ROWS] [DIR]

use chrono::{Duration as Days, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xueliang_core::{EventKind, NewEvent, SystemClock};
use xueliang_store::{EventStore, Retention, RetentionPolicy, SqliteStore};

/// One write every this long, as a busy site might.
const PACE: Duration = Duration::from_millis(5);

fn event() -> NewEvent {
    let now = Utc::now();
    NewEvent {
        camera_id: "gate".into(),
        kind: EventKind::Object,
        label: "person".into(),
        score: 0.9,
        started_at: now,
        ended_at: Some(now),
        frame_width: 768,
        frame_height: 576,
        snapshot: Some(vec![0x5a; 30_000]),
        ..Default::default()
    }
}

/// Latencies of paced writes until `stop` says so (at least `min` writes).
async fn writes(store: &SqliteStore, min: usize, stop: impl Fn() -> bool) -> Vec<Duration> {
    let mut out = Vec::new();
    while out.len() < min || !stop() {
        let t = Instant::now();
        store.insert_event(event()).await.expect("write");
        out.push(t.elapsed());
        tokio::time::sleep(PACE).await;
    }
    out
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows: i64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().expect("ROWS"));
    let dir = match std::env::args().nth(2) {
        Some(d) => std::path::PathBuf::from(d),
        None => tempfile::tempdir().expect("tempdir").keep(),
    };
    let url = format!("sqlite://{}", dir.join("p99.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    // Expired events (100 days old, routed, ended), with a small crossing
    // each, written straight in bulk.
    let t = Instant::now();
    let old = (Utc::now() - Days::days(100)).timestamp_millis();
    let pool = sqlx::SqlitePool::connect(&url).await.expect("pool");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO events (camera_id, kind, label, score, started_at, ended_at, status, \
         frame_width, frame_height, boxes) \
         SELECT 'gate', 'object', 'person', 0.5, ? + i, ? + i + 1000, 'ended', 768, 576, '[]' FROM n",
    )
    .bind(rows)
    .bind(old)
    .bind(old)
    .execute(&pool)
    .await
    .expect("bulk events");
    sqlx::query("INSERT INTO alert_outbox (event_id, created_at, processed_at) SELECT id, started_at, started_at FROM events")
        .execute(&pool)
        .await
        .expect("bulk outbox");
    pool.close().await;
    println!(
        "{rows} expired events written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut idle = writes(&store, 2000, || true).await;
    let retention = Arc::new(Retention::new(
        store.clone(),
        RetentionPolicy::days(90, 400, 365),
        Arc::new(SystemClock),
    ));
    let cleanup = tokio::spawn({
        let r = retention.clone();
        async move { r.pass().await.expect("pass") }
    });
    let mut during = writes(&store, 200, || cleanup.is_finished()).await;
    let pass = cleanup.await.expect("join");
    println!(
        "cleanup: {} events removed in {:.1} s, {:.1} MB reclaimed",
        pass.expired.events,
        pass.took.as_secs_f64(),
        pass.reclaimed_bytes() as f64 / 1e6
    );
    let (i50, i99) = (pct(&mut idle, 0.5), pct(&mut idle, 0.99));
    let (d50, d99) = (pct(&mut during, 0.5), pct(&mut during, 0.99));
    println!(
        "idle:   {} writes, p50 {i50:.2} ms, p99 {i99:.2} ms",
        idle.len()
    );
    println!(
        "during: {} writes, p50 {d50:.2} ms, p99 {d99:.2} ms",
        during.len()
    );
    println!("p99 ratio during/idle: {:.2}", d99 / i99);
}
