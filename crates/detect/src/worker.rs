//! The inference workers: one thread and one session each, every camera
//! belonging to one of them. A worker takes the newest frame of whichever of
//! its cameras is ready, together with the frames of its other cameras that
//! are waiting at that moment (up to the detector's batch; it never waits for
//! a batch to fill), runs the model once on them, and hands each frame and its
//! detections on in the order taken (a frame without a model input, for the
//! picture checks only, is handed on without detections). The hand-off blocks
//! when analytics is behind (events are never dropped); frames then pile up
//! in the latest-frame slots, where the older ones are replaced and counted.

use crate::regions::{merge_regions, region_input};
use crate::session::{Detector, Picture};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::warn;
use xueliang_core::regions::Region;
use xueliang_core::slots::SlotReceiver;
use xueliang_core::telemetry::telemetry;
use xueliang_core::{CameraStats, DecodedFrame, Detection, FrameDetections, ModelInput};

/// What the worker needs per camera (it travels in the camera's slot).
#[derive(Clone)]
pub struct InferenceCamera {
    pub stats: Arc<CameraStats>,
    /// Detections below this score are dropped (the camera's lowest threshold).
    pub min_score: f32,
}

/// Where a worker hands each detected frame on. `send` blocks while the
/// receiving queue is full (the worker waits: events are never dropped) and
/// returns `false` once the receiver is gone (the worker then stops).
pub trait DetectedSink: Clone + Send + 'static {
    fn send(&self, frame: FrameDetections) -> bool;
}

impl DetectedSink for SyncSender<FrameDetections> {
    fn send(&self, frame: FrameDetections) -> bool {
        SyncSender::send(self, frame).is_ok()
    }
}

/// One inference worker per receiver of sharded slots, each with its own
/// detector (session): throughput scales with cores when a session's own
/// threads do not (small models), and each worker batches its own cameras.
pub fn spawn_inference_workers<S: DetectedSink>(
    detectors: Vec<Box<dyn Detector>>,
    ready: Vec<SlotReceiver<DecodedFrame, InferenceCamera>>,
    out: S,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    detectors
        .into_iter()
        .zip(ready)
        .enumerate()
        .map(|(i, (d, r))| spawn_named(d, r, out.clone(), format!("inference-{i}")))
        .collect()
}

fn spawn_named<S: DetectedSink>(
    mut detector: Box<dyn Detector>,
    ready: SlotReceiver<DecodedFrame, InferenceCamera>,
    out: S,
    name: String,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        let mut failures = 0u64;
        let batch = detector.max_batch().max(1);
        let mut taken: Vec<(InferenceCamera, DecodedFrame)> = Vec::with_capacity(batch);
        loop {
            match ready.next(Duration::from_millis(500)) {
                Ok((_, cam, frame)) => taken.push((cam, frame)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Whatever else is waiting now joins the run (frames for the
            // picture checks only ride along without counting).
            while taken
                .iter()
                .filter(|(_, f)| f.model_input.is_some())
                .count()
                < batch
            {
                match ready.try_next() {
                    Some((_, cam, frame)) => taken.push((cam, frame)),
                    None => break,
                }
            }
            let mut found = detect_taken(detector.as_mut(), &taken, &mut failures).into_iter();
            for (_, frame) in taken.drain(..) {
                let detections = match frame.model_input {
                    None => None,
                    Some(_) => match found.next() {
                        Some(Some(d)) => Some(d),
                        // The run failed: this frame goes no further.
                        _ => continue,
                    },
                };
                if !out.send(FrameDetections { frame, detections }) {
                    return;
                }
            }
        }
    })
}

/// Model runs on the taken frames that have a model input (one run when
/// the pictures fit the detector's batch): per such frame, its detections
/// (its whole picture's merged with its regions'), or `None` each when a
/// run failed (logged at powers of two of the failures).
fn detect_taken(
    detector: &mut dyn Detector,
    taken: &[(InferenceCamera, DecodedFrame)],
    failures: &mut u64,
) -> Vec<Option<Vec<Detection>>> {
    let looked: Vec<(&InferenceCamera, &DecodedFrame, &ModelInput)> = taken
        .iter()
        .filter_map(|(cam, frame)| Some((cam, frame, frame.model_input.as_ref()?)))
        .collect();
    if looked.is_empty() {
        return Vec::new();
    }
    // Each frame's regions as model inputs, made here (off the decode
    // threads) and only for the frames the model sees.
    let crops: Vec<Vec<ModelInput>> = looked
        .iter()
        .map(|(_, frame, whole)| {
            frame
                .regions
                .iter()
                .map(|r| region_input(frame, *r, whole.width, whole.height))
                .collect()
        })
        .collect();
    let mut pictures: Vec<Picture> = Vec::new();
    for ((cam, frame, whole), crops) in looked.iter().zip(&crops) {
        pictures.push(Picture {
            input: whole,
            frame_w: frame.width,
            frame_h: frame.height,
            min_score: cam.min_score,
        });
        for (region, input) in frame.regions.iter().zip(crops) {
            pictures.push(Picture {
                input,
                frame_w: region.w,
                frame_h: region.h,
                min_score: cam.min_score,
            });
        }
    }
    let started = Instant::now();
    let batch = detector.max_batch().max(1);
    let mut found: Vec<Vec<Detection>> = Vec::with_capacity(pictures.len());
    let mut result = Ok(());
    for chunk in pictures.chunks(batch) {
        telemetry().inference_runs.fetch_add(1, Ordering::Relaxed);
        match detector.detect_batch(chunk) {
            Ok(f) => found.extend(f),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let share = started.elapsed() / looked.len() as u32;
    for (cam, frame, _) in &looked {
        telemetry().inference_seconds.observe(share);
        CameraStats::add(&cam.stats.frames_detected, 1);
        CameraStats::add(&cam.stats.regions_detected, frame.regions.len() as u64);
    }
    if let Err(e) = result {
        *failures += 1;
        if failures.is_power_of_two() {
            let cameras: Vec<&str> = looked.iter().map(|(_, f, _)| &*f.camera.id).collect();
            warn!(cameras = ?cameras, error = %e, failures = *failures, "inference failed");
        }
        return vec![None; looked.len()];
    }
    let mut found = found.into_iter();
    looked
        .iter()
        .map(|(_, frame, _)| {
            let whole = found.next().unwrap_or_default();
            if frame.regions.is_empty() {
                return Some(whole);
            }
            let regions: Vec<(Region, Vec<Detection>)> = frame
                .regions
                .iter()
                .map(|r| (*r, found.next().unwrap_or_default()))
                .collect();
            Some(merge_regions(&whole, &regions, frame.width, frame.height))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DetectError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::sync_channel;
    use xueliang_core::{BBox, CameraRef, Detection, LatestFrameSlots, ModelInput};

    /// Held by the tests that count the process's model runs, so that one
    /// does not count the other's.
    static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Finds one person in every picture it is given, and counts them.
    struct OnePerson(Arc<AtomicUsize>);

    impl Detector for OnePerson {
        fn detect(
            &mut self,
            _input: &ModelInput,
            _w: u32,
            _h: u32,
            _min_score: f32,
        ) -> Result<Vec<Detection>, DetectError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(vec![Detection {
                label: "person".into(),
                class_id: 0,
                score: 0.9,
                bbox: BBox {
                    x1: 1.0,
                    y1: 1.0,
                    x2: 5.0,
                    y2: 9.0,
                },
            }])
        }
    }

    #[test]
    fn a_picture_without_model_input_passes_the_model_by() {
        let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let calls = Arc::new(AtomicUsize::new(0));
        let (slots, ready) = LatestFrameSlots::sharded(8, 1);
        let (out, rx) = sync_channel(8);
        let stats = Arc::new(CameraStats::default());
        let camera = CameraRef {
            index: 0,
            id: Arc::from("gate"),
        };
        let slot = slots.slot(
            0,
            InferenceCamera {
                stats: stats.clone(),
                min_score: 0.1,
            },
        );
        let threads =
            spawn_inference_workers(vec![Box::new(OnePerson(calls.clone()))], ready, out).unwrap();
        let frame = DecodedFrame::uniform(camera, 8, 8, 100, chrono::Utc::now());
        let picture_only = DecodedFrame {
            model_input: None,
            regions: Vec::new(),
            ..frame.clone()
        };
        let inferences = || telemetry().inference_seconds.snapshot().count;
        let before = inferences();
        let mut seen = Vec::new();
        for f in [picture_only, frame] {
            slot.put(f);
            seen.push(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        }
        assert!(seen[0].detections.is_none(), "picture only: no detections");
        assert_eq!(seen[1].detections.as_ref().map(Vec::len), Some(1));
        assert_eq!(calls.load(Ordering::Relaxed), 1, "the model ran once");
        assert_eq!(CameraStats::get(&stats.frames_detected), 1);
        assert_eq!(inferences(), before + 1, "one model run timed");
        drop((slot, slots, rx));
        for t in threads {
            t.join().unwrap();
        }
    }

    /// Frames of `n` cameras (768x576, min score 0.5, as `adjust` leaves
    /// them) waiting in their slots; the slots, to keep.
    fn waiting(
        slots: &LatestFrameSlots<DecodedFrame, InferenceCamera>,
        stats: &Arc<CameraStats>,
        n: usize,
        adjust: impl Fn(usize, &mut InferenceCamera, &mut DecodedFrame),
    ) -> Vec<xueliang_core::slots::FrameSlot<DecodedFrame, InferenceCamera>> {
        (0..n)
            .map(|i| {
                let mut cam = InferenceCamera {
                    stats: stats.clone(),
                    min_score: 0.5,
                };
                let camera = CameraRef {
                    index: i,
                    id: Arc::from(format!("cam{i}").as_str()),
                };
                let mut frame = DecodedFrame::uniform(camera, 768, 576, 100, chrono::Utc::now());
                adjust(i, &mut cam, &mut frame);
                let slot = slots.slot(i, cam);
                slot.put(frame);
                slot
            })
            .collect()
    }

    /// Takes batches of up to 4 and answers each picture with one
    /// detection at its centre, scored by the picture's threshold; records
    /// the batch sizes.
    struct Batches(Arc<std::sync::Mutex<Vec<usize>>>);

    impl Detector for Batches {
        fn detect(
            &mut self,
            _input: &ModelInput,
            _w: u32,
            _h: u32,
            _min_score: f32,
        ) -> Result<Vec<Detection>, DetectError> {
            unreachable!("the worker asks for batches")
        }

        fn max_batch(&self) -> usize {
            4
        }

        fn detect_batch(
            &mut self,
            pictures: &[Picture],
        ) -> Result<Vec<Vec<Detection>>, DetectError> {
            self.0.lock().unwrap().push(pictures.len());
            Ok(pictures
                .iter()
                .map(|p| {
                    let (cx, cy) = (p.frame_w as f32 / 2.0, p.frame_h as f32 / 2.0);
                    vec![Detection {
                        label: "person".into(),
                        class_id: 0,
                        score: p.min_score,
                        bbox: BBox::new(cx - 1.0, cy - 1.0, cx + 1.0, cy + 1.0),
                    }]
                })
                .collect())
        }
    }

    #[test]
    fn pictures_waiting_together_run_as_one_batch_and_each_gets_its_own_answer() {
        let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (slots, ready) = LatestFrameSlots::sharded(8, 1);
        let (out, rx) = sync_channel(8);
        let stats = Arc::new(CameraStats::default());
        // Six cameras' pictures wait before the worker starts; camera 3's
        // is for the picture checks only and rides along.
        let kept = waiting(&slots, &stats, 6, |i, cam, frame| {
            cam.min_score = i as f32 / 10.0;
            if i == 3 {
                frame.model_input = None;
            }
        });
        let runs = || telemetry().inference_runs.load(Ordering::Relaxed);
        let before = runs();
        let threads =
            spawn_inference_workers(vec![Box::new(Batches(sizes.clone()))], ready, out).unwrap();
        let seen: Vec<FrameDetections> = (0..6)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        // In the order taken, each with the answer to its own picture.
        for (i, f) in seen.iter().enumerate() {
            assert_eq!(f.frame.camera.index, i);
            match &f.detections {
                None => assert_eq!(i, 3, "only the picture-check frame has none"),
                Some(d) => assert_eq!(d[0].score, i as f32 / 10.0, "camera {i}"),
            }
        }
        assert_eq!(*sizes.lock().unwrap(), vec![4, 1], "4 then the one left");
        assert_eq!(CameraStats::get(&stats.frames_detected), 5);
        assert_eq!(runs(), before + 2, "two model runs counted");
        drop((kept, slots, rx));
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn a_frame_s_regions_run_with_it_and_their_finds_come_back_in_frame_pixels() {
        let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (slots, ready) = LatestFrameSlots::sharded(8, 1);
        let (out, rx) = sync_channel(8);
        let stats = Arc::new(CameraStats::default());
        let kept = waiting(&slots, &stats, 2, |i, _, frame| {
            if i == 0 {
                frame.regions = vec![
                    Region {
                        x: 100,
                        y: 50,
                        w: 300,
                        h: 300,
                    },
                    Region {
                        x: 400,
                        y: 200,
                        w: 300,
                        h: 300,
                    },
                ];
            }
        });
        let threads =
            spawn_inference_workers(vec![Box::new(Batches(sizes.clone()))], ready, out).unwrap();
        let seen: Vec<FrameDetections> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        let centres = |f: &FrameDetections| -> Vec<(f32, f32)> {
            let mut c: Vec<(f32, f32)> = f
                .detections
                .iter()
                .flatten()
                .map(|d| ((d.bbox.x1 + d.bbox.x2) / 2.0, (d.bbox.y1 + d.bbox.y2) / 2.0))
                .collect();
            c.sort_by(|a, b| a.0.total_cmp(&b.0));
            c
        };
        // The whole frame's find and each region's, moved to the frame.
        assert_eq!(
            centres(&seen[0]),
            vec![(250.0, 200.0), (384.0, 288.0), (550.0, 350.0)]
        );
        assert_eq!(centres(&seen[1]), vec![(384.0, 288.0)]);
        assert_eq!(*sizes.lock().unwrap(), vec![4], "three pictures and one");
        assert_eq!(
            CameraStats::get(&stats.frames_detected),
            2,
            "frames, not pictures"
        );
        assert_eq!(CameraStats::get(&stats.regions_detected), 2);
        drop((kept, slots, rx));
        for t in threads {
            t.join().unwrap();
        }
    }
}
