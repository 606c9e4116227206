//! The threads after ingest: decode pool -> inference workers -> analytics
//! shards (one thread each, a camera pinned to one) -> a store writer task
//! per shard. Every hand-off is bounded: encoded frames are dropped (and
//! counted) when decode is behind, decoded frames are replaced in
//! latest-frame slots when detection is behind, and detected frames and
//! events block upstream rather than being dropped.
//!
//! Cameras are added and removed while the threads run. Each running camera
//! (each start of a camera, after a change too) gets an index that is never
//! reused, so frames still in flight from a stopped camera can never be taken
//! for another camera's.

use crate::shards::{CameraWork, ShardInput, Shards};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use xueliang_analytics::CameraAnalytics;
use xueliang_core::regions::RegionLooks;
use xueliang_core::{
    CameraConfig, CameraRef, CameraStats, DecodedFrame, FrameSink, LatestFrameSlots,
};
use xueliang_decode::{ActivitySettings, CameraDecodeSpec, DecodePool, HardwarePlan};
use xueliang_detect::{spawn_inference_workers, Detector, InferenceCamera};
use xueliang_health::PictureChecker;
use xueliang_store::{EventLifecycle, EventStore};

/// Full slots each inference worker's ready queue holds (more running cameras
/// than this per worker lose frames only when all of them are full at once).
const READY_QUEUE: usize = 4096;

/// One running camera as the pipeline sees it.
pub struct PipelineCamera {
    pub camera: CameraRef,
    pub config: CameraConfig,
    pub stats: Arc<CameraStats>,
}

/// A camera's newest frame seen by analytics (for `frame.jpg`). Each camera
/// has its own lock, taken once per detected frame and per request.
#[derive(Default)]
pub struct LatestFrame(Mutex<Option<Arc<DecodedFrame>>>);

impl LatestFrame {
    pub(crate) fn set(&self, frame: DecodedFrame) {
        *lock(&self.0) = Some(Arc::new(frame));
    }

    pub fn get(&self) -> Option<Arc<DecodedFrame>> {
        lock(&self.0).clone()
    }
}

pub struct Pipeline {
    /// `None` once finished.
    decode: Mutex<Option<DecodePool<InferenceCamera>>>,
    /// When a camera counts as idle and what it then decodes.
    activity: ActivitySettings,
    /// The analytics shards' queues, for camera changes; `None` once finished.
    shards: Mutex<Option<Shards>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Locks, taking over a lock a panicking thread left poisoned (the data
/// behind these locks stays consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Pipeline {
    /// Starts the threads with no cameras; [`Pipeline::add`] adds them.
    /// `analytics_threads` shards analytics (at least one); `lifecycle` is
    /// told of events as they are written (the clip recorder).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        decode_threads: usize,
        analytics_threads: usize,
        activity: ActivitySettings,
        hardware: HardwarePlan,
        detectors: Vec<Box<dyn Detector>>,
        geometry: xueliang_core::InputGeometry,
        store: Arc<dyn EventStore>,
        lifecycle: Option<Arc<dyn EventLifecycle>>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Pipeline> {
        let (slots, ready) = LatestFrameSlots::<DecodedFrame, InferenceCamera>::sharded(
            READY_QUEUE,
            detectors.len(),
        );
        let decode = DecodePool::start(decode_threads, geometry, hardware, slots)?;
        let (shards, mut threads) = Shards::start(analytics_threads, store, lifecycle, runtime)?;
        threads.extend(spawn_inference_workers(detectors, ready, shards.clone())?);
        Ok(Pipeline {
            decode: Mutex::new(Some(decode)),
            activity,
            shards: Mutex::new(Some(shards)),
            threads: Mutex::new(threads),
        })
    }

    /// Adds a camera; returns the sink its ingest worker pushes to and where
    /// its newest analysed frame is kept. Blocks while a queue is full: call
    /// it off the async workers. `None` once the pipeline is finished.
    pub fn add(&self, cam: &PipelineCamera) -> Option<(Arc<dyn FrameSink>, Arc<LatestFrame>)> {
        let latest = Arc::new(LatestFrame::default());
        let work = CameraWork {
            objects: CameraAnalytics::new(cam.config.clone()),
            picture: PictureChecker::new(cam.config.clone()),
            stats: cam.stats.clone(),
            latest: latest.clone(),
        };
        let shards = lock(&self.shards).clone()?;
        // Analytics learns of the camera before any of its frames exist.
        let index = cam.camera.index;
        if !shards.send(index, ShardInput::Add(index, Box::new(work))) {
            return None;
        }
        let decode = lock(&self.decode);
        let sink = decode.as_ref()?.add(
            CameraDecodeSpec {
                camera: cam.camera.clone(),
                stats: cam.stats.clone(),
                detect_fps: cam.config.detection.fps,
                reduced_fps: cam.config.detection.reduced_fps(),
                activity: self.activity,
                regions: RegionLooks::of(&cam.config),
            },
            InferenceCamera {
                stats: cam.stats.clone(),
                // Half the lowest threshold: weak detections keep tracks alive
                // through partial occlusion (they never start one).
                min_score: cam.config.detection.floor() * 0.5,
            },
        );
        Some((sink, latest))
    }

    /// Forgets a camera whose ingest worker has stopped: its decoder goes, its
    /// open events are ended. Frames still in flight are dropped. Blocks like
    /// [`Pipeline::add`].
    pub fn remove(&self, index: usize) {
        if let Some(decode) = lock(&self.decode).as_ref() {
            decode.remove(index);
        }
        if let Some(shards) = lock(&self.shards).clone() {
            shards.send(index, ShardInput::Remove(index));
        }
    }

    /// Waits for the threads to drain after every ingest worker has stopped.
    /// Open events are ended and written before this returns.
    /// Pipeline threads (decode, inference, analytics) that have ended
    /// while the service runs: a panic (logged) took them.
    pub fn stopped_threads(&self) -> usize {
        lock(&self.threads)
            .iter()
            .filter(|t| t.is_finished())
            .count()
    }

    pub fn finish(&self) {
        drop(lock(&self.shards).take());
        if let Some(pool) = lock(&self.decode).take() {
            pool.shutdown();
        }
        for t in std::mem::take(&mut *lock(&self.threads)) {
            let _ = t.join();
        }
    }
}
