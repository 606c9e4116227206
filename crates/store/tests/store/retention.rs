//! Retention and the disk budget on both backends (a real SQLite file, a
//! real PostgreSQL database), with time moved by a manual clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;
use xueliang_core::{
    CameraState, Crossing, Direction, EventKind, HealthSample, ManualClock, NewAuditEntry,
    NewEvent, WorkflowAction, WorkflowStep,
};
use xueliang_store::alerts::{AlertPlan, PlannedDelivery};
use xueliang_store::testing::{TestBackend, TestStore};
use xueliang_store::{Retention, RetentionPolicy, Store};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn ago(days: f64) -> DateTime<Utc> {
    now() - Duration::milliseconds((days * 86_400_000.0) as i64)
}

/// Each test `name(store)` as `name::sqlite` and `name::postgres`.
macro_rules! on_both {
    ($($name:ident),*) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(&TestStore::new(TestBackend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(&TestStore::new(TestBackend::Postgres).await).await;
                }
            }
        )*
    };
}

on_both!(
    retention_removes_what_is_old_and_keeps_kept_undelivered_and_active_events,
    the_disk_budget_removes_the_oldest_snapshots_first_then_events_never_the_last_day,
    the_disk_budget_removes_the_oldest_clips_before_any_snapshot
);

fn retention(store: &dyn Store, policy: RetentionPolicy) -> Retention {
    Retention::new(store.backend(), policy, Arc::new(ManualClock::new(now())))
}

/// An ended event that started `days` ago, with a snapshot of `snapshot` bytes.
fn event(days: f64, snapshot: usize) -> NewEvent {
    NewEvent {
        camera_id: "gate".into(),
        kind: EventKind::Object,
        label: "person".into(),
        score: 0.9,
        started_at: ago(days),
        ended_at: Some(ago(days) + Duration::seconds(5)),
        frame_width: 768,
        frame_height: 576,
        snapshot: (snapshot > 0).then(|| (0..snapshot).map(|i| (i * 31 % 251) as u8).collect()),
        ..Default::default()
    }
}

/// Stores an event whose alert outbox row the dispatcher has routed (no route).
async fn routed(store: &dyn Store, e: NewEvent) -> i64 {
    let id = store.insert_event(e).await.unwrap();
    store.route_event(id, now(), None).await.unwrap();
    id
}

async fn exists(store: &dyn Store, id: i64) -> bool {
    store.get_event(id).await.unwrap().is_some()
}

async fn has_snapshot(store: &dyn Store, id: i64) -> bool {
    store.snapshot(id).await.unwrap().is_some()
}

/// A count the API has no call for, through a second connection.
async fn count(t: &TestStore, sql: &str) -> i64 {
    if t.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

fn sample(days: f64) -> HealthSample {
    HealthSample {
        camera_id: "gate".into(),
        village: None,
        grid: None,
        at: ago(days),
        state: CameraState::Online,
        interval_ms: 60_000,
    }
}

fn crossing(days: f64) -> Crossing {
    Crossing {
        camera_id: "gate".into(),
        line: "door".into(),
        direction: Direction::Forward,
        label: "person".into(),
        at: ago(days),
    }
}

fn audit(days: f64) -> NewAuditEntry {
    NewAuditEntry {
        at: ago(days),
        user: "admin".into(),
        action: "camera.update".into(),
        target_kind: "camera".into(),
        target_id: "gate".into(),
        detail: serde_json::json!({}),
    }
}

async fn retention_removes_what_is_old_and_keeps_kept_undelivered_and_active_events(t: &TestStore) {
    let store = &*t.store;

    let old = routed(store, event(100.0, 1000)).await;
    let recent = routed(store, event(10.0, 1000)).await;
    // Kept by an operator (a case file), after it was resolved.
    let kept = routed(store, event(100.0, 1000)).await;
    for action in [WorkflowAction::Resolve, WorkflowAction::Keep] {
        store
            .workflow_step(WorkflowStep {
                event_id: kept,
                action,
                by: "op".into(),
                assignee: None,
                note: None,
                at: ago(1.0),
            })
            .await
            .unwrap();
    }
    assert!(store.get_event(kept).await.unwrap().unwrap().keep);
    // The dispatcher has not routed its outbox row yet.
    let unrouted = store.insert_event(event(100.0, 1000)).await.unwrap();
    // Its alert has a delivery still pending.
    let undelivered = store.insert_event(event(100.0, 1000)).await.unwrap();
    let plan = AlertPlan {
        camera_id: "gate".into(),
        rule_key: "object:person".into(),
        flood_window: Duration::minutes(5),
        escalate_at: None,
        deliveries: vec![PlannedDelivery {
            channel: "duty".into(),
            officer: None,
        }],
    };
    store
        .route_event(undelivered, now(), Some(plan))
        .await
        .unwrap();
    // Still active (a camera offline for months).
    let active = routed(
        store,
        NewEvent {
            ended_at: None,
            ..event(100.0, 0)
        },
    )
    .await;

    store
        .insert_health_samples(vec![sample(500.0), sample(300.0)])
        .await
        .unwrap();
    store
        .record_crossings(vec![crossing(100.0), crossing(10.0)])
        .await
        .unwrap();
    store.audit(audit(400.0)).await.unwrap();
    store.audit(audit(100.0)).await.unwrap();

    let r = retention(store, RetentionPolicy::days(90, 400, 365));
    let pass = r.pass().await.unwrap();
    assert_eq!(pass.expired.events, 1, "{pass:?}");
    assert_eq!(pass.expired.snapshots, 1, "{pass:?}");
    assert_eq!(pass.expired.health_samples, 1, "{pass:?}");
    assert_eq!(pass.expired.line_crossings, 1, "{pass:?}");
    assert_eq!(pass.expired.audit, 1, "{pass:?}");
    assert!(!exists(store, old).await);
    for id in [recent, kept, unrouted, undelivered, active] {
        assert!(exists(store, id).await, "event {id} was removed");
    }
    assert!(has_snapshot(store, kept).await);
    assert_eq!(
        count(
            t,
            "SELECT COUNT(*) FROM alert_outbox WHERE processed_at IS NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            t,
            "SELECT COUNT(*) FROM alert_deliveries WHERE status = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(count(t, "SELECT COUNT(*) FROM health_samples").await, 1);
    assert_eq!(count(t, "SELECT COUNT(*) FROM line_crossings").await, 1);
    // The two audit lines of the keep mark, and the 100-day-old line.
    assert_eq!(count(t, "SELECT COUNT(*) FROM audit_log").await, 3);
    assert_counts_follow_events(t).await;

    // Nothing more to do; then the operator lets the case go.
    assert_eq!(r.pass().await.unwrap().expired.total(), 0);
    store
        .workflow_step(WorkflowStep {
            event_id: kept,
            action: WorkflowAction::Unkeep,
            by: "op".into(),
            assignee: None,
            note: None,
            at: ago(1.0),
        })
        .await
        .unwrap();
    assert_eq!(r.pass().await.unwrap().expired.events, 1);
    assert!(!exists(store, kept).await);
    assert_eq!(r.totals().removed()[0], ("events", 2));
    assert_counts_follow_events(t).await;
}

/// The hourly counts (`event_counts`, kept by triggers) lost what retention
/// removed.
async fn assert_counts_follow_events(t: &TestStore) {
    assert_eq!(
        count(
            t,
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM event_counts"
        )
        .await,
        count(t, "SELECT COUNT(*) FROM events").await
    );
}

async fn the_disk_budget_removes_the_oldest_snapshots_first_then_events_never_the_last_day(
    t: &TestStore,
) {
    let store = &*t.store;
    let dir = tempfile::tempdir().unwrap();
    const SNAPSHOT: usize = 20_000;
    // 300 events from 2 to 62 days ago (within the 90 days' retention), then
    // 20 in the last 12 hours.
    let mut old = Vec::new();
    for i in 0..300 {
        old.push(routed(store, event(62.0 - i as f64 * 0.2, SNAPSHOT)).await);
    }
    let mut last_day = Vec::new();
    for i in 0..20 {
        last_day.push(routed(store, event(0.5 - i as f64 * 0.02, SNAPSHOT)).await);
    }
    let policy = |budget: Option<u64>| RetentionPolicy {
        max_disk_bytes: budget,
        data_dir: Some(dir.path().to_owned()),
        ..RetentionPolicy::days(90, 400, 365)
    };
    // A pass without budget removes nothing and settles the files.
    let settled = retention(store, policy(None)).pass().await.unwrap();
    assert_eq!(settled.expired.total(), 0);
    let size = settled.disk_bytes_after;
    assert!(size >= 320 * SNAPSHOT as u64, "{size}");

    // 40 snapshots too many: one batch of the oldest snapshots goes, no event.
    let budget = size - 40 * SNAPSHOT as u64;
    let pass = retention(store, policy(Some(budget))).pass().await.unwrap();
    assert!(!pass.still_over_budget, "{pass:?}");
    assert_eq!(pass.over_budget.events, 0, "{pass:?}");
    let gone = pass.over_budget.snapshots as usize;
    assert!((40..=200).contains(&gone), "{pass:?}");
    for (i, id) in old.iter().enumerate() {
        assert!(exists(store, *id).await);
        assert_eq!(has_snapshot(store, *id).await, i >= gone, "event #{i}");
    }
    assert!(pass.disk_bytes_after <= budget, "{pass:?}");
    assert!(pass.reclaimed_bytes() >= 40 * SNAPSHOT as u64, "{pass:?}");

    // A budget nothing fits in: every old snapshot, then every old event
    // goes; the last day stays, snapshots and all.
    let pass = retention(store, policy(Some(1))).pass().await.unwrap();
    assert!(pass.still_over_budget, "{pass:?}");
    assert_eq!(pass.over_budget.events, 300, "{pass:?}");
    for id in &old {
        assert!(!exists(store, *id).await);
    }
    for id in &last_day {
        assert!(exists(store, *id).await && has_snapshot(store, *id).await);
    }
}

async fn the_disk_budget_removes_the_oldest_clips_before_any_snapshot(t: &TestStore) {
    let store = &*t.store;
    let dir = tempfile::tempdir().unwrap();
    const SNAPSHOT: usize = 20_000;
    const CLIP: usize = 200_000;
    let mut old = Vec::new();
    for i in 0..60 {
        let id = routed(store, event(30.0 - i as f64 * 0.2, SNAPSHOT)).await;
        assert!(store.put_clip(id, vec![7; CLIP], 12.5).await.unwrap());
        old.push(id);
    }
    let policy = |budget: Option<u64>| RetentionPolicy {
        max_disk_bytes: budget,
        data_dir: Some(dir.path().to_owned()),
        ..RetentionPolicy::days(90, 400, 365)
    };
    let size = retention(store, policy(None))
        .pass()
        .await
        .unwrap()
        .disk_bytes_after;
    assert!(size >= 60 * (SNAPSHOT + CLIP) as u64, "{size}");
    // 10 clips too many: only clips go, the oldest first; every snapshot stays.
    let budget = size - 10 * CLIP as u64;
    let pass = retention(store, policy(Some(budget))).pass().await.unwrap();
    assert!(!pass.still_over_budget, "{pass:?}");
    assert_eq!(
        (pass.over_budget.events, pass.over_budget.snapshots),
        (0, 0),
        "{pass:?}"
    );
    let gone = pass.over_budget.clips as usize;
    assert!((10..=60).contains(&gone), "{pass:?}");
    for (i, id) in old.iter().enumerate() {
        let e = store.get_event(*id).await.unwrap().unwrap();
        assert!(e.has_snapshot, "event #{i}");
        assert_eq!(e.clip.is_some(), i >= gone, "event #{i}");
        if i >= gone {
            assert_eq!(e.clip.unwrap().bytes, CLIP as u64);
            assert_eq!(store.clip(*id).await.unwrap().unwrap().len(), CLIP);
        }
    }
    // Deleting an event takes its clip with it.
    let r = retention(store, RetentionPolicy::days(1, 400, 365))
        .pass()
        .await
        .unwrap();
    assert_eq!(r.expired.events, 60, "{r:?}");
    assert_eq!(count(t, "SELECT COUNT(*) FROM clips").await, 0);
}
