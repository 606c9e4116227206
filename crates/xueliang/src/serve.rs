//! `xueliang serve`: builds every stage from the config and runs until SIGINT/SIGTERM.

use anyhow::Context;
use chrono::Utc;
use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use xueliang_api::AppState;
use xueliang_core::{CameraConfig, CameraError, Config, SystemClock};
use xueliang_detect::{load_onnxruntime, Manifest, OrtDetector};
use xueliang_ingest::IngestSettings;
use xueliang_pipeline::{parse_camera, CameraRegistry, HealthMonitor, Pipeline, RegistryParts};
use xueliang_store::{EventStore, Retention, RetentionPolicy, StoredCamera};

/// How often retention runs (and once right after start).
const RETENTION_EVERY: Duration = Duration::from_secs(5 * 60);

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; colours only when standard error is a terminal.
    Text,
    /// One JSON object per line (timestamp, level, fields, target, spans).
    Json,
}

pub fn run(config: Config, config_path: &Path, log_format: LogFormat) -> ExitCode {
    init_tracing(log_format);
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
    match runtime.block_on(serve(config, config_path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            // JSON logs stay one object per line.
            if log_format == LogFormat::Text {
                eprintln!("xueliang: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,retina=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

/// Analytics shards: one per core, up to this many (tracking is light next
/// to decoding and inference).
const MAX_ANALYTICS_THREADS: usize = 4;

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn serve(config: Config, config_path: &Path) -> anyhow::Result<()> {
    // The detector first: a missing library or model is the likeliest setup mistake.
    let lib = config.detector.onnxruntime_path();
    let env = load_onnxruntime(&lib).context("[detector] onnxruntime")?;
    let manifest = Manifest::load(&config.detector.model).context("[detector] model")?;
    let geometry = manifest.input.geometry;
    let (workers, threads) = config.detector.layout(cores());
    let model = manifest.read_model().context("[detector] model")?;
    let mut detectors: Vec<Box<dyn xueliang_detect::Detector>> = Vec::with_capacity(workers);
    let mut provider = xueliang_core::ExecutionProvider::Cpu;
    let mut batch = 1;
    for _ in 0..workers {
        let mut d = OrtDetector::from_model(
            &env,
            manifest.clone(),
            &model,
            threads,
            &config.detector.execution_providers,
        )
        .context("[detector] model")?;
        provider = d.provider();
        batch = d.with_batch(config.detector.batch);
        detectors.push(Box::new(d));
    }
    info!(
        model = %config.detector.model.display(),
        workers,
        threads,
        batch,
        provider = provider.as_str(),
        "detector ready"
    );

    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "[storage] data_dir: cannot create {}",
            config.storage.data_dir.display()
        )
    })?;
    let store = xueliang_store::open(&config.storage.database_url())
        .await
        .context("[storage]")?;
    // With several nodes the other nodes' events are live: each camera's
    // orphans are ended when a node takes its lease (cluster_host.rs).
    let orphans = match config.cluster {
        Some(_) => 0,
        None => store
            .end_orphaned_events(None, Utc::now())
            .await
            .context("[storage]")?,
    };
    if orphans > 0 {
        info!(orphans, "ended events left open by the previous run");
    }
    xueliang_decode::init().context("cannot initialise FFmpeg")?;
    let alert_setup = xueliang_alerts::AlertSetup::from_config(&config)?;

    // Cameras: the config file's, overridden and added to by the changes
    // made through the API (stored in the database); their labels are
    // checked against the model's.
    let stored = store.list_cameras().await.context("[storage] cameras")?;
    let cameras = effective_cameras(&config, config_path, stored, &manifest.labels)?;

    let decode_threads = match config.decode.threads {
        0 => cores(),
        n => n,
    };
    let clips = xueliang_pipeline::ClipRecorder::start(
        config.clips.clone(),
        store.clone(),
        &tokio::runtime::Handle::current(),
    );
    let pipeline = Arc::new(
        Pipeline::start(
            decode_threads,
            cores().min(MAX_ANALYTICS_THREADS),
            xueliang_decode::ActivitySettings {
                idle_key_frames_only: config.decode.idle_key_frames_only,
                idle_after_s: config.decode.idle_after_s,
                ..Default::default()
            },
            xueliang_decode::HardwarePlan::new(
                config.decode.hwaccel.clone(),
                config.decode.vaapi_device.clone(),
            ),
            detectors,
            geometry,
            store.clone(),
            Some(clips.clone()),
            tokio::runtime::Handle::current(),
        )
        .context("cannot start the pipeline threads")?,
    );

    let shutdown = CancellationToken::new();
    let retention = Arc::new(Retention::new(
        store.backend(),
        retention_policy(&config),
        Arc::new(SystemClock),
    ));
    let retention_totals = retention.totals();
    let retention_shutdown = shutdown.clone();
    let retention_task = tokio::spawn(async move {
        retention
            .run(RETENTION_EVERY, retention_shutdown.cancelled())
            .await
    });
    let monitor = HealthMonitor::start(
        store.clone(),
        Duration::from_secs_f64(config.health.sample_interval_s),
        shutdown.clone(),
    );

    // Alerts: the dispatcher drains the outbox the store fills with each
    // event. It learns the cameras from the registry, which hands it each
    // camera it starts; it runs once they are all known.
    let alert_service = Arc::new(xueliang_alerts::AlertService::new(
        store.clone(),
        &alert_setup,
    ));
    // GB/T 28181: the SIP server devices register to, before the cameras
    // that use it start, and before the dispatcher, whose `gb28181`
    // channels send their alarms through its upstream links.
    let gb28181 = match &config.gb28181 {
        Some(gb) => Some(
            xueliang_gb28181::GbAccess::start(gb, shutdown.clone())
                .await
                .with_context(|| {
                    format!(
                        "[gb28181] listen: cannot start the SIP server on {}",
                        gb.listen
                    )
                })?,
        ),
        None => None,
    };

    let dispatcher =
        xueliang_alerts::Dispatcher::new(store.clone(), alert_setup, &[], Arc::new(SystemClock));
    let dispatcher = Arc::new(match &gb28181 {
        Some(access) => dispatcher.with_upstream_alarms(Arc::new(access.sip().clone())),
        None => dispatcher,
    });

    let registry = Arc::new(CameraRegistry::new(RegistryParts {
        store: store.clone(),
        defaults: config.camera_defaults.clone(),
        labels: manifest.labels.clone(),
        pipeline: pipeline.clone(),
        monitor: monitor.changes(),
        dispatcher: dispatcher.clone(),
        settings: IngestSettings::from(&config.ingest),
        shutdown: shutdown.clone(),
        gb28181: gb28181.clone(),
        live: Arc::new(xueliang_pipeline::LiveLimits::new(config.live.clone())),
        clips: clips.clone(),
        clustered: config.cluster.is_some(),
    }));
    registry.start_all(cameras).await;
    let coordinator = match &config.cluster {
        Some(c) => Some(crate::cluster::start(c, &store, &registry, &shutdown).await?),
        None => None,
    };
    // GB/T 28181 cascade: register to the superior platforms, sharing the
    // cameras; each ends after unregistering at shutdown.
    let cascade = match (&gb28181, &config.gb28181) {
        (Some(access), Some(gb)) => {
            access.share_live_video(registry.clone());
            access.share_recordings(Arc::new(xueliang_pipeline::StoredClips::new(
                store.clone(),
                &config.clips,
            )));
            access.start_cascade(
                gb,
                Arc::new(xueliang_api::CameraCatalog(registry.clone())),
                config.detection.tz(),
            )
        }
        _ => Vec::new(),
    };
    if let (Some(access), Some(gb)) = (&gb28181, &config.gb28181) {
        if gb.auto_cameras {
            tokio::spawn(xueliang_pipeline::adopt_channels(
                registry.clone(),
                access.clone(),
                gb.clone(),
                shutdown.clone(),
            ));
        }
    }
    let dispatcher_task = tokio::spawn(dispatcher.run(shutdown.clone()));

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
    info!(%addr, cameras = registry.running(), "serving");
    let state = AppState::new(
        store.clone() as Arc<dyn EventStore>,
        store.clone(),
        registry.clone(),
        Some(alert_service),
    )
    .with_retention(retention_totals)
    .with_trusted_proxies(config.server.trusted_proxies.clone());
    let state = match &gb28181 {
        Some(access) => state.with_devices(access.clone()),
        None => state,
    };
    let state = match config
        .cluster
        .as_ref()
        .and_then(|c| crate::cluster::directory(c, &store))
    {
        Some(directory) => state.with_cluster(directory),
        None => state,
    };
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

    tokio::select! {
        _ = wait_for_signal() => {}
        // `xueliang drain`: the cameras are handed over.
        _ = shutdown.cancelled() => {}
    }
    info!("shutting down");
    if let Some(c) = &coordinator {
        c.drain().await;
    }
    shutdown.cancel();
    for task in cascade {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    registry.stop_all().await;
    monitor.stopped().await;
    let _ = dispatcher_task.await;
    let _ = retention_task.await;
    match api.await {
        Ok(Err(e)) => error!(error = %e, "API server error"),
        Err(e) => error!(error = %e, "API task failed"),
        Ok(Ok(())) => {}
    }
    tokio::task::spawn_blocking(move || pipeline.finish()).await?;
    clips.finish().await;
    info!("stopped");
    Ok(())
}

/// `[storage]`'s retention and disk budget; the data directory counts in the budget.
fn retention_policy(config: &Config) -> RetentionPolicy {
    let s = &config.storage;
    RetentionPolicy {
        max_disk_bytes: s.max_disk_bytes(),
        data_dir: Some(s.data_dir.clone()),
        ..RetentionPolicy::days(
            s.retention_days,
            s.health_retention_days,
            s.audit_retention_days,
        )
    }
}

/// Where the definition of a camera the server considers comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    File,
    /// A config-file camera whose definition the database's replaces.
    Changed,
    Added,
    /// A config-file camera deleted through the API: not run.
    Deleted,
}

impl Source {
    /// As `xueliang camera list` shows it.
    pub fn describe(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Changed => "database (changed through the API)",
            Source::Added => "database (added through the API)",
            Source::Deleted => "deleted through the API",
        }
    }
}

/// A camera the server considers at startup.
pub struct Considered {
    pub id: String,
    pub source: Source,
    /// The definition in force, as stored (with the password); the config
    /// file's for a deleted camera.
    pub definition: serde_json::Value,
    /// The config file's camera as read at load, for `Source::File`.
    file: Option<CameraConfig>,
}

impl Considered {
    /// The camera to run (`None` when deleted), checked against the model's
    /// `labels`.
    pub fn check(
        &self,
        config: &Config,
        labels: &[String],
    ) -> Result<Option<CameraConfig>, CameraError> {
        if self.source == Source::Deleted {
            return Ok(None);
        }
        match &self.file {
            Some(file) => file.check_labels(labels).map(|()| Some(file.clone())),
            None => parse_camera(&config.camera_defaults, labels, &self.definition).map(Some),
        }
    }

    /// Why `serve` refuses to start with this camera: names it and where it
    /// comes from, and for a definition stored in the database the command
    /// that forgets it (the API cannot: the server does not start).
    pub fn refusal(&self, e: &CameraError, config_path: &Path) -> String {
        let revert = |what: &str, to: &str| {
            format!(
                "camera \"{id}\" (as {what} through the API, stored in the database): {message}; \
                 to {to}: xueliang camera revert --config {path} --id {id}",
                id = self.id,
                message = e.message,
                path = config_path.display(),
            )
        };
        match self.source {
            Source::Changed => revert("changed", "run the config file's definition again"),
            Source::Added => revert("added", "delete it"),
            Source::File | Source::Deleted => format!("camera \"{}\": {}", self.id, e.message),
        }
    }
}

/// The cameras the server considers, in list order: the config file's
/// cameras, each replaced by the database's definition of the same id
/// (changed through the API) or marked deleted through the API; then the
/// cameras added through the API, in the order they were added.
pub fn considered_cameras(config: &Config, stored: Vec<StoredCamera>) -> Vec<Considered> {
    // The database's word on each file camera (by file position), and the
    // cameras added through the API, in the stored order.
    let file_position: HashMap<&str, usize> = config
        .cameras
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut overrides: Vec<Option<StoredCamera>> = vec![None; config.cameras.len()];
    let mut added = Vec::new();
    for s in stored {
        match file_position.get(s.id.as_str()) {
            Some(&i) => overrides[i] = Some(s),
            // Added, then deleted through the API.
            None if s.deleted => {}
            None => added.push(s),
        }
    }
    let mut out = Vec::with_capacity(config.cameras.len() + added.len());
    let file_cameras = config.cameras.iter().zip(&config.camera_definitions);
    for ((file, definition), stored) in file_cameras.zip(overrides) {
        let (source, definition) = match stored {
            Some(s) if s.deleted => (Source::Deleted, definition.clone()),
            Some(s) => (Source::Changed, s.definition),
            None => (Source::File, definition.clone()),
        };
        out.push(Considered {
            id: file.id.clone(),
            source,
            definition,
            file: (source == Source::File).then(|| file.clone()),
        });
    }
    out.extend(added.into_iter().map(|s| Considered {
        id: s.id,
        source: Source::Added,
        definition: s.definition,
        file: None,
    }));
    out
}

/// The cameras to run, in list order, each with its definition as stored
/// (see [`considered_cameras`]). The `[detection]` defaults and every camera
/// run must name only the model's `labels`; a camera left out is not checked.
fn effective_cameras(
    config: &Config,
    config_path: &Path,
    stored: Vec<StoredCamera>,
    labels: &[String],
) -> anyhow::Result<Vec<(CameraConfig, serde_json::Value)>> {
    config
        .check_default_labels(labels)
        .map_err(anyhow::Error::msg)?;
    let mut out = Vec::new();
    for c in considered_cameras(config, stored) {
        match c.source {
            Source::Deleted => {
                info!(camera = %c.id, "camera deleted through the API; the config file's definition is not used");
            }
            Source::Changed => {
                info!(camera = %c.id, "camera changed through the API; the database's definition overrides the config file's");
            }
            Source::File | Source::Added => {}
        }
        match c.check(config, labels) {
            Ok(Some(camera)) => out.push((camera, c.definition)),
            Ok(None) => {}
            Err(e) => anyhow::bail!(c.refusal(&e, config_path)),
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"
[[cameras]]
id = "gate"
name = "Gate"
url = "rtsp://h/gate"
detection = { labels = ["unicorn"] }

[[cameras]]
id = "yard"
name = "Yard"
url = "rtsp://h/yard"
"#;

    fn labels() -> Vec<String> {
        ["person", "car", "motorcycle", "bicycle", "truck", "bus"]
            .map(String::from)
            .to_vec()
    }

    fn stored(id: &str, definition: serde_json::Value, deleted: bool) -> StoredCamera {
        StoredCamera {
            id: id.into(),
            definition,
            deleted,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            position: 0,
        }
    }

    fn path() -> &'static Path {
        Path::new("x.toml")
    }

    fn ids(cameras: &[(CameraConfig, serde_json::Value)]) -> Vec<&str> {
        cameras.iter().map(|(c, _)| c.id.as_str()).collect()
    }

    #[test]
    fn a_file_camera_run_with_an_unknown_label_stops_startup() {
        let config = Config::parse(FILE).unwrap();
        let e = effective_cameras(&config, path(), vec![], &labels()).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("camera \"gate\"") && e.contains("unicorn"),
            "{e}"
        );
    }

    #[test]
    fn a_file_camera_deleted_or_changed_through_the_api_is_not_checked() {
        let config = Config::parse(FILE).unwrap();
        let deleted = vec![stored("gate", json!({}), true)];
        let run = effective_cameras(&config, path(), deleted, &labels()).unwrap();
        assert_eq!(ids(&run), ["yard"]);
        let fixed = json!({"id": "gate", "name": "Gate", "url": "rtsp://h/gate"});
        let changed = vec![stored("gate", fixed, false)];
        let run = effective_cameras(&config, path(), changed, &labels()).unwrap();
        assert_eq!(ids(&run), ["gate", "yard"]);
    }

    #[test]
    fn a_stored_camera_with_an_unknown_label_stops_startup_naming_it() {
        let config = Config::parse(&FILE.replace("[\"unicorn\"]", "[\"person\"]")).unwrap();
        let added = json!({"id": "shop", "name": "Shop", "url": "rtsp://h/shop",
            "detection": {"labels": ["dragon"]}});
        let e = effective_cameras(
            &config,
            path(),
            vec![stored("shop", added, false)],
            &labels(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("camera \"shop\" (as added through the API") && e.contains("dragon"),
            "{e}"
        );
        assert!(
            e.ends_with("to delete it: xueliang camera revert --config x.toml --id shop"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_default_label_stops_startup() {
        let config = Config::parse(&format!(
            "[detection]\nlabels = [\"person\", \"yeti\"]\n{}",
            FILE.replace("[\"unicorn\"]", "[\"person\"]")
        ))
        .unwrap();
        let e = effective_cameras(&config, path(), vec![], &labels()).unwrap_err();
        assert!(e.to_string().contains("[detection]"), "{e}");
    }

    #[test]
    fn stored_cameras_override_and_follow_the_file_cameras() {
        let config = Config::parse(&FILE.replace("[\"unicorn\"]", "[\"person\"]")).unwrap();
        let changed = json!({"id": "yard", "name": "Yard 2", "url": "rtsp://h/yard2"});
        let added = json!({"id": "shop", "name": "Shop", "url": "rtsp://h/shop"});
        let run = effective_cameras(
            &config,
            path(),
            vec![
                stored("shop", added.clone(), false),
                stored("yard", changed.clone(), false),
                stored("gone", json!({}), true),
            ],
            &labels(),
        )
        .unwrap();
        assert_eq!(ids(&run), ["gate", "yard", "shop"]);
        assert_eq!((run[1].0.name.as_str(), &run[1].1), ("Yard 2", &changed));
        assert_eq!(run[2].1, added);
        assert_eq!(run[0].1, config.camera_definitions[0]);
    }

    #[test]
    fn each_considered_camera_says_where_it_comes_from() {
        let config = Config::parse(FILE).unwrap();
        let shop = json!({"id": "shop", "name": "Shop", "url": "rtsp://h/shop"});
        let yard = json!({"id": "yard", "name": "Yard", "url": "rtsp://h/yard",
            "detection": {"labels": ["dragon"]}});
        let considered = considered_cameras(
            &config,
            vec![
                stored("shop", shop, false),
                stored("gate", json!({}), true),
                stored("yard", yard.clone(), false),
            ],
        );
        let sources: Vec<_> = considered
            .iter()
            .map(|c| (c.id.as_str(), c.source))
            .collect();
        assert_eq!(
            sources,
            [
                ("gate", Source::Deleted),
                ("yard", Source::Changed),
                ("shop", Source::Added)
            ]
        );
        assert_eq!(considered[1].definition, yard);
        // The changed camera names a label the model lacks: the way back is
        // the config file's definition.
        let e = effective_cameras(
            &config,
            path(),
            vec![stored("gate", json!({}), true), stored("yard", yard, false)],
            &labels(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("camera \"yard\" (as changed through the API, stored in the database)")
                && e.contains("dragon")
                && e.ends_with("to run the config file's definition again: xueliang camera revert --config x.toml --id yard"),
            "{e}"
        );
    }
}
