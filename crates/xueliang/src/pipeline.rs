//! The threads after ingest: decode pool -> inference worker -> analytics and
//! store writer. Every hand-off is bounded: encoded frames are dropped (and
//! counted) when decode is behind, decoded frames are replaced in
//! latest-frame slots when detection is behind, and events block upstream
//! rather than being dropped.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{error, info, warn};
use xueliang_analytics::{CameraAnalytics, EventUpdate};
use xueliang_core::{
    CameraConfig, CameraRef, CameraStats, DecodedFrame, FrameDetections, LatestFrameSlots,
};
use xueliang_decode::{CameraDecodeSpec, DecodePool};
use xueliang_detect::{spawn_inference_worker, Detector, InferenceCamera};
use xueliang_store::{EventStore, StoreError};

/// Detected frames waiting for analytics; when full the inference worker waits.
const ANALYTICS_QUEUE: usize = 16;

/// One running camera as the pipeline sees it.
pub struct PipelineCamera {
    pub camera: CameraRef,
    pub config: CameraConfig,
    pub stats: Arc<CameraStats>,
}

pub struct Pipeline {
    pub decode: Arc<DecodePool>,
    inference: JoinHandle<()>,
    analytics: JoinHandle<()>,
}

impl Pipeline {
    pub fn start(
        cameras: &[PipelineCamera],
        decode_threads: usize,
        detector: Box<dyn Detector>,
        geometry: xueliang_core::InputGeometry,
        store: Arc<dyn EventStore>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Pipeline> {
        let (slots, ready) = LatestFrameSlots::<DecodedFrame>::new(cameras.len());
        let specs = cameras
            .iter()
            .map(|c| CameraDecodeSpec {
                camera: c.camera.clone(),
                stats: c.stats.clone(),
                detect_fps: c.config.detection.fps,
            })
            .collect();
        let decode = Arc::new(DecodePool::start(decode_threads, specs, geometry, slots)?);
        let (tx, rx) = sync_channel(ANALYTICS_QUEUE);
        let inference_cameras = cameras
            .iter()
            .map(|c| InferenceCamera {
                stats: c.stats.clone(),
                min_score: c.config.detection.floor(),
            })
            .collect();
        let inference = spawn_inference_worker(detector, inference_cameras, ready, tx)?;
        let per_camera = cameras
            .iter()
            .map(|c| {
                CameraAnalytics::new(
                    c.config.id.clone(),
                    c.config.village.clone(),
                    c.config.grid.clone(),
                    c.config.detection.clone(),
                )
            })
            .collect();
        let writer = EventWriter {
            store,
            runtime,
            ids: HashMap::new(),
        };
        let analytics = std::thread::Builder::new()
            .name("analytics".into())
            .spawn(move || run_analytics(rx, per_camera, writer))?;
        Ok(Pipeline {
            decode,
            inference,
            analytics,
        })
    }

    /// Waits for the threads to drain after ingest has stopped. Open events are
    /// ended and written before this returns.
    pub fn finish(self) {
        match Arc::try_unwrap(self.decode) {
            Ok(pool) => pool.shutdown(),
            Err(_) => warn!("decode pool still referenced at shutdown"),
        }
        let _ = self.inference.join();
        let _ = self.analytics.join();
    }
}

fn run_analytics(
    rx: Receiver<FrameDetections>,
    mut cameras: Vec<CameraAnalytics>,
    mut writer: EventWriter,
) {
    while let Ok(FrameDetections { frame, detections }) = rx.recv() {
        let index = frame.camera.index;
        let updates = cameras[index].observe(&frame, &detections);
        for u in updates {
            writer.apply(index, u);
        }
    }
    for (index, cam) in cameras.iter_mut().enumerate() {
        for u in cam.end_all() {
            writer.apply(index, u);
        }
    }
    info!("analytics stopped; open events ended");
}

/// Writes event updates to the store from the analytics thread, retrying
/// while the store cannot take them (the pipeline waits; events are not dropped).
struct EventWriter {
    store: Arc<dyn EventStore>,
    runtime: tokio::runtime::Handle,
    /// (camera index, analytics key) -> stored event id.
    ids: HashMap<(usize, u64), i64>,
}

impl EventWriter {
    fn apply(&mut self, camera: usize, update: EventUpdate) {
        match update {
            EventUpdate::Started { key, event } => {
                let (cam, label) = (event.camera_id.clone(), event.label.clone());
                if let Some(id) =
                    self.retry("insert event", || self.store.insert_event(event.clone()))
                {
                    info!(camera = %cam, label = %label, event = id, "event started");
                    self.ids.insert((camera, key), id);
                }
            }
            EventUpdate::Ended {
                key,
                ended_at,
                score,
                boxes,
            } => {
                if let Some(id) = self.ids.remove(&(camera, key)) {
                    self.retry("end event", || {
                        self.store.end_event(id, ended_at, score, boxes.clone())
                    });
                }
            }
        }
    }

    fn retry<T, F>(&self, what: &str, op: impl Fn() -> F) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.runtime.block_on(op()) {
                Ok(v) => return Some(v),
                Err(e) if e.is_retriable() => {
                    warn!(error = %e, delay_ms = delay.as_millis() as u64, "cannot {what}; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    error!(error = %e, "cannot {what}; giving up on this update");
                    return None;
                }
            }
        }
    }
}
