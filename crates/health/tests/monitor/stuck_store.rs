//! A store write that waits (a full disk being retried) does not stop the
//! monitor: the cameras are still watched and their health published, and
//! the events are stored once the store takes writes again.

use chrono::{Duration, Utc};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use xueliang_core::{
    CameraHealth, CameraState, CameraStats, CameraStatus, Clock, Config, EventQuery, HealthReason,
    ManualClock,
};
use xueliang_health::{run_monitor, MonitorChange, MonitoredCamera};
use xueliang_store::testing::HeldInserts;
use xueliang_store::{EventStore, SqliteStore};

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
    let store = Arc::new(HeldInserts {
        inner: SqliteStore::open(&url).await.unwrap(),
        camera: None,
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
