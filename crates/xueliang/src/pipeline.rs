//! The threads after ingest: decode pool -> inference worker -> analytics and
//! store writer. Every hand-off is bounded: encoded frames are dropped (and
//! counted) when decode is behind, decoded frames are replaced in
//! latest-frame slots when detection is behind, and events block upstream
//! rather than being dropped.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use tracing::{info, warn};
use xueliang_analytics::CameraAnalytics;
use xueliang_core::{
    CameraConfig, CameraRef, CameraStats, DecodedFrame, EventUpdate, FrameDetections,
    LatestFrameSlots,
};
use xueliang_decode::{ActivitySettings, CameraDecodeSpec, DecodePool};
use xueliang_detect::{spawn_inference_workers, Detector, InferenceCamera};
use xueliang_health::PictureChecker;
use xueliang_store::{EventStore, EventWriter};

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
    inference: Vec<JoinHandle<()>>,
    analytics: JoinHandle<()>,
}

impl Pipeline {
    pub fn start(
        cameras: &[PipelineCamera],
        decode_threads: usize,
        activity: ActivitySettings,
        detectors: Vec<Box<dyn Detector>>,
        geometry: xueliang_core::InputGeometry,
        store: Arc<dyn EventStore>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Pipeline> {
        let (slots, ready) =
            LatestFrameSlots::<DecodedFrame>::sharded(cameras.len(), detectors.len());
        let specs = cameras
            .iter()
            .map(|c| CameraDecodeSpec {
                camera: c.camera.clone(),
                stats: c.stats.clone(),
                detect_fps: c.config.detection.fps,
                activity,
            })
            .collect();
        let decode = Arc::new(DecodePool::start(decode_threads, specs, geometry, slots)?);
        let (tx, rx) = sync_channel(ANALYTICS_QUEUE);
        let inference_cameras = cameras
            .iter()
            .map(|c| InferenceCamera {
                stats: c.stats.clone(),
                // Half the lowest threshold: weak detections keep tracks alive
                // through partial occlusion (they never start one).
                min_score: c.config.detection.floor() * 0.5,
            })
            .collect();
        let inference = spawn_inference_workers(detectors, inference_cameras, ready, tx)?;
        let per_camera = cameras
            .iter()
            .map(|c| CameraWork {
                objects: CameraAnalytics::new(c.config.clone()),
                picture: PictureChecker::new(c.config.clone()),
                stats: c.stats.clone(),
            })
            .collect();
        let writer = EventWriter::new(store);
        let analytics = std::thread::Builder::new()
            .name("analytics".into())
            .spawn(move || run_analytics(rx, per_camera, writer, runtime))?;
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
        for worker in self.inference {
            let _ = worker.join();
        }
        let _ = self.analytics.join();
    }
}

fn run_analytics(
    rx: Receiver<FrameDetections>,
    mut cameras: Vec<CameraWork>,
    mut writer: EventWriter,
    runtime: tokio::runtime::Handle,
) {
    // Producer ids for the writer: two per camera (objects, picture checks).
    let mut store = |producer: usize, updates: Vec<EventUpdate>| {
        for u in updates {
            runtime.block_on(writer.apply(producer, u));
        }
    };
    while let Ok(FrameDetections { frame, detections }) = rx.recv() {
        let index = frame.camera.index;
        let cam = &mut cameras[index];
        store(2 * index, cam.objects.observe(&frame, &detections));
        store(2 * index + 1, cam.picture.observe(&frame));
        cam.stats.set_picture(cam.picture.flags());
        // The decoder stays busy (every frame decoded) while this is set.
        cam.stats.set_tracked_objects(cam.objects.has_live_tracks());
    }
    for (index, cam) in cameras.iter_mut().enumerate() {
        store(2 * index, cam.objects.end_all());
    }
    info!("analytics stopped; open events ended");
}

/// The per-camera state of the analytics thread.
struct CameraWork {
    objects: CameraAnalytics,
    picture: PictureChecker,
    stats: Arc<CameraStats>,
}
