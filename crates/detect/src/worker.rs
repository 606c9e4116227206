//! The inference workers: one thread and one session each, every camera
//! belonging to one of them. A worker takes the newest frame of whichever of
//! its cameras is ready and hands the frame and its
//! detections on. The hand-off blocks when analytics is behind (events are never
//! dropped); frames then pile up in the latest-frame slots, where the older
//! ones are replaced and counted.

use crate::session::Detector;
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::warn;
use xueliang_core::slots::SlotReceiver;
use xueliang_core::{CameraStats, DecodedFrame, FrameDetections};

/// What the worker needs per camera (it travels in the camera's slot).
#[derive(Clone)]
pub struct InferenceCamera {
    pub stats: Arc<CameraStats>,
    /// Detections below this score are dropped (the camera's lowest threshold).
    pub min_score: f32,
}

/// One inference worker per receiver of sharded slots, each with its own
/// detector (session): throughput scales with cores when a session's own
/// threads do not (small models, batch size 1).
pub fn spawn_inference_workers(
    detectors: Vec<Box<dyn Detector>>,
    ready: Vec<SlotReceiver<DecodedFrame, InferenceCamera>>,
    out: SyncSender<FrameDetections>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    detectors
        .into_iter()
        .zip(ready)
        .enumerate()
        .map(|(i, (d, r))| spawn_named(d, r, out.clone(), format!("inference-{i}")))
        .collect()
}

fn spawn_named(
    mut detector: Box<dyn Detector>,
    ready: SlotReceiver<DecodedFrame, InferenceCamera>,
    out: SyncSender<FrameDetections>,
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
            let result =
                detector.detect(&frame.model_input, frame.width, frame.height, cam.min_score);
            CameraStats::add(&cam.stats.frames_detected, 1);
            let detections = match result {
                Ok(d) => d,
                Err(e) => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        warn!(camera = %frame.camera.id, error = %e, failures, "inference failed");
                    }
                    continue;
                }
            };
            if out.send(FrameDetections { frame, detections }).is_err() {
                return;
            }
        }
    })
}
