//! The threads after ingest: decode pool -> inference workers -> analytics and
//! store writer. Every hand-off is bounded: encoded frames are dropped (and
//! counted) when decode is behind, decoded frames are replaced in
//! latest-frame slots when detection is behind, and events block upstream
//! rather than being dropped.
//!
//! Cameras are added and removed while the threads run. Each running camera
//! (each start of a camera, after a change too) gets an index that is never
//! reused, so frames still in flight from a stopped camera can never be taken
//! for another camera's.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::info;
use xueliang_analytics::CameraAnalytics;
use xueliang_core::{
    CameraConfig, CameraRef, CameraStats, DecodedFrame, EventUpdate, FrameDetections, FrameSink,
    LatestFrameSlots,
};
use xueliang_decode::{ActivitySettings, CameraDecodeSpec, DecodePool, HardwarePlan};
use xueliang_detect::{spawn_inference_workers, Detector, InferenceCamera};
use xueliang_health::PictureChecker;
use xueliang_store::{EventStore, EventWriter};

/// Detected frames waiting for analytics; when full the inference worker waits.
const ANALYTICS_QUEUE: usize = 16;
/// Camera changes waiting for the analytics thread; when full the change waits.
const CHANGE_QUEUE: usize = 64;
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
    fn set(&self, frame: DecodedFrame) {
        *lock(&self.0) = Some(Arc::new(frame));
    }

    pub fn get(&self) -> Option<Arc<DecodedFrame>> {
        lock(&self.0).clone()
    }
}

enum AnalyticsChange {
    Add(usize, Box<CameraWork>),
    /// Ends the camera's open events and forgets it.
    Remove(usize),
}

pub struct Pipeline {
    /// `None` once finished.
    decode: Mutex<Option<DecodePool<InferenceCamera>>>,
    /// When a camera counts as idle and what it then decodes.
    activity: ActivitySettings,
    changes: Mutex<Option<SyncSender<AnalyticsChange>>>,
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
    pub fn start(
        decode_threads: usize,
        activity: ActivitySettings,
        hardware: HardwarePlan,
        detectors: Vec<Box<dyn Detector>>,
        geometry: xueliang_core::InputGeometry,
        store: Arc<dyn EventStore>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Pipeline> {
        let (slots, ready) = LatestFrameSlots::<DecodedFrame, InferenceCamera>::sharded(
            READY_QUEUE,
            detectors.len(),
        );
        let decode = DecodePool::start(decode_threads, geometry, hardware, slots)?;
        let (tx, rx) = sync_channel(ANALYTICS_QUEUE);
        let mut threads = spawn_inference_workers(detectors, ready, tx)?;
        let (changes_tx, changes_rx) = sync_channel(CHANGE_QUEUE);
        let writer = EventWriter::new(store);
        threads.push(
            std::thread::Builder::new()
                .name("analytics".into())
                .spawn(move || run_analytics(rx, changes_rx, writer, runtime))?,
        );
        Ok(Pipeline {
            decode: Mutex::new(Some(decode)),
            activity,
            changes: Mutex::new(Some(changes_tx)),
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
        let changes = lock(&self.changes).clone()?;
        // Analytics learns of the camera before any of its frames exist.
        changes
            .send(AnalyticsChange::Add(cam.camera.index, Box::new(work)))
            .ok()?;
        let decode = lock(&self.decode);
        let sink = decode.as_ref()?.add(
            CameraDecodeSpec {
                camera: cam.camera.clone(),
                stats: cam.stats.clone(),
                detect_fps: cam.config.detection.fps,
                activity: self.activity,
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
        if let Some(changes) = lock(&self.changes).clone() {
            let _ = changes.send(AnalyticsChange::Remove(index));
        }
    }

    /// Waits for the threads to drain after every ingest worker has stopped.
    /// Open events are ended and written before this returns.
    pub fn finish(&self) {
        drop(lock(&self.changes).take());
        if let Some(pool) = lock(&self.decode).take() {
            pool.shutdown();
        }
        for t in std::mem::take(&mut *lock(&self.threads)) {
            let _ = t.join();
        }
    }
}

fn run_analytics(
    rx: Receiver<FrameDetections>,
    changes: Receiver<AnalyticsChange>,
    mut writer: EventWriter,
    runtime: tokio::runtime::Handle,
) {
    let mut cameras: HashMap<usize, CameraWork> = HashMap::new();
    // Producer ids for the writer: two per camera index (objects, picture checks).
    let mut store = |producer: usize, updates: Vec<EventUpdate>| {
        for u in updates {
            runtime.block_on(writer.apply(producer, u));
        }
    };
    loop {
        let next = rx.recv_timeout(Duration::from_millis(500));
        // Changes first: a camera's Add was sent before its first frame.
        loop {
            match changes.try_recv() {
                Ok(AnalyticsChange::Add(index, work)) => {
                    cameras.insert(index, *work);
                }
                Ok(AnalyticsChange::Remove(index)) => {
                    if let Some(mut cam) = cameras.remove(&index) {
                        store(2 * index, cam.objects.end_all());
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let FrameDetections { frame, detections } = match next {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let index = frame.camera.index;
        // A removed camera's last frames.
        let Some(cam) = cameras.get_mut(&index) else {
            continue;
        };
        match detections {
            Some(detections) => {
                store(2 * index, cam.objects.observe(&frame, &detections));
                // The decoder stays busy (every frame decoded) while this is set.
                cam.stats.set_tracked_objects(cam.objects.has_live_tracks());
            }
            // An idle camera's key frame, not shown to the model: nothing
            // moved, so the objects held are where they were.
            None => cam.objects.hold(frame.received_at),
        }
        store(2 * index + 1, cam.picture.observe(&frame));
        cam.stats.set_picture(cam.picture.flags());
        cam.latest.set(frame);
    }
    for (index, cam) in cameras.iter_mut() {
        store(2 * index, cam.objects.end_all());
    }
    info!("analytics stopped; open events ended");
}

/// The per-camera state of the analytics thread.
struct CameraWork {
    objects: CameraAnalytics,
    picture: PictureChecker,
    stats: Arc<CameraStats>,
    latest: Arc<LatestFrame>,
}
