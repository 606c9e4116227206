//! [`CameraRegistry`]: the running cameras and the changes made to them
//! through the API. A change is validated like a `[[cameras]]` table,
//! stored (so it survives a restart), and applied: the camera's ingest worker
//! stops and a new one starts with the new definition, with a new pipeline
//! index, without touching the other cameras.

use crate::clips::ClipRecorder;
use crate::media::{CameraMedia, LiveLimits, TappedSink};
use crate::pipeline::{LatestFrame, Pipeline, PipelineCamera};
use chrono::Utc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xueliang_alerts::Dispatcher;
use xueliang_api::{
    CameraChangeError, CameraControl, CameraView, LiveFeed, LiveRefusal, MediaTotals,
};
use xueliang_core::{
    CameraConfig, CameraDefaults, CameraError, CameraHealth, CameraRef, CameraState, CameraStats,
    CameraStatus, FrameSink, HealthReason, LiveUnit, LiveUnits, LiveUnitsError,
};
use xueliang_gb28181::GbAccess;
use xueliang_health::{MonitorChange, MonitoredCamera};
use xueliang_ingest::{spawn_supervised, CameraWorker, FrameSource, IngestSettings, RtspSource};
use xueliang_store::Store;

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(Default::default());
    }
    if let serde_json::Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
    }
}

/// Drops `null` members (absent fields), recursively, as stored.
fn without_nulls(v: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Value::Object(Default::default());
    merge_patch(&mut out, v);
    out
}

/// Reads a camera definition and checks its labels against the model's.
pub fn parse_camera(
    defaults: &CameraDefaults,
    labels: &[String],
    definition: &serde_json::Value,
) -> Result<CameraConfig, CameraError> {
    let camera = defaults.camera_from_json(definition)?;
    camera.check_labels(labels)?;
    Ok(camera)
}

/// Where the camera `id` is in the list. Only changes move entries, one at a
/// time (under `CameraRegistry::changes`): a change may use the position
/// until it ends.
fn position_of(cameras: &[Entry], id: &str) -> Result<usize, CameraChangeError> {
    cameras
        .iter()
        .position(|e| e.view.config.id == id)
        .ok_or_else(|| CameraChangeError::NotFound(id.to_owned()))
}

fn invalid(e: CameraError) -> CameraChangeError {
    CameraChangeError::Invalid {
        field: e.field,
        message: e.message,
    }
}

/// A camera's worker, whatever its source.
struct WorkerParts {
    camera: CameraRef,
    settings: IngestSettings,
    sink: Arc<dyn FrameSink>,
    stats: Arc<CameraStats>,
    status: watch::Sender<CameraStatus>,
    shutdown: CancellationToken,
}

impl WorkerParts {
    fn spawn<S: FrameSource>(self, source: S) -> JoinHandle<()> {
        spawn_supervised(Arc::new(CameraWorker {
            camera: self.camera,
            source,
            settings: self.settings,
            sink: self.sink,
            stats: self.stats,
            status: self.status,
            shutdown: self.shutdown,
        }))
    }
}

/// What the registry starts cameras with.
pub struct RegistryParts {
    pub store: Arc<dyn Store>,
    pub defaults: CameraDefaults,
    pub labels: Vec<String>,
    pub pipeline: Arc<Pipeline>,
    pub monitor: mpsc::Sender<MonitorChange>,
    pub dispatcher: Arc<Dispatcher<dyn Store>>,
    pub settings: IngestSettings,
    /// Cancelled at shutdown; each camera's worker has a child token.
    pub shutdown: CancellationToken,
    /// GB/T 28181 (`[gb28181]`): the source of `gb28181://` cameras.
    pub gb28181: Option<Arc<GbAccess>>,
    /// Live video's viewer limits (`[live]`).
    pub live: Arc<LiveLimits>,
    /// Event clips (`[clips]`).
    pub clips: Arc<ClipRecorder>,
    /// Several nodes (`[cluster]`): a camera starts here only when this
    /// node takes its lease (crates/pipeline/src/cluster_host.rs); until
    /// then it is listed, not run.
    pub clustered: bool,
}

pub struct CameraRegistry {
    pub(crate) parts: RegistryParts,
    /// Serialises changes (held across their awaits); only a change adds,
    /// removes or replaces entries.
    pub(crate) changes: tokio::sync::Mutex<()>,
    /// In list order. Never held across an await.
    cameras: Mutex<Vec<Entry>>,
    /// Pipeline indices are never reused.
    next_index: AtomicUsize,
}

pub(crate) struct Entry {
    /// As stored (with the password).
    pub(crate) definition: serde_json::Value,
    pub(crate) view: CameraView,
    pub(crate) running: Option<Running>,
    /// A camera another node runs: its health as the shared database
    /// shows it (crates/pipeline/src/cluster_host.rs), sent here.
    pub(crate) remote: Option<watch::Sender<CameraHealth>>,
}

pub(crate) struct Running {
    camera_id: String,
    index: usize,
    token: CancellationToken,
    task: JoinHandle<()>,
    latest: Arc<LatestFrame>,
    media: Arc<CameraMedia>,
}

impl Running {
    /// The camera's clips no longer start (the ones being collected were
    /// handed over by `CameraMedia::close`).
    fn media_detach(&self, clips: &ClipRecorder) {
        clips.detach(&self.camera_id);
    }
}

impl CameraRegistry {
    pub fn new(parts: RegistryParts) -> Self {
        CameraRegistry {
            parts,
            changes: tokio::sync::Mutex::new(()),
            cameras: Mutex::new(Vec::new()),
            next_index: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        crate::pipeline::lock(&self.cameras)
    }

    /// Starts the cameras of the startup merge (config file and database), in order.
    pub async fn start_all(&self, cameras: Vec<(CameraConfig, serde_json::Value)>) {
        let _g = self.changes.lock().await;
        for (config, definition) in cameras {
            let entry = self.place(config, definition).await;
            self.lock().push(entry);
        }
    }

    /// How many cameras run (enabled).
    pub fn running(&self) -> usize {
        self.lock().iter().filter(|e| e.running.is_some()).count()
    }

    /// Stops every camera's worker (at shutdown, before the pipeline finishes).
    pub async fn stop_all(&self) {
        let _g = self.changes.lock().await;
        let running: Vec<Running> = self
            .lock()
            .iter_mut()
            .filter_map(|e| e.running.take())
            .collect();
        for r in running {
            r.media.close();
            r.media_detach(&self.parts.clips);
            r.token.cancel();
            let _ = r.task.await;
        }
    }

    /// Starts the ingest worker of `config` on the source its URL names.
    fn spawn_worker(&self, config: &CameraConfig, w: WorkerParts) -> JoinHandle<()> {
        let timeout = self.parts.settings.connect_timeout;
        if config.url.scheme() != "gb28181" {
            return w.spawn(RtspSource::for_camera(config, timeout));
        }
        let gb = self.parts.gb28181.as_ref();
        // Video must start within the worker's frame timeout after the INVITE.
        let first_media = self.parts.settings.frame_timeout;
        match gb.and_then(|gb| gb.source(&config.id, &config.url, first_media)) {
            Some(source) => w.spawn(source),
            None => {
                warn!(camera = %config.id, "a gb28181:// camera needs a [gb28181] section; not started");
                w.status.send_replace(CameraStatus::offline(
                    HealthReason::Other,
                    "a gb28181:// camera needs a [gb28181] section in the config".into(),
                    Utc::now(),
                ));
                tokio::spawn(async {})
            }
        }
    }

    /// A new or changed camera's entry: started, or with several nodes
    /// listed until this node takes its lease.
    pub(crate) async fn place(&self, config: CameraConfig, definition: serde_json::Value) -> Entry {
        if self.parts.clustered {
            self.standby(config, definition)
        } else {
            self.start(config, definition).await
        }
    }

    /// The entry of a camera listed here and run by whichever node holds
    /// its lease (maybe this one, later); not watched by this node's monitor.
    pub(crate) fn standby(&self, config: CameraConfig, definition: serde_json::Value) -> Entry {
        let mut health = CameraHealth::new(
            if config.enabled {
                CameraState::Connecting
            } else {
                CameraState::Disabled
            },
            Utc::now(),
        );
        if config.enabled {
            health.detail = Some(crate::cluster_host::RUN_ELSEWHERE.into());
        }
        self.parts.dispatcher.set_camera(&config);
        let (remote, health) = watch::channel(health);
        Entry {
            definition,
            view: CameraView {
                config,
                health,
                stats: Arc::new(CameraStats::default()),
            },
            running: None,
            remote: Some(remote),
        }
    }

    /// Starts a camera (its worker and pipeline place if enabled) and makes
    /// its entry; every camera is watched by the health monitor.
    pub(crate) async fn start(&self, config: CameraConfig, definition: serde_json::Value) -> Entry {
        let stats = Arc::new(CameraStats::default());
        let initial = if config.enabled {
            CameraState::Connecting
        } else {
            CameraState::Disabled
        };
        let (status_tx, status_rx) = watch::channel(CameraStatus::new(initial, Utc::now()));
        let (health_tx, health_rx) = watch::channel(CameraHealth::new(initial, Utc::now()));
        let mut running = None;
        if config.enabled {
            let index = self.next_index.fetch_add(1, Ordering::Relaxed);
            let camera = CameraRef {
                index,
                id: Arc::from(config.id.as_str()),
            };
            let pipeline_camera = PipelineCamera {
                camera: camera.clone(),
                config: config.clone(),
                stats: stats.clone(),
            };
            let pipeline = self.parts.pipeline.clone();
            let added = tokio::task::spawn_blocking(move || pipeline.add(&pipeline_camera)).await;
            match added {
                Ok(Some((sink, latest))) => {
                    let token = self.parts.shutdown.child_token();
                    let media = CameraMedia::new(self.parts.live.clone(), self.parts.clips.sink());
                    self.parts
                        .clips
                        .attach(&config.id, media.clone(), config.clips.as_deref());
                    let sink = Arc::new(TappedSink {
                        media: media.clone(),
                        inner: sink,
                    });
                    let worker = WorkerParts {
                        camera,
                        settings: self.parts.settings.clone(),
                        sink,
                        stats: stats.clone(),
                        status: status_tx,
                        shutdown: token.clone(),
                    };
                    running = Some(Running {
                        camera_id: config.id.clone(),
                        index,
                        token,
                        task: self.spawn_worker(&config, worker),
                        latest,
                        media,
                    });
                }
                // Shutting down: the camera is not started.
                Ok(None) | Err(_) => {
                    warn!(camera = %config.id, "pipeline is stopped; camera not started")
                }
            }
        }
        let monitored = MonitoredCamera {
            config: config.clone(),
            status: status_rx,
            stats: stats.clone(),
            health: health_tx,
        };
        if self
            .parts
            .monitor
            .send(MonitorChange::Add(Box::new(monitored)))
            .await
            .is_err()
        {
            warn!(camera = %config.id, "health monitor is stopped");
        }
        self.parts.dispatcher.set_camera(&config);
        Entry {
            definition,
            view: CameraView {
                config,
                health: health_rx,
                stats,
            },
            running,
            remote: None,
        }
    }

    /// Stops a camera's worker and removes it from the pipeline and the monitor.
    pub(crate) async fn stop(&self, id: &str, running: Option<Running>) {
        if let Some(r) = running {
            r.media.close();
            r.media_detach(&self.parts.clips);
            r.token.cancel();
            let _ = r.task.await;
            let pipeline = self.parts.pipeline.clone();
            let _ = tokio::task::spawn_blocking(move || pipeline.remove(r.index)).await;
        }
        let _ = self
            .parts
            .monitor
            .send(MonitorChange::Remove(id.to_owned()))
            .await;
    }

    pub(crate) fn parse(
        &self,
        definition: &serde_json::Value,
    ) -> Result<CameraConfig, CameraChangeError> {
        parse_camera(&self.parts.defaults, &self.parts.labels, definition).map_err(invalid)
    }

    async fn create_camera(
        &self,
        body: serde_json::Value,
    ) -> Result<CameraConfig, CameraChangeError> {
        let definition = without_nulls(&body);
        let config = self.parse(&definition)?;
        let _g = self.changes.lock().await;
        if self.lock().iter().any(|e| e.view.config.id == config.id) {
            return Err(CameraChangeError::Conflict(config.id));
        }
        self.parts
            .store
            .put_camera(&config.id, &definition, Utc::now())
            .await
            .map_err(|e| CameraChangeError::Internal(format!("cannot store camera: {e}")))?;
        info!(camera = %config.id, enabled = config.enabled, "camera added through the API");
        let entry = self.place(config.clone(), definition).await;
        self.lock().push(entry);
        Ok(config)
    }

    async fn update_camera(
        &self,
        id: &str,
        patch: serde_json::Value,
    ) -> Result<CameraConfig, CameraChangeError> {
        if !patch.is_object() {
            return Err(CameraChangeError::Invalid {
                field: "body".into(),
                message: "a merge patch must be a JSON object".into(),
            });
        }
        if patch.get("id").is_some_and(|v| v.as_str() != Some(id)) {
            return Err(CameraChangeError::Invalid {
                field: "id".into(),
                message: "field `id`: cannot change; delete the camera and create a new one".into(),
            });
        }
        let _g = self.changes.lock().await;
        let (position, mut definition) = {
            let cameras = self.lock();
            let position = position_of(&cameras, id)?;
            (position, cameras[position].definition.clone())
        };
        // A patch without `password` keeps the stored one (RFC 7396).
        merge_patch(&mut definition, &patch);
        let config = self.parse(&definition)?;
        self.parts
            .store
            .put_camera(id, &definition, Utc::now())
            .await
            .map_err(|e| CameraChangeError::Internal(format!("cannot store camera: {e}")))?;
        let running = self.lock()[position].running.take();
        let was_running = running.is_some();
        self.stop(id, running).await;
        info!(camera = %id, enabled = config.enabled, "camera changed through the API; restarted");
        let entry = if was_running && config.enabled {
            self.start(config.clone(), definition).await
        } else {
            self.place(config.clone(), definition).await
        };
        self.lock()[position] = entry;
        Ok(config)
    }

    async fn delete_camera(&self, id: &str) -> Result<(), CameraChangeError> {
        let _g = self.changes.lock().await;
        let position = position_of(&self.lock(), id)?;
        self.parts
            .store
            .delete_camera(id, Utc::now())
            .await
            .map_err(|e| CameraChangeError::Internal(format!("cannot store camera: {e}")))?;
        let mut entry = self.lock().remove(position);
        self.stop(id, entry.running.take()).await;
        info!(camera = %id, "camera deleted through the API");
        Ok(())
    }
}

/// A running camera's own video for forwarding (GB/T 28181 cascade).
impl LiveUnits for CameraRegistry {
    fn subscribe(&self, camera_id: &str) -> Result<BoxStream<'static, LiveUnit>, LiveUnitsError> {
        let media = {
            let cameras = self.lock();
            let entry = cameras
                .iter()
                .find(|e| e.view.config.id == camera_id)
                .ok_or_else(|| LiveUnitsError::UnknownCamera(camera_id.to_owned()))?;
            entry.running.as_ref().map(|r| r.media.clone())
        };
        media
            .ok_or_else(|| LiveUnitsError::NotRunning(camera_id.to_owned()))?
            .units(camera_id)
    }
}

impl CameraControl for CameraRegistry {
    fn detector_readiness(&self) -> xueliang_api::Readiness {
        match self.parts.pipeline.stopped_threads() {
            0 => xueliang_api::Readiness::Ready,
            n => xueliang_api::Readiness::NotReady(format!(
                "{n} pipeline thread(s) stopped; see the log"
            )),
        }
    }

    fn list(&self) -> Vec<CameraView> {
        self.lock().iter().map(|e| e.view.clone()).collect()
    }

    fn get(&self, id: &str) -> Option<CameraView> {
        self.lock()
            .iter()
            .find(|e| e.view.config.id == id)
            .map(|e| e.view.clone())
    }

    fn create(
        &self,
        body: serde_json::Value,
    ) -> BoxFuture<'_, Result<CameraConfig, CameraChangeError>> {
        Box::pin(self.create_camera(body))
    }

    fn update(
        &self,
        id: &str,
        patch: serde_json::Value,
    ) -> BoxFuture<'_, Result<CameraConfig, CameraChangeError>> {
        let id = id.to_owned();
        Box::pin(async move { self.update_camera(&id, patch).await })
    }

    fn delete(&self, id: &str) -> BoxFuture<'_, Result<(), CameraChangeError>> {
        let id = id.to_owned();
        Box::pin(async move { self.delete_camera(&id).await })
    }

    fn live(&self, id: &str) -> Result<LiveFeed, LiveRefusal> {
        let media = self
            .lock()
            .iter()
            .find(|e| e.view.config.id == id)
            .and_then(|e| e.running.as_ref().map(|r| r.media.clone()));
        media.ok_or(LiveRefusal::NotRunning)?.watch()
    }

    fn media_totals(&self) -> MediaTotals {
        let (viewers, bytes_sent, refused) = self.parts.live.totals();
        let (clips_written, clip_bytes, clips_failed) = self.parts.clips.totals();
        let ring_bytes = self
            .lock()
            .iter()
            .filter_map(|e| e.running.as_ref())
            .map(|r| r.media.ring_bytes() as u64)
            .sum();
        MediaTotals {
            ring_bytes,
            viewers,
            bytes_sent,
            refused,
            clips_written,
            clip_bytes,
            clips_failed,
        }
    }

    fn latest_frame_jpeg(&self, id: &str) -> BoxFuture<'_, Option<Vec<u8>>> {
        let latest = self
            .lock()
            .iter()
            .find(|e| e.view.config.id == id)
            .and_then(|e| e.running.as_ref().map(|r| r.latest.clone()));
        Box::pin(async move {
            let frame = latest?.get()?;
            // Encoding takes milliseconds: not on the async workers.
            match tokio::task::spawn_blocking(move || xueliang_analytics::encode_jpeg(&frame)).await
            {
                Ok(Ok(jpeg)) => Some(jpeg),
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot encode the latest frame");
                    None
                }
                Err(_) => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A (a selection).
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut got = target.clone();
            merge_patch(&mut got, &patch);
            assert_eq!(got, want, "{target} + {patch}");
        }
    }

    #[test]
    fn a_patch_without_password_keeps_it_and_null_removes_it() {
        let stored = json!({"id": "a", "name": "A", "url": "rtsp://h/a",
            "username": "admin", "password": "pw", "detection": {"fps": 2}});
        let mut d = stored.clone();
        merge_patch(
            &mut d,
            &json!({"url": "rtsp://h/b", "detection": {"min_score": 0.5}}),
        );
        assert_eq!(d["password"], "pw");
        assert_eq!(d["detection"], json!({"fps": 2, "min_score": 0.5}));
        merge_patch(&mut d, &json!({"password": null, "username": null}));
        assert!(d.get("password").is_none());
    }

    #[test]
    fn stored_definitions_have_no_nulls_and_labels_are_checked() {
        assert_eq!(
            without_nulls(&json!({"a": null, "b": {"c": null, "d": 1}})),
            json!({"b": {"d": 1}})
        );
        let config =
            xueliang_core::Config::parse("[detection]\nlabels = [\"person\", \"car\"]\n").unwrap();
        let labels = vec!["person".to_owned(), "car".to_owned()];
        let ok = json!({"id": "a", "name": "A", "url": "rtsp://h/a"});
        assert!(parse_camera(&config.camera_defaults, &labels, &ok).is_ok());
        let mut bad = ok.clone();
        merge_patch(&mut bad, &json!({"detection": {"labels": ["unicorn"]}}));
        let e = parse_camera(&config.camera_defaults, &labels, &bad).unwrap_err();
        assert_eq!(e.field, "detection.labels");
    }
}
