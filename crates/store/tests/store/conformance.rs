//! The store's contract, written once against the trait and run against every
//! backend: the embedded SQLite on a real file, and PostgreSQL.

use chrono::{DateTime, Duration, TimeZone, Utc};
use xueliang_core::{
    AvailabilityGroup, BoxRecord, CameraState, EventKind, EventQuery, EventStatus, HealthSample,
    NewEvent,
};
use xueliang_store::{EventStore, SqliteStore, MAX_PAGE};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

fn event(camera: &str, label: &str, at: DateTime<Utc>, snapshot: bool) -> NewEvent {
    NewEvent {
        camera_id: camera.into(),
        village: Some("东村".into()),
        grid: Some("一网格".into()),
        kind: EventKind::Object,
        label: label.into(),
        score: 0.8,
        started_at: at,
        ended_at: None,
        detail: None,
        zone: None,
        rule: None,
        object_id: None,
        frame_width: 768,
        frame_height: 576,
        boxes: vec![BoxRecord {
            label: label.into(),
            score: 0.8,
            x1: 1.0,
            y1: 2.0,
            x2: 30.5,
            y2: 60.0,
        }],
        snapshot: snapshot.then(|| vec![0xff, 0xd8, 0xff, 0xd9]),
    }
}

fn query() -> EventQuery {
    EventQuery {
        limit: 100,
        ..Default::default()
    }
}

async fn roundtrip(store: &dyn EventStore) {
    let id = store
        .insert_event(event("east-gate", "person", t0(), true))
        .await
        .unwrap();
    let e = store.get_event(id).await.unwrap().expect("stored");
    assert_eq!(e.camera_id, "east-gate");
    assert_eq!(e.village.as_deref(), Some("东村"));
    assert_eq!(e.kind, EventKind::Object);
    assert_eq!(e.started_at, t0());
    assert_eq!(e.ended_at, None);
    assert_eq!(e.status, EventStatus::Active);
    assert_eq!((e.frame_width, e.frame_height), (768, 576));
    assert_eq!(e.boxes[0].x2, 30.5);
    assert!(e.has_snapshot);
    assert_eq!(
        store.snapshot(id).await.unwrap().unwrap(),
        vec![0xff, 0xd8, 0xff, 0xd9]
    );

    let end = t0() + Duration::seconds(9);
    let best = vec![BoxRecord {
        label: "person".into(),
        score: 0.95,
        x1: 3.0,
        y1: 4.0,
        x2: 5.0,
        y2: 6.0,
    }];
    let track = vec![xueliang_core::TrackPoint {
        at: t0(),
        x1: 1.0,
        y1: 2.0,
        x2: 3.0,
        y2: 4.0,
    }];
    store
        .end_event(id, end, 0.95, best.clone(), track.clone())
        .await
        .unwrap();
    assert_eq!(store.get_event(id).await.unwrap().unwrap().track, track);
    let e = store.get_event(id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.ended_at, e.score, e.boxes),
        (EventStatus::Ended, Some(end), 0.95, best)
    );

    let plain = store
        .insert_event(event("east-gate", "car", t0(), false))
        .await
        .unwrap();
    assert!(!store.get_event(plain).await.unwrap().unwrap().has_snapshot);
    assert_eq!(store.snapshot(plain).await.unwrap(), None);
    assert_eq!(store.get_event(999_999).await.unwrap(), None);
}

async fn filters(store: &dyn EventStore) {
    for (i, (cam, label)) in [
        ("a", "person"),
        ("a", "car"),
        ("b", "person"),
        ("b", "person"),
    ]
    .iter()
    .enumerate()
    {
        store
            .insert_event(event(cam, label, t0() + Duration::minutes(i as i64), false))
            .await
            .unwrap();
    }
    let ids = |v: Vec<xueliang_core::Event>| {
        v.into_iter()
            .map(|e| (e.camera_id, e.label))
            .collect::<Vec<_>>()
    };
    let q = EventQuery {
        camera_id: Some("b".into()),
        ..query()
    };
    assert_eq!(store.list_events(q).await.unwrap().len(), 2);
    let q = EventQuery {
        label: Some("car".into()),
        ..query()
    };
    assert_eq!(
        ids(store.list_events(q).await.unwrap()),
        vec![("a".into(), "car".into())]
    );
    // since is inclusive, until exclusive: minutes 1 and 2.
    let q = EventQuery {
        since: Some(t0() + Duration::minutes(1)),
        until: Some(t0() + Duration::minutes(3)),
        ..query()
    };
    assert_eq!(
        ids(store.list_events(q).await.unwrap()),
        vec![("b".into(), "person".into()), ("a".into(), "car".into())]
    );
    let q = EventQuery {
        village: Some("西村".into()),
        ..query()
    };
    assert!(store.list_events(q).await.unwrap().is_empty());
    let q = EventQuery {
        status: Some(EventStatus::Ended),
        ..query()
    };
    assert!(store.list_events(q).await.unwrap().is_empty());
    assert_eq!(
        store
            .end_orphaned_events(Some("nobody".into()), t0() + Duration::hours(1))
            .await
            .unwrap(),
        0,
        "another camera's events stay"
    );
    assert_eq!(
        store
            .end_orphaned_events(None, t0() + Duration::hours(1))
            .await
            .unwrap(),
        4
    );
    let q = EventQuery {
        status: Some(EventStatus::Active),
        ..query()
    };
    assert!(store.list_events(q).await.unwrap().is_empty());
}

async fn pagination(store: &dyn EventStore) {
    for i in 0..25 {
        store
            .insert_event(event("p", "person", t0() + Duration::seconds(i), false))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_events(EventQuery {
                camera_id: Some("p".into()),
                before_id: cursor,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 10);
        seen.extend(page.iter().map(|e| e.id));
        if page.len() < 10 {
            break;
        }
        cursor = page.last().map(|e| e.id);
    }
    assert_eq!(seen.len(), 25);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );
    let all = store
        .list_events(EventQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.len() <= MAX_PAGE as usize + 1);
}

async fn health_events_and_availability(store: &dyn EventStore) {
    // A health event that is over when recorded, with words.
    let mut e = event("a", xueliang_core::HEALTH_LABEL, t0(), false);
    e.kind = EventKind::CameraRecovered;
    e.ended_at = Some(t0());
    e.detail = Some("offline for 5 min".into());
    let id = store.insert_event(e).await.unwrap();
    let got = store.get_event(id).await.unwrap().unwrap();
    assert_eq!(
        (got.kind, got.status, got.ended_at),
        (EventKind::CameraRecovered, EventStatus::Ended, Some(t0()))
    );
    assert_eq!(got.detail.as_deref(), Some("offline for 5 min"));
    let q = EventQuery {
        kind: Some(EventKind::CameraRecovered),
        ..query()
    };
    assert_eq!(store.list_events(q).await.unwrap().len(), 1);

    // Camera a online 3 of 4 minutes, b (other village) offline all 4; one
    // sample outside the range.
    let sample = |cam: &str, village: &str, minute: i64, state| HealthSample {
        camera_id: cam.into(),
        village: Some(village.into()),
        grid: None,
        at: t0() + Duration::minutes(minute),
        state,
        interval_ms: 60_000,
    };
    let mut samples = Vec::new();
    for m in 1..=4 {
        samples.push(sample(
            "a",
            "东村",
            m,
            if m == 2 {
                CameraState::Offline
            } else if m == 3 {
                CameraState::Degraded
            } else {
                CameraState::Online
            },
        ));
        samples.push(sample("b", "西村", m, CameraState::Offline));
    }
    samples.push(sample("a", "东村", 10, CameraState::Offline));
    store.insert_health_samples(samples).await.unwrap();
    let (from, to) = (t0(), t0() + Duration::minutes(5));
    let rows = store
        .availability(from, to, AvailabilityGroup::Camera)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].key.as_deref(), Some("a"));
    assert!((rows[0].online_rate - 0.75).abs() < 1e-9, "{rows:?}");
    assert_eq!(rows[0].sampled_s, 240.0);
    assert_eq!(rows[1].online_rate, 0.0);
    let rows = store
        .availability(from, to, AvailabilityGroup::Village)
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.key.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["东村", "西村"]
    );
    let rows = store
        .availability(from, to, AvailabilityGroup::Township)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].key.clone(), rows[0].cameras), (None, 2));
    assert!((rows[0].online_rate - 3.0 / 8.0).abs() < 1e-9);
    let empty = store
        .availability(
            t0() + Duration::days(1),
            t0() + Duration::days(2),
            AvailabilityGroup::Township,
        )
        .await
        .unwrap();
    assert!(empty.is_empty());
}

async fn rules_and_crossings(store: &dyn EventStore) {
    use xueliang_core::{Bucket, Crossing, Direction};
    let mut e = event("bridge-cam", "person", t0(), true);
    e.kind = EventKind::Intrusion;
    e.zone = Some("yard".into());
    e.rule = Some("night".into());
    e.object_id = Some(42);
    let id = store.insert_event(e).await.unwrap();
    let q = EventQuery {
        zone: Some("yard".into()),
        rule: Some("night".into()),
        ..query()
    };
    let found = store.list_events(q).await.unwrap();
    assert_eq!((found.len(), found[0].object_id), (1, Some(42)));
    assert!(store
        .list_events(EventQuery {
            zone: Some("gate".into()),
            ..query()
        })
        .await
        .unwrap()
        .is_empty());
    // A better picture replaces score, boxes and snapshot.
    let better = vec![BoxRecord {
        label: "person".into(),
        score: 0.97,
        x1: 5.0,
        y1: 5.0,
        x2: 9.0,
        y2: 9.0,
    }];
    store
        .improve_event(id, 0.97, better.clone(), Some(vec![1, 2, 3]))
        .await
        .unwrap();
    let got = store.get_event(id).await.unwrap().unwrap();
    assert_eq!((got.score, got.boxes), (0.97, better));
    assert_eq!(store.snapshot(id).await.unwrap(), Some(vec![1, 2, 3]));

    let crossing = |minute: i64, direction| Crossing {
        camera_id: "bridge-cam".into(),
        line: "bridge".into(),
        direction,
        label: "person".into(),
        at: t0() + Duration::minutes(minute),
    };
    store
        .record_crossings(vec![
            crossing(1, Direction::Forward),
            crossing(2, Direction::Forward),
            crossing(3, Direction::Backward),
            crossing(61, Direction::Forward),
        ])
        .await
        .unwrap();
    let counts = store
        .crossing_counts(
            Some("bridge-cam".into()),
            None,
            t0(),
            t0() + Duration::hours(2),
            Bucket::Hour,
        )
        .await
        .unwrap();
    let got: Vec<(i64, &str, u64)> = counts
        .iter()
        .map(|c| {
            (
                (c.bucket_start - t0()).num_minutes(),
                c.direction.as_str(),
                c.count,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, "backward", 1), (0, "forward", 2), (60, "forward", 1)]
    );
    let none = store
        .crossing_counts(
            Some("other".into()),
            None,
            t0(),
            t0() + Duration::hours(2),
            Bucket::Day,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

on_both_backends!(
    roundtrip,
    filters,
    health_events_and_availability,
    rules_and_crossings,
    pagination
);

async fn sqlite_store(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    SqliteStore::open(&url).await.unwrap()
}

#[tokio::test]
async fn sqlite_events_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let id = sqlite_store(&dir)
        .await
        .insert_event(event("a", "person", t0(), true))
        .await
        .unwrap();
    let again = sqlite_store(&dir).await;
    assert_eq!(again.get_event(id).await.unwrap().unwrap().camera_id, "a");
}

#[tokio::test]
async fn sqlite_unopenable_path_is_a_clear_error() {
    let err = SqliteStore::open("sqlite:///nonexistent-dir/x/events.db")
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent-dir/x/events.db"), "{msg}");
}

#[tokio::test]
async fn postgres_events_survive_reconnecting() {
    let db = xueliang_store::testing::TestDatabase::create().await;
    let id = xueliang_store::PgStore::open(&db.url)
        .await
        .unwrap()
        .insert_event(event("a", "person", t0(), true))
        .await
        .unwrap();
    let again = xueliang_store::PgStore::open(&db.url).await.unwrap();
    let e = again.get_event(id).await.unwrap().unwrap();
    assert_eq!(e.camera_id, "a");
    assert!(e.has_snapshot);
    assert_eq!(
        again.snapshot(id).await.unwrap().unwrap(),
        [0xff, 0xd8, 0xff, 0xd9]
    );
}

/// The store plans on its connections as for an SSD (a listing by review
/// state takes its index, not the whole primary key), unless the URL says
/// otherwise.
#[tokio::test]
async fn postgres_connections_plan_for_ssds_unless_the_url_says() {
    use xueliang_store::testing::postgres_setting;
    let db = xueliang_store::testing::TestDatabase::create().await;
    let store = xueliang_store::PgStore::open(&db.url).await.unwrap();
    assert_eq!(postgres_setting(&store, "random_page_cost").await, "1.1");
    let own = format!("{}?options=-c%20random_page_cost%3D3", db.url);
    let store = xueliang_store::PgStore::open(&own).await.unwrap();
    assert_eq!(postgres_setting(&store, "random_page_cost").await, "3");
}

#[tokio::test]
async fn postgres_unreachable_server_is_a_clear_error_without_the_password() {
    let err = xueliang_store::PgStore::open("postgres://xl:s3cret@127.0.0.1:1/xueliang")
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1/xueliang"), "{msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}
