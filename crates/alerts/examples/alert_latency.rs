//! Benchmark: event stored -> webhook received, over many events.
//!
//! `cargo run --release -p xueliang-alerts --example alert_latency -- [EVENTS] [INTERVAL_MS]`
//!
//! A real SQLite file, the real dispatcher on the system clock (woken by the
//! outbox signal), a local HTTP receiver; events are inserted one every
//! INTERVAL_MS (default 1000 events, 5 ms). Prints p50/p99/max in ms.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use xueliang_alerts::{AlertSetup, Dispatcher};
use xueliang_core::{Config, EventKind, NewEvent, SystemClock};
use xueliang_store::{EventStore, SqliteStore};

type Seen = Arc<Mutex<HashMap<i64, Instant>>>;

async fn receive(State(seen): State<Seen>, body: axum::body::Bytes) -> &'static str {
    let now = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(id) = v["event_id"].as_i64() {
            seen.lock().unwrap().insert(id, now);
        }
    }
    "{}"
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let interval = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5));

    let seen: Seen = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let text = format!(
        r#"
[alerts]
[[alerts.routes]]
kinds = ["*"]
notify_on_duty = false
channels = ["hook"]
flood_window_min = 0

[[alerts.channels]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "bench-secret"

[[cameras]]
id = "cam"
name = "cam"
url = "rtsp://127.0.0.1:1/x"
village = "东村"
"#
    );
    let config = Config::parse(&text).map_err(anyhow::Error::msg)?;
    let setup = AlertSetup::from_config(&config)?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(
        SqliteStore::open(&format!(
            "sqlite://{}",
            dir.path().join("bench.db").display()
        ))
        .await?,
    );
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        setup,
        &config.cameras,
        Arc::new(SystemClock),
    ));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(dispatcher.run(shutdown.clone()));

    let mut stored = HashMap::new();
    for _ in 0..n {
        let e = NewEvent::health(
            &config.cameras[0],
            EventKind::CameraOffline,
            chrono::Utc::now(),
            "bench".into(),
        );
        let id = store.insert_event(e).await?;
        stored.insert(id, Instant::now());
        tokio::time::sleep(interval).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let _ = task.await;
    let seen = seen.lock().unwrap();
    let mut ms: Vec<f64> = stored
        .iter()
        .filter_map(|(id, t)| {
            seen.get(id)
                .map(|r| r.saturating_duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    if ms.is_empty() {
        anyhow::bail!("no webhook arrived");
    }
    println!(
        "alert latency, event stored -> webhook received: {} events ({} received), one every {:?}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        n,
        ms.len(),
        interval,
        pct(0.50),
        pct(0.99),
        ms[ms.len() - 1]
    );
    Ok(())
}
