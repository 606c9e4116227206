//! `copy_sqlite_to_postgres` (`xueliang migrate`) on a populated SQLite
//! database: every table's rows arrive with their ids, the copy reads back
//! through the store the same as the original, new rows continue after the
//! copied ids, and a target that already holds rows is refused untouched.

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use xueliang_core::{
    AvailabilityGroup, Bucket, CameraState, Crossing, Direction, EventKind, EventQuery,
    HealthSample, NewAuditEntry, NewEvent, NewUser, Role, TokenKind, WorkflowAction, WorkflowStep,
};
use xueliang_store::alerts::{AlertPlan, AttemptOutcome, AttemptRecord, Busy, PlannedDelivery};
use xueliang_store::copy::{copy_sqlite_to_postgres, TABLES};
use xueliang_store::testing::{TestBackend, TestDatabase, TestStore};
use xueliang_store::{EventStore, NewToken, PgStore, SqliteStore, Store, StoreError};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap()
}

/// A site with a bit of everything: events (with pictures and a clip) of
/// two cameras, an alert with a delivery and attempts, a workflow, users
/// and a token, audit lines, crossings, health samples, cameras.
async fn populate(store: &dyn Store) -> String {
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = store
            .insert_event(NewEvent {
                camera_id: if i % 2 == 0 { "gate" } else { "school" }.into(),
                village: Some("东村".into()),
                grid: Some("一网格".into()),
                kind: EventKind::Object,
                label: "person".into(),
                score: 0.5 + i as f32 / 100.0,
                started_at: t0() + Duration::minutes(i),
                ended_at: Some(t0() + Duration::minutes(i) + Duration::seconds(9)),
                frame_width: 768,
                frame_height: 576,
                snapshot: Some(vec![i as u8; 3000 + i as usize]),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(id);
    }
    assert!(store.put_clip(ids[3], vec![9; 70_000], 14.5).await.unwrap());
    let plan = AlertPlan {
        camera_id: "gate".into(),
        rule_key: "object:person".into(),
        flood_window: Duration::minutes(5),
        escalate_at: Some(t0() + Duration::minutes(10)),
        deliveries: vec![PlannedDelivery {
            channel: "duty".into(),
            officer: Some("li".into()),
        }],
    };
    store.route_event(ids[0], t0(), Some(plan)).await.unwrap();
    for id in &ids[1..20] {
        store.route_event(*id, t0(), None).await.unwrap();
    }
    let due = store
        .due_deliveries(t0() + Duration::hours(1), 10, &Busy::default())
        .await
        .unwrap();
    store
        .record_attempt(AttemptRecord {
            delivery_id: due[0].id,
            at: t0(),
            duration_ms: 120,
            outcome: AttemptOutcome::Retriable,
            error: Some("receiver down".into()),
            retry_at: Some(t0() + Duration::minutes(1)),
        })
        .await
        .unwrap();
    store
        .workflow_step(WorkflowStep {
            event_id: ids[5],
            action: WorkflowAction::Keep,
            by: "op".into(),
            assignee: None,
            note: Some("案卷".into()),
            at: t0(),
        })
        .await
        .unwrap();
    let user = store
        .create_user(NewUser {
            username: "zhang".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: Role::Operator,
            villages: vec!["东村".into()],
        })
        .await
        .unwrap();
    store
        .insert_token(NewToken {
            user_id: user.id,
            kind: TokenKind::Api,
            name: "county platform".into(),
            token_hash: "ab".repeat(32),
            expires_at: None,
        })
        .await
        .unwrap();
    store
        .audit(NewAuditEntry {
            at: t0(),
            user: "admin".into(),
            action: "camera.update".into(),
            target_kind: "camera".into(),
            target_id: "gate".into(),
            detail: json!({"name": "东门"}),
        })
        .await
        .unwrap();
    store
        .record_crossings(vec![Crossing {
            camera_id: "gate".into(),
            line: "door".into(),
            direction: Direction::Forward,
            label: "person".into(),
            at: t0(),
        }])
        .await
        .unwrap();
    store
        .insert_health_samples(vec![HealthSample {
            camera_id: "gate".into(),
            village: Some("东村".into()),
            grid: None,
            at: t0(),
            state: CameraState::Online,
            interval_ms: 60_000,
        }])
        .await
        .unwrap();
    store
        .put_camera("yard", &json!({"id": "yard", "url": "rtsp://h/yard"}), t0())
        .await
        .unwrap();
    store.delete_camera("old", t0()).await.unwrap();
    "ab".repeat(32)
}

/// What the API would show of a store, as JSON for comparing.
async fn view(store: &dyn Store, token_hash: &str) -> serde_json::Value {
    let events = store
        .list_events(EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut pictures = Vec::new();
    for e in &events {
        pictures.push(store.snapshot(e.id).await.unwrap());
    }
    let first = events.last().unwrap().id;
    let alert = store.alert_of_event(first).await.unwrap().unwrap();
    json!({
        "events": serde_json::to_value(&events).unwrap(),
        "pictures": pictures,
        "clip": store.clip(events[events.len() - 4].id).await.unwrap(),
        "alert": format!("{alert:?}"),
        "deliveries": format!("{:?}", store.deliveries(alert.id).await.unwrap()),
        "users": format!("{:?}", store.list_users().await.unwrap()),
        "token": format!("{:?}", store.authenticate(token_hash.to_owned(), t0()).await.unwrap()),
        "audit": format!("{:?}", store.list_audit(None, None, 100).await.unwrap()),
        "crossings": format!("{:?}", store
            .crossing_counts(None, None, t0() - Duration::days(1), t0() + Duration::days(1), Bucket::Day)
            .await
            .unwrap()),
        "online": format!("{:?}", store
            .availability(t0() - Duration::days(1), t0() + Duration::days(1), AvailabilityGroup::Village)
            .await
            .unwrap()),
        "cameras": format!("{:?}", store.list_cameras().await.unwrap()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_sqlite_store_arrives_whole_in_postgres() {
    let source = TestStore::new(TestBackend::Sqlite).await;
    let token_hash = populate(&*source.store).await;
    let db = TestDatabase::create().await;
    let target = PgStore::open(&db.url).await.unwrap();
    let sqlite = SqliteStore::open(&source.url).await.unwrap();

    let mut reported = Vec::new();
    let copied = copy_sqlite_to_postgres(&sqlite, &target, |t, n| reported.push((t.to_owned(), n)))
        .await
        .unwrap();
    assert_eq!(copied.len(), TABLES.len());
    let rows = |table: &str| copied.iter().find(|(t, _)| *t == table).unwrap().1;
    assert_eq!(rows("events"), 30);
    assert_eq!(rows("snapshots"), 30);
    assert_eq!(rows("clips"), 1);
    assert_eq!(rows("alert_outbox"), 30);
    assert_eq!(
        (
            rows("alerts"),
            rows("alert_deliveries"),
            rows("alert_attempts")
        ),
        (1, 1, 1)
    );
    assert_eq!((rows("users"), rows("tokens")), (1, 1));
    assert_eq!(rows("audit_log"), 2, "the line written and the keep step's");
    assert_eq!(rows("cameras"), 2, "a definition and a tombstone");
    assert_eq!(reported.len(), TABLES.len());

    assert_eq!(
        view(&*source.store, &token_hash).await,
        view(&target, &token_hash).await,
        "the copy reads back as the original"
    );
    // New rows continue after the copied ids.
    let events = target
        .list_events(EventQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let next = target
        .insert_event(NewEvent {
            camera_id: "gate".into(),
            kind: EventKind::Object,
            label: "car".into(),
            started_at: t0(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next, events[0].id + 1);

    // A second copy into the same (now full) database is refused and
    // changes nothing.
    let err = copy_sqlite_to_postgres(&sqlite, &target, |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("`events`"), "{err}");
    let after = target
        .list_events(EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after.len(), 31);
}
