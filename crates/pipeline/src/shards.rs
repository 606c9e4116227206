//! Analytics (tracking, rules, picture checks) sharded over threads by
//! camera: a camera is pinned to shard `index % shards`, so its frames are
//! analysed in the order the inference workers hand them on, and each shard
//! writes its events through its own store writer ([`StoreQueue`]), which
//! also encodes their snapshots, so neither a slow write nor JPEG encoding
//! delays tracking.

use crate::pipeline::LatestFrame;
use crate::store_writer::StoreQueue;
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use tracing::info;
use xueliang_analytics::CameraAnalytics;
use xueliang_core::{CameraStats, FrameDetections};
use xueliang_detect::DetectedSink;
use xueliang_health::PictureChecker;
use xueliang_store::{EventLifecycle, EventStore};

/// Detected frames and camera changes waiting for a shard; when full the
/// sender (an inference worker, or a camera change) waits: a frame that
/// reached analytics is never dropped (decode's latest-frame slots absorb
/// the backlog upstream).
const SHARD_QUEUE: usize = 16;

/// What a shard receives, in one queue so that a camera's Add comes before
/// its first frame.
#[allow(
    clippy::large_enum_variant,
    reason = "frames are the common message; boxing them would allocate per frame"
)]
pub(crate) enum ShardInput {
    Add(usize, Box<CameraWork>),
    /// Ends the camera's open events and forgets it.
    Remove(usize),
    Frame(FrameDetections),
}

/// The per-camera state of a shard.
pub(crate) struct CameraWork {
    pub(crate) objects: CameraAnalytics,
    pub(crate) picture: PictureChecker,
    pub(crate) stats: Arc<CameraStats>,
    pub(crate) latest: Arc<LatestFrame>,
}

/// The shards' queues; a clone goes to each inference worker.
#[derive(Clone)]
pub(crate) struct Shards(Arc<[SyncSender<ShardInput>]>);

impl Shards {
    /// Starts `count` (at least one) shard threads, each with its own store
    /// writer task on `runtime`. A thread ends once every `Shards` clone is
    /// dropped, after ending its cameras' open events and writing them.
    pub(crate) fn start(
        count: usize,
        store: Arc<dyn EventStore>,
        lifecycle: Option<Arc<dyn EventLifecycle>>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<(Shards, Vec<JoinHandle<()>>)> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let (tx, rx) = sync_channel(SHARD_QUEUE);
            let writes = StoreQueue::start(store.clone(), lifecycle.clone(), runtime.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("analytics-{i}"))
                    .spawn(move || run_shard(rx, writes))?,
            );
            senders.push(tx);
        }
        Ok((Shards(senders.into()), threads))
    }

    /// Queues `input` for the shard of camera `index`; blocks while that
    /// queue is full. `false` once the shard is gone.
    pub(crate) fn send(&self, index: usize, input: ShardInput) -> bool {
        self.0[index % self.0.len()].send(input).is_ok()
    }
}

impl DetectedSink for Shards {
    fn send(&self, frame: FrameDetections) -> bool {
        Shards::send(self, frame.frame.camera.index, ShardInput::Frame(frame))
    }
}

fn run_shard(rx: Receiver<ShardInput>, writes: StoreQueue) {
    let mut cameras: HashMap<usize, CameraWork> = HashMap::new();
    // Producer ids for the writer: two per camera index (objects, picture checks).
    for input in rx {
        let FrameDetections { frame, detections } = match input {
            ShardInput::Add(index, work) => {
                cameras.insert(index, *work);
                continue;
            }
            ShardInput::Remove(index) => {
                if let Some(mut cam) = cameras.remove(&index) {
                    writes.send(2 * index, cam.objects.end_all());
                }
                continue;
            }
            ShardInput::Frame(f) => f,
        };
        let index = frame.camera.index;
        // A removed camera's last frames.
        let Some(cam) = cameras.get_mut(&index) else {
            continue;
        };
        match detections {
            Some(detections) => {
                writes.send(2 * index, cam.objects.observe(&frame, &detections));
                // The decoder stays busy (every frame decoded) while anything
                // is needed, and paces the model by the need.
                cam.objects.publish_need(&cam.stats.need);
            }
            // An idle camera's key frame, not shown to the model: nothing
            // moved, so the objects held are where they were.
            None => cam.objects.hold(frame.received_at),
        }
        writes.send(2 * index + 1, cam.picture.observe(&frame));
        cam.stats.set_picture(cam.picture.flags());
        cam.latest.set(frame);
    }
    for (index, cam) in cameras.iter_mut() {
        writes.send(2 * index, cam.objects.end_all());
    }
    writes.finish();
    info!("analytics shard stopped; open events ended and written");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration as Span, TimeZone, Utc};
    use std::time::{Duration, Instant};
    use tokio::sync::watch;
    use xueliang_core::{BBox, CameraRef, Config, DecodedFrame, Detection, Event, EventQuery};
    use xueliang_store::testing::HeldInserts;
    use xueliang_store::SqliteStore;

    const CONFIG: &str = "[detection]\nlabels = [\"person\"]\n\
        [[cameras]]\nid = \"a\"\nname = \"A\"\nurl = \"rtsp://h/a\"\n\
        [[cameras]]\nid = \"b\"\nname = \"B\"\nurl = \"rtsp://h/b\"\n";

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
    }

    /// Frame `i` of a camera at 5 fps: a person walking right.
    fn frame(camera: &CameraRef, i: i64) -> FrameDetections {
        let at = start() + Span::milliseconds(i * 200);
        let x = 100.0 + i as f32 * 4.0;
        FrameDetections {
            frame: DecodedFrame::uniform(camera.clone(), 640, 480, 90, at),
            detections: Some(vec![Detection {
                label: "person".into(),
                class_id: 0,
                score: 0.9,
                bbox: BBox::new(x - 10.0, 300.0, x + 10.0, 360.0),
            }]),
        }
    }

    fn events(rt: &tokio::runtime::Runtime, store: &dyn EventStore, camera: &str) -> Vec<Event> {
        let q = EventQuery {
            camera_id: Some(camera.into()),
            limit: 100,
            ..Default::default()
        };
        rt.block_on(store.list_events(q)).unwrap()
    }

    #[test]
    fn a_stuck_write_of_one_camera_does_not_hold_up_another_shards_tracking() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let (open_tx, open) = watch::channel(false);
        let store = Arc::new(HeldInserts {
            inner: rt.block_on(SqliteStore::open(&url)).unwrap(),
            camera: Some("a"),
            open,
        });
        let (shards, threads) = Shards::start(2, store.clone(), None, rt.handle().clone()).unwrap();
        let mut config = Config::parse(CONFIG).unwrap();
        let mut cameras = Vec::new();
        for (index, cam) in config.cameras.drain(..).enumerate() {
            let camera = CameraRef {
                index,
                id: Arc::from(cam.id.as_str()),
            };
            let latest = Arc::new(LatestFrame::default());
            let work = CameraWork {
                objects: CameraAnalytics::new(cam.clone()),
                picture: PictureChecker::new(cam),
                stats: Arc::new(CameraStats::default()),
                latest: latest.clone(),
            };
            assert!(shards.send(index, ShardInput::Add(index, Box::new(work))));
            cameras.push((camera, latest));
        }
        let [(a, _), (b, b_latest)] = &cameras[..] else {
            unreachable!()
        };
        // Camera A's person makes an event whose insert hangs; A's frames
        // keep coming.
        for i in 0..40 {
            assert!(DetectedSink::send(&shards, frame(a, i)));
        }
        // Camera B (the other shard) is tracked meanwhile: its event is stored.
        const FRAMES: i64 = 40;
        for i in 0..FRAMES {
            assert!(DetectedSink::send(&shards, frame(b, i)));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let b_events = loop {
            let got = events(&rt, &store.inner, "b");
            if !got.is_empty() || Instant::now() > deadline {
                break got;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(b_events.len(), 1, "camera B's event is stored");
        assert!(
            events(&rt, &store.inner, "a").is_empty(),
            "A's insert is stuck"
        );
        // B's frames were analysed in order, through the last.
        let last = b_latest.get().expect("B's frames analysed");
        assert_eq!(
            last.received_at,
            start() + Span::milliseconds((FRAMES - 1) * 200)
        );
        // Released, A's event is written; at the end every open event is
        // ended and written before the threads stop.
        open_tx.send(true).unwrap();
        drop(shards);
        for t in threads {
            t.join().unwrap();
        }
        for camera in ["a", "b"] {
            let got = events(&rt, &store.inner, camera);
            assert_eq!(got.len(), 1, "camera {camera}");
            assert!(got[0].ended_at.is_some(), "camera {camera}'s event ended");
            // The object's track follows the frames in the order sent: each
            // point later and further right than the one before.
            let track = &got[0].track;
            assert!(track.len() >= 10, "camera {camera}: {} points", track.len());
            assert!(
                track
                    .windows(2)
                    .all(|p| p[0].at < p[1].at && p[0].x1 < p[1].x1),
                "camera {camera}'s frames out of order: {track:?}"
            );
            // Its picture was encoded by the writer (off the shard thread)
            // and stored as the event's JPEG snapshot.
            let jpeg = rt.block_on(store.inner.snapshot(got[0].id)).unwrap();
            let jpeg = jpeg.unwrap_or_else(|| panic!("camera {camera}: no snapshot"));
            assert_eq!(&jpeg[..2], &[0xff, 0xd8], "camera {camera}: not a JPEG");
        }
    }
}
