//! The inference workers: one thread and one session each, every camera
//! belonging to one of them. A worker takes the newest frame of whichever of
//! its cameras is ready and hands the frame and its
//! detections on (a frame without a model input, for the picture checks
//! only, is handed on without detections). The hand-off blocks when analytics is behind (events are never
//! dropped); frames then pile up in the latest-frame slots, where the older
//! ones are replaced and counted.

use crate::session::Detector;
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::warn;
use xueliang_core::slots::SlotReceiver;
use xueliang_core::telemetry::telemetry;
use xueliang_core::{CameraStats, DecodedFrame, FrameDetections};

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
/// threads do not (small models, batch size 1).
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
        loop {
            let (_, cam, frame) = match ready.next(Duration::from_millis(500)) {
                Ok(next) => next,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // A picture for the picture checks only passes the model by.
            let detections = match &frame.model_input {
                None => None,
                Some(input) => {
                    let started = Instant::now();
                    let result = detector.detect(input, frame.width, frame.height, cam.min_score);
                    telemetry().inference_seconds.observe(started.elapsed());
                    CameraStats::add(&cam.stats.frames_detected, 1);
                    match result {
                        Ok(d) => Some(d),
                        Err(e) => {
                            failures += 1;
                            if failures.is_power_of_two() {
                                warn!(camera = %frame.camera.id, error = %e, failures, "inference failed");
                            }
                            continue;
                        }
                    }
                }
            };
            if !out.send(FrameDetections { frame, detections }) {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DetectError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::sync_channel;
    use xueliang_core::{BBox, CameraRef, Detection, LatestFrameSlots, ModelInput};

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
}
