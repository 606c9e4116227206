//! One pass of a clip through the real decoder (with its activity gate and
//! pacing), the real detector and the real analytics, in stream time: what
//! `xueliang serve` does for one camera, without threads, so that nothing
//! is dropped and two passes differ only in their settings.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use xueliang_analytics::CameraAnalytics;
use xueliang_core::config::CameraConfig;
use xueliang_core::regions::RegionLooks;
use xueliang_core::{BBox, CameraRef, CameraStats, EncodedFrame, EventUpdate, InputGeometry};
use xueliang_decode::{ActivitySettings, CameraDecodeSpec, ReplayDecoder};
use xueliang_detect::Detector;

/// A rule or line event, as the store would get it.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleEvent {
    /// kind/zone-or-line/rule, e.g. `intrusion/road/road-intrusion`.
    pub key: String,
    /// Stream seconds.
    pub start: f64,
}

/// Where the tracker saw an object, each time it was matched.
#[derive(Clone, Debug, Default)]
pub struct SeenTrack {
    pub label: String,
    /// Confirmed at some point (a one-frame detection never is).
    pub confirmed: bool,
    /// (stream seconds, box), in order.
    pub points: Vec<(f64, BBox)>,
}

impl SeenTrack {
    pub fn first(&self) -> f64 {
        self.points.first().map_or(0.0, |p| p.0)
    }

    pub fn last(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }
}

/// What one pass saw and cost.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub frames: u64,
    pub decoded: u64,
    pub inferences: u64,
    /// Wall time inside the detector, seconds.
    pub inference_s: f64,
    /// Inferences the motion mask asked for under a reduced need.
    pub woken_by_motion: u64,
    /// (line, direction) -> stream seconds of each crossing.
    pub crossings: BTreeMap<(String, String), Vec<f64>>,
    pub events: Vec<RuleEvent>,
    /// By track id.
    pub tracks: BTreeMap<u64, SeenTrack>,
    /// Detections after which the analytics gave each reason for their need.
    pub reasons: BTreeMap<&'static str, u64>,
}

/// The full rate at another phase: every picture of the clip is decoded to
/// a model input, and the model sees every `every`th, starting with number
/// `at` (the full-rate pass sees numbers 0, `every`, ...).
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub clip_fps: f64,
    pub every: u64,
    pub at: u64,
}

impl Phase {
    /// Half a detection interval after the full rate's pictures, or `None`
    /// when the clip has no picture between two detections.
    pub fn half_interval(clip_fps: f64, detect_fps: f64) -> Option<Phase> {
        let every = (clip_fps / detect_fps).round() as u64;
        (every >= 2).then_some(Phase {
            clip_fps,
            every,
            at: every / 2,
        })
    }
}

/// Runs `packets` through `camera`'s analytics, adaptive or at the full
/// rate as its `detection.adaptive` says, or at the full rate shifted by
/// `phase`; `trace`: each detection's need and tracks, and each event, on
/// stderr.
pub fn run(
    packets: &[EncodedFrame],
    camera: &CameraConfig,
    detector: &mut dyn Detector,
    geometry: InputGeometry,
    phase: Option<Phase>,
    trace: bool,
) -> Result<Outcome> {
    let stats = Arc::new(CameraStats::default());
    let spec = CameraDecodeSpec {
        camera: CameraRef {
            index: 0,
            id: Arc::from(camera.id.as_str()),
        },
        stats: stats.clone(),
        detect_fps: phase.map_or(camera.detection.fps, |p| p.clip_fps),
        reduced_fps: phase.map_or(camera.detection.reduced_fps(), |p| p.clip_fps),
        activity: ActivitySettings::default(),
        regions: RegionLooks::of(camera),
    };
    let mut decoder = ReplayDecoder::new(spec, geometry);
    let mut analytics = CameraAnalytics::new(camera.clone());
    let start = packets.first().map(|p| p.received_at).unwrap_or_default();
    let seconds = |at: chrono::DateTime<chrono::Utc>| {
        (at - start).num_microseconds().unwrap_or(0) as f64 / 1e6
    };
    // Half the lowest threshold, as the pipeline asks of the model.
    let min_score = camera.detection.floor() * 0.5;
    let mut out = Outcome::default();
    let mut offered = 0u64;
    for packet in packets {
        out.frames += 1;
        for frame in decoder.push(packet.clone()) {
            let Some(input) = &frame.model_input else {
                analytics.hold(frame.received_at);
                continue;
            };
            offered += 1;
            if phase.is_some_and(|p| (offered - 1) % p.every != p.at) {
                continue;
            }
            let started = Instant::now();
            let detections = detector
                .detect(input, frame.width, frame.height, min_score)
                .context("inference")?;
            out.inference_s += started.elapsed().as_secs_f64();
            out.inferences += 1;
            let t = seconds(frame.received_at);
            for update in analytics.observe(&frame, &detections) {
                match update {
                    EventUpdate::Crossed(c) => out
                        .crossings
                        .entry((c.line, c.direction.as_str().to_owned()))
                        .or_default()
                        .push(seconds(c.at)),
                    EventUpdate::Started { event, .. } => {
                        let key = format!(
                            "{}/{}/{}",
                            event.kind.as_str(),
                            event.zone.as_deref().unwrap_or("-"),
                            event.rule.as_deref().unwrap_or("-")
                        );
                        if trace {
                            eprintln!("{t:.2} event {key} object {:?}", event.object_id);
                        }
                        out.events.push(RuleEvent {
                            key,
                            start: seconds(event.started_at),
                        })
                    }
                    _ => {}
                }
            }
            if trace {
                let j = analytics.judged();
                let boxes: Vec<String> = analytics
                    .tracks()
                    .iter()
                    .map(|t| {
                        format!(
                            "{}{}{}@({:.2},{:.2})",
                            t.id,
                            if t.confirmed() { "" } else { "?" },
                            if t.seen_now { "" } else { "-" },
                            (t.bbox.x1 + t.bbox.x2) / 2.0 / frame.width as f32,
                            t.bbox.y2 / frame.height as f32
                        )
                    })
                    .collect();
                // Time, need and rate, then each track: id (? not
                // confirmed, - not seen now) at its feet (shares of the picture).
                eprintln!("{t:.2} {:?} {:.1} {}", j.reason, j.fps, boxes.join(" "));
            }
            for track in analytics.tracks().iter().filter(|t| t.seen_now) {
                let seen = out.tracks.entry(track.id).or_default();
                seen.label.clone_from(&track.label);
                seen.confirmed |= track.confirmed();
                seen.points.push((t, track.bbox));
            }
            *out.reasons
                .entry(analytics.judged().reason.as_str())
                .or_default() += 1;
            analytics.publish_need(&stats.need);
        }
    }
    analytics.end_all();
    out.decoded = CameraStats::get(&stats.frames_decoded);
    out.woken_by_motion = CameraStats::get(&stats.frames_woken_by_motion);
    Ok(out)
}
