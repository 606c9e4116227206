//! `xueliang serve`: builds every stage from the config and runs until SIGINT/SIGTERM.

use crate::pipeline::{Pipeline, PipelineCamera};
use anyhow::Context;
use chrono::Utc;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use xueliang_api::{AppState, CameraView};
use xueliang_core::{
    CameraHealth, CameraRef, CameraState, CameraStats, CameraStatus, Config, FrameSink, SystemClock,
};
use xueliang_detect::{load_onnxruntime, Manifest, OrtDetector};
use xueliang_health::{run_monitor, MonitoredCamera};
use xueliang_ingest::{spawn_supervised, CameraWorker, IngestSettings};
use xueliang_store::{EventStore, SqliteStore};

pub fn run(config: Config) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xueliang: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("xueliang: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,retina=warn,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // The detector first: a missing library or model is the likeliest setup mistake.
    let lib = config.detector.onnxruntime_path();
    let env = load_onnxruntime(&lib).context("[detector] onnxruntime")?;
    let manifest = Manifest::load(&config.detector.model).context("[detector] model")?;
    config
        .check_labels(&manifest.labels)
        .map_err(anyhow::Error::msg)?;
    let geometry = manifest.input.geometry;
    let (workers, threads) = config.detector.layout(cores());
    let model = manifest.read_model().context("[detector] model")?;
    let mut detectors: Vec<Box<dyn xueliang_detect::Detector>> = Vec::with_capacity(workers);
    for _ in 0..workers {
        let d = OrtDetector::from_model(&env, manifest.clone(), &model, threads)
            .context("[detector] model")?;
        detectors.push(Box::new(d));
    }
    info!(model = %config.detector.model.display(), workers, threads, "detector ready");

    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "[storage] data_dir: cannot create {}",
            config.storage.data_dir.display()
        )
    })?;
    let store = Arc::new(
        SqliteStore::open(&config.storage.database_url())
            .await
            .context("[storage]")?,
    );
    let orphans = store
        .end_orphaned_events(Utc::now())
        .await
        .context("[storage]")?;
    if orphans > 0 {
        info!(orphans, "ended events left open by the previous run");
    }
    xueliang_decode::init().context("cannot initialise FFmpeg")?;
    let alert_setup = xueliang_alerts::AlertSetup::from_config(&config)?;

    // Cameras: enabled ones get a pipeline index; all are shown by the API.
    let mut views = Vec::new();
    let mut monitored = Vec::new();
    let mut running = Vec::new();
    let mut status_senders = Vec::new();
    for cam in &config.cameras {
        let stats = Arc::new(CameraStats::default());
        let initial = if cam.enabled {
            CameraState::Connecting
        } else {
            CameraState::Disabled
        };
        let (tx, rx) = watch::channel(CameraStatus::new(initial, Utc::now()));
        let (health_tx, health_rx) = watch::channel(CameraHealth::new(initial, Utc::now()));
        views.push(CameraView {
            config: cam.clone(),
            health: health_rx,
            stats: stats.clone(),
        });
        monitored.push(MonitoredCamera {
            config: cam.clone(),
            status: rx,
            stats: stats.clone(),
            health: health_tx,
        });
        if cam.enabled {
            let camera = CameraRef {
                index: running.len(),
                id: Arc::from(cam.id.as_str()),
            };
            running.push(PipelineCamera {
                camera,
                config: cam.clone(),
                stats,
            });
            status_senders.push(tx);
        }
    }
    let decode_threads = match config.decode.threads {
        0 => cores(),
        n => n,
    };
    let pipeline = Pipeline::start(
        &running,
        decode_threads,
        xueliang_decode::ActivitySettings {
            idle_key_frames_only: config.decode.idle_key_frames_only,
            idle_after_s: config.decode.idle_after_s,
            ..Default::default()
        },
        detectors,
        geometry,
        store.clone(),
        tokio::runtime::Handle::current(),
    )
    .context("cannot start the pipeline threads")?;

    let shutdown = CancellationToken::new();
    let settings = IngestSettings::from(&config.ingest);
    let sink: Arc<dyn FrameSink> = pipeline.decode.clone();
    let mut workers = Vec::new();
    for (cam, status) in running.iter().zip(status_senders) {
        let worker = CameraWorker {
            camera: cam.camera.clone(),
            config: cam.config.clone(),
            settings: settings.clone(),
            sink: sink.clone(),
            stats: cam.stats.clone(),
            status,
            shutdown: shutdown.clone(),
        };
        workers.push(spawn_supervised(Arc::new(worker)));
    }
    drop(sink);
    let monitor = tokio::spawn(run_monitor(
        monitored,
        store.clone(),
        Arc::new(SystemClock),
        Duration::from_secs_f64(config.health.sample_interval_s),
        shutdown.clone(),
    ));

    // Alerts: the dispatcher drains the outbox the store fills with each event.
    let alert_service = Arc::new(xueliang_alerts::AlertService::new(
        store.clone(),
        &alert_setup,
    ));
    let dispatcher = Arc::new(xueliang_alerts::Dispatcher::new(
        store.clone(),
        alert_setup,
        &config.cameras,
        Arc::new(SystemClock),
    ));
    let dispatcher = tokio::spawn(dispatcher.run(shutdown.clone()));

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("[server] listen: cannot listen on {}", config.server.listen))?;
    let metrics_listener = tokio::net::TcpListener::bind(config.server.metrics_listen)
        .await
        .with_context(|| {
            format!(
                "[server] metrics_listen: cannot listen on {}",
                config.server.metrics_listen
            )
        })?;
    let addr = listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    println!("xueliang: API at http://{addr}/api/v1 (cameras: http://{addr}/api/v1/cameras, events: http://{addr}/api/v1/events)");
    println!("xueliang: metrics at http://{metrics_addr}/metrics");
    info!(%addr, cameras = running.len(), "serving");
    let state = AppState::new(
        store.clone() as Arc<dyn EventStore>,
        store.clone(),
        Arc::new(xueliang_api::FixedCameras(views)),
        Some(alert_service),
    );
    let metrics_shutdown = shutdown.clone();
    tokio::spawn(xueliang_api::serve_metrics(
        metrics_listener,
        state.clone(),
        async move { metrics_shutdown.cancelled().await },
    ));
    let api_shutdown = shutdown.clone();
    let api = tokio::spawn(xueliang_api::serve(listener, state, async move {
        api_shutdown.cancelled().await
    }));

    wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    for w in workers {
        let _ = w.await;
    }
    let _ = monitor.await;
    let _ = dispatcher.await;
    match api.await {
        Ok(Err(e)) => error!(error = %e, "API server error"),
        Err(e) => error!(error = %e, "API task failed"),
        Ok(Ok(())) => {}
    }
    tokio::task::spawn_blocking(move || pipeline.finish()).await?;
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
