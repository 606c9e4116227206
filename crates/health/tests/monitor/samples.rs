//! The online-rate samples of a fresh start: the report has data within
//! seconds, not after the first full `sample_interval_s`.

use chrono::{Duration, Utc};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use xueliang_core::{
    AvailabilityGroup, AvailabilityRow, CameraHealth, CameraState, CameraStats, CameraStatus,
    Config, ManualClock,
};
use xueliang_health::{run_monitor, MonitorChange, MonitoredCamera, FIRST_SAMPLE_AFTER};
use xueliang_store::{EventStore, SqliteStore};

/// The report's rows once `ok` holds for them (the monitor ticks once a
/// real second), or after 10 s.
async fn report_when(
    store: &SqliteStore,
    t0: chrono::DateTime<Utc>,
    ok: impl Fn(&[AvailabilityRow]) -> bool,
) -> Vec<AvailabilityRow> {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = store
            .availability(
                t0 - Duration::hours(1),
                t0 + Duration::hours(1),
                AvailabilityGroup::Camera,
            )
            .await
            .unwrap();
        if ok(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_fresh_start_is_in_the_availability_report_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("h.db").display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let t0 = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let (changes, rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    // The default interval: one minute.
    let monitor = tokio::spawn(run_monitor(
        rx,
        store.clone(),
        clock.clone(),
        std::time::Duration::from_secs(60),
        shutdown.clone(),
    ));
    let config = Config::parse(
        "[[cameras]]\nid = \"gate\"\nname = \"G\"\nurl = \"rtsp://127.0.0.1:9/g\"\nvillage = \"东村\"\n",
    )
    .unwrap();
    let (_status_tx, status) = watch::channel(CameraStatus::new(CameraState::Online, t0));
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
    // The monitor runs and watches the camera (it publishes its health).
    tokio::time::timeout(std::time::Duration::from_secs(10), published.changed())
        .await
        .unwrap()
        .unwrap();

    // Simulated time moves past the first sample, well inside the first minute.
    assert!(FIRST_SAMPLE_AFTER < std::time::Duration::from_secs(60));
    clock.advance(Duration::from_std(FIRST_SAMPLE_AFTER).unwrap() + Duration::seconds(1));
    let rows = report_when(&store, t0, |rows| !rows.is_empty()).await;
    assert_eq!(rows.len(), 1, "no sample in the first seconds: {rows:?}");
    assert_eq!(rows[0].key.as_deref(), Some("gate"));
    assert!(rows[0].sampled_s >= 10.0, "{rows:?}");

    // The next sample comes a full interval later, not every few seconds.
    clock.advance(Duration::seconds(30));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let rows = report_when(&store, t0, |_| true).await;
    assert!(rows[0].sampled_s < 20.0, "sampled again too soon: {rows:?}");
    clock.advance(Duration::seconds(31));
    let rows = report_when(&store, t0, |rows| rows[0].sampled_s >= 70.0).await;
    assert!(rows[0].sampled_s >= 70.0, "no second sample: {rows:?}");
    shutdown.cancel();
    monitor.await.unwrap();
}
