//! Several nodes on one PostgreSQL database: two `PgStore::open` of the same
//! database are two nodes. Each node's live feed carries every node's event
//! changes, its own once; one node's alert dispatcher leads at a time.

use chrono::{TimeZone, Utc};
use std::time::Duration;
use tokio::sync::broadcast;
use xueliang_core::{ChangeKind, EventChange, EventKind, NewEvent, WorkflowAction, WorkflowStep};
use xueliang_store::testing::TestDatabase;
use xueliang_store::{AccessStore, AlertStore, EventStore, PgStore};

/// How long another node's change may take to arrive.
const ARRIVES_WITHIN: Duration = Duration::from_secs(2);

fn event(camera: &str) -> NewEvent {
    NewEvent {
        camera_id: camera.into(),
        village: None,
        grid: None,
        kind: EventKind::Object,
        label: "person".into(),
        score: 0.6,
        started_at: Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap(),
        ended_at: None,
        detail: None,
        zone: None,
        rule: None,
        object_id: None,
        frame_width: 704,
        frame_height: 576,
        boxes: Vec::new(),
        snapshot: Some(vec![0xff, 0xd8, 0xff, 0xd9]),
    }
}

/// The next change on `rx`, within [`ARRIVES_WITHIN`].
async fn next(rx: &mut broadcast::Receiver<EventChange>, what: &str) -> (i64, ChangeKind) {
    match tokio::time::timeout(ARRIVES_WITHIN, rx.recv()).await {
        Ok(Ok(c)) => (c.id, c.change),
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: nothing within {ARRIVES_WITHIN:?}"),
    }
}

/// The store's log in the test's output (`--nocapture` shows it).
fn log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,sqlx=warn")
        .with_test_writer()
        .try_init();
}

/// Nothing more on `rx` for a while (a change heard twice would be here).
async fn quiet(rx: &mut broadcast::Receiver<EventChange>, what: &str) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        panic!("{what}: unexpected {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_sees_every_nodes_changes_and_its_own_once() {
    let db = TestDatabase::create().await;
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();

    let id = a.insert_event(event("gate")).await.unwrap();
    assert_eq!(
        next(&mut on_b, "A's insert on B").await,
        (id, ChangeKind::Started)
    );
    assert_eq!(
        next(&mut on_a, "A's insert on A").await,
        (id, ChangeKind::Started)
    );

    a.improve_event(id, 0.9, Vec::new(), Some(vec![0xff, 0xd8, 0xff, 0xd9]))
        .await
        .unwrap();
    assert_eq!(
        next(&mut on_b, "A's improve on B").await,
        (id, ChangeKind::Improved)
    );
    a.end_event(id, Utc::now(), 0.9, Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        next(&mut on_b, "A's end on B").await,
        (id, ChangeKind::Ended)
    );
    assert!(a.put_clip(id, vec![0; 16], 1.0).await.unwrap());
    assert_eq!(
        next(&mut on_b, "A's clip on B").await,
        (id, ChangeKind::Updated)
    );
    // No clip for an event that is not there: nothing to tell.
    assert!(!a.put_clip(id + 100, vec![0; 16], 1.0).await.unwrap());
    let step = WorkflowStep {
        event_id: id,
        action: WorkflowAction::Acknowledge,
        by: "op".into(),
        assignee: None,
        note: None,
        at: Utc::now(),
    };
    a.workflow_step(step).await.unwrap();
    assert_eq!(
        next(&mut on_b, "A's workflow step on B").await,
        (id, ChangeKind::Updated)
    );
    quiet(&mut on_b, "B after A's changes").await;

    // A heard its own changes once each, from itself.
    for kind in [
        ChangeKind::Improved,
        ChangeKind::Ended,
        ChangeKind::Updated,
        ChangeKind::Updated,
    ] {
        assert_eq!(next(&mut on_a, "A's own change").await, (id, kind));
    }
    quiet(&mut on_a, "A after its own changes").await;

    // And the other way round.
    let other = b.insert_event(event("river")).await.unwrap();
    assert_eq!(
        next(&mut on_a, "B's insert on A").await,
        (other, ChangeKind::Started)
    );
    assert_eq!(
        next(&mut on_b, "B's insert on B").await,
        (other, ChangeKind::Started)
    );
    quiet(&mut on_a, "A after B's insert").await;
    quiet(&mut on_b, "B after its own insert").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_listens_again_after_its_connection_is_killed() {
    log();
    let db = TestDatabase::create().await;
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let mut on_b = b.subscribe();
    let first = a.insert_event(event("gate")).await.unwrap();
    assert_eq!(
        next(&mut on_b, "before the kill").await,
        (first, ChangeKind::Started)
    );

    // The server ends both nodes' listening sessions (as a restart or a
    // network failure would).
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(
        &mut <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(killed, [true, true], "both nodes listen");

    // Changes made while B's listener is away are lost to its feed; keep
    // writing until one arrives.
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "B never listened again"
        );
        let id = a.insert_event(event("gate")).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(300), on_b.recv()).await {
            Ok(Ok(c)) => {
                assert_eq!((c.id, c.change), (id, ChangeKind::Started));
                break;
            }
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_leads_and_another_takes_over_when_it_goes() {
    log();
    let db = TestDatabase::create().await;
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let mut lead_a = a.leadership();
    assert!(lead_a.leads().await, "the first node to ask leads");
    let mut lead_b = b.leadership();
    assert!(!lead_b.leads().await, "the second stands by");
    // Still so a few checks later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(lead_a.leads_now() && !lead_b.leads_now());

    // A goes without closing anything (its process died): its session ends,
    // which frees the lock.
    drop(lead_a);
    drop(a);
    let start = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(15), async {
        while !lead_b.leads_now() {
            lead_b.changed().await;
        }
    })
    .await
    .expect("B leads within 15 s of A going");
    // Not at once: B waited for A to notice it lost (had it lived on).
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // A node that closes its store leaves the election at once.
    let c = PgStore::open(&db.url).await.unwrap();
    let mut lead_c = c.leadership();
    assert!(!lead_c.leads().await);
    b.close().await;
    tokio::time::timeout(Duration::from_secs(1), async {
        while lead_b.leads_now() {
            lead_b.changed().await;
        }
    })
    .await
    .expect("a closed store stops leading");
    tokio::time::timeout(Duration::from_secs(15), async {
        while !lead_c.leads_now() {
            lead_c.changed().await;
        }
    })
    .await
    .expect("C leads within 15 s of B closing");
}
