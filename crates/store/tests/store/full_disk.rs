//! A full disk, for real: the store's directory is an 8 MiB tmpfs mounted by
//! the test (needs root; the test fails, never skips, when it cannot mount),
//! filled up by the writer itself until SQLite answers `SQLITE_FULL`.

use chrono::Utc;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xueliang_core::{EventKind, EventQuery, EventUpdate, NewEvent};
use xueliang_store::{EventStore, EventWriter, SqliteStore, TroubleKind};

/// A size-limited tmpfs, unmounted on drop (then its directory goes).
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            &path,
        );
        Tmpfs(path, dir)
    }

    fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], &self.0);
    }
}

fn mount(args: &[&str], at: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .expect("cannot run mount");
    assert!(
        out.status.success(),
        "this test needs root to mount a tmpfs (mount {args:?} {}): {}",
        at.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const EVENTS: u64 = 40;
const SNAPSHOT: usize = 256 * 1024;

fn event(i: u64) -> NewEvent {
    let at = Utc::now();
    NewEvent {
        camera_id: "gate".into(),
        kind: EventKind::Object,
        label: "person".into(),
        score: 0.9,
        started_at: at,
        ended_at: Some(at),
        detail: Some(format!("event {i}")),
        frame_width: 768,
        frame_height: 576,
        snapshot: Some((0..SNAPSHOT).map(|b| (b as u64 * 7 + i) as u8).collect()),
        ..Default::default()
    }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_nothing_in_flight_and_is_reported_once_space_returns() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,sqlx=warn")
        .with_test_writer()
        .try_init();
    let fs = Tmpfs::mount("8m");
    let store = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", fs.0.join("x.db").display()))
            .await
            .unwrap(),
    );
    // 40 events of 256 KiB: 10 MiB, more than the 8 MiB there is.
    let mut writer = EventWriter::new(store.clone());
    let writing = tokio::spawn(async move {
        for i in 0..EVENTS {
            writer
                .apply(
                    0,
                    EventUpdate::Started {
                        key: i,
                        event: event(i),
                    },
                )
                .await;
        }
    });
    wait_for("the disk to fill up", Duration::from_secs(60), || {
        store
            .health()
            .current()
            .is_some_and(|t| t.kind == TroubleKind::Full)
    })
    .await;
    let trouble = store.health().current().unwrap();
    assert!(trouble.reason.contains("full"), "{trouble:?}");
    // The writer waits with the event in hand rather than dropping it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!writing.is_finished(), "the writer gave up on a full disk");

    // Space returns.
    fs.resize("64m");
    tokio::time::timeout(Duration::from_secs(60), writing)
        .await
        .expect("the writer did not finish after space returned")
        .unwrap();
    assert_eq!(store.health().current(), None);
    let events = store.list_events(query()).await.unwrap();
    let objects: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Object)
        .collect();
    assert_eq!(objects.len() as u64, EVENTS, "events in flight were lost");
    for e in &objects {
        assert!(e.has_snapshot);
    }
    let full: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::StoreFull)
        .collect();
    assert_eq!(full.len(), 1, "{full:?}");
    assert!(full[0].ended_at.is_some());
    assert!(
        full[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("disk was full"),
        "{:?}",
        full[0].detail
    );
}

fn query() -> EventQuery {
    EventQuery {
        limit: 500,
        ..Default::default()
    }
}

/// Writes a file of zeros until the disk refuses more.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("cannot fill the disk: {e}"),
        }
    }
    // The last bytes: fill the final partial block too.
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_disk_full_a_stored_event_is_read_and_its_alert_delivered() {
    use xueliang_store::alerts::{AlertPlan, AttemptOutcome, AttemptRecord, Busy, PlannedDelivery};
    use xueliang_store::AlertStore;
    let fs = Tmpfs::mount("16m");
    let store = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", fs.0.join("x.db").display()))
            .await
            .unwrap(),
    );
    let reserve = fs.0.join("x.db.reserve");
    assert_eq!(
        std::fs::metadata(&reserve).unwrap().len() as usize,
        xueliang_store::RESERVE_BYTES
    );
    let stored = store.insert_event(event(0)).await.unwrap();
    fill(&fs.0.join("filler"));
    // An event in flight meets the full disk: the writer deletes the
    // reserve and the event is stored in the room it left.
    let mut writer = EventWriter::new(store.clone());
    let in_flight = EventUpdate::Started {
        key: 1,
        event: event(1),
    };
    tokio::time::timeout(Duration::from_secs(30), writer.apply(0, in_flight))
        .await
        .expect("the event in flight was not stored in the reserve's room");
    assert!(!reserve.exists());
    let trouble = store.health().current().expect("not degraded");
    assert_eq!(trouble.kind, TroubleKind::Full);
    // Writes too big for any room fail and their connections are closed:
    // every pooled connection is a fresh one after this.
    for _ in 0..8 {
        let huge = NewEvent {
            snapshot: Some(vec![7u8; 2 * xueliang_store::RESERVE_BYTES]),
            ..event(2)
        };
        let e = store.insert_event(huge).await.unwrap_err();
        assert!(e.is_full(), "{e}");
    }
    // The stored event is read and its alert routed and delivered.
    let got = store.get_event(stored).await.unwrap().unwrap();
    assert_eq!(got.id, stored);
    let waiting = store.waiting_outbox(10).await.unwrap();
    assert!(waiting.contains(&stored), "{waiting:?}");
    let plan = AlertPlan {
        camera_id: "gate".into(),
        rule_key: "object:person".into(),
        flood_window: chrono::Duration::minutes(5),
        escalate_at: None,
        deliveries: vec![PlannedDelivery {
            channel: "duty".into(),
            officer: None,
        }],
    };
    store
        .route_event(stored, Utc::now(), Some(plan))
        .await
        .unwrap();
    let due = store
        .due_deliveries(
            Utc::now() + chrono::Duration::seconds(1),
            10,
            &Busy::default(),
        )
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    store
        .record_attempt(AttemptRecord {
            delivery_id: due[0].id,
            at: Utc::now(),
            duration_ms: 5,
            outcome: AttemptOutcome::Ok,
            error: None,
            retry_at: None,
        })
        .await
        .unwrap();
    // Writes succeed in the reserve's room, yet the disk is still full.
    assert!(store.health().succeeded().is_none());
    assert!(store.health().current().is_some());

    // Space returns: the reserve is made again and the stretch ends.
    std::fs::remove_file(fs.0.join("filler")).unwrap();
    let mut ended = None;
    let start = Instant::now();
    while ended.is_none() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ended = store.health().succeeded();
    }
    assert_eq!(ended.map(|t| t.kind), Some(TroubleKind::Full));
    assert!(reserve.exists());
}
