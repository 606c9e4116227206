//! The worker's reconnect delays come from the shared retry policy: against a
//! port where nobody listens, sessions start after delays that grow from
//! `initial` and stop growing at `max`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use xueliang_core::{
    CameraRef, CameraState, CameraStats, CameraStatus, Config, EncodedFrame, FrameSink,
    PushOutcome, RetryPolicy,
};
use xueliang_ingest::{CameraWorker, IngestSettings, RtspSource};

/// Records when each session starts (the worker resets its sink then).
#[derive(Default)]
struct SessionStarts(Mutex<Vec<Instant>>);

impl SessionStarts {
    fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl FrameSink for SessionStarts {
    fn push(&self, _frame: EncodedFrame) -> PushOutcome {
        PushOutcome::Accepted
    }
    fn reset(&self, _camera: &CameraRef) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
    }
}

#[tokio::test]
async fn reconnect_delays_grow_and_are_capped() -> anyhow::Result<()> {
    // A port with nobody listening: every session fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = Config::parse(&format!(
        "[[cameras]]\nid = \"gate\"\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:{port}/x\"\n"
    ))
    .map_err(anyhow::Error::msg)?;
    let initial = Duration::from_millis(40);
    let max = Duration::from_millis(160);
    let starts = Arc::new(SessionStarts::default());
    let (status, _rx) = watch::channel(CameraStatus::new(
        CameraState::Connecting,
        chrono::Utc::now(),
    ));
    let worker = Arc::new(CameraWorker {
        camera: CameraRef {
            index: 0,
            id: "gate".into(),
        },
        source: RtspSource::for_camera(&config.cameras[0], Duration::from_secs(2)),
        settings: IngestSettings {
            connect_timeout: Duration::from_secs(2),
            frame_timeout: Duration::from_secs(2),
            reconnect: RetryPolicy::new(initial, max),
        },
        sink: starts.clone(),
        stats: Arc::new(CameraStats::default()),
        status,
        shutdown: CancellationToken::new(),
    });
    let task = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run().await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while starts.times().len() < 7 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown.cancel();
    task.await?;

    let times = starts.times();
    assert!(times.len() >= 7, "only {} sessions in 20 s", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Ceilings 40, 80, 160 (the cap), 160, ...; a delay is never below half
    // its ceiling, and a session adds to it.
    for (i, gap) in gaps.iter().take(6).enumerate() {
        let ceiling = RetryPolicy::new(initial, max).ceiling(i as u32);
        assert!(
            *gap >= ceiling / 2,
            "gap {i}: {gap:?} < {:?} ({gaps:?})",
            ceiling / 2
        );
    }
    // Uncapped, gaps 3-5 would be at least 160 + 320 + 640 ms.
    let capped: Duration = gaps[3..6].iter().sum();
    assert!(capped < Duration::from_millis(1000), "not capped: {gaps:?}");
    Ok(())
}
