//! Per-camera appearance matching: one event per object appearance, with a
//! per-label cooldown.

use crate::snapshot::encode_jpeg;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use tracing::warn;
use xueliang_core::{
    BBox, BoxRecord, DecodedFrame, Detection, DetectionSettings, EventKind, EventUpdate, NewEvent,
};

/// Minimum overlap for a detection to continue an appearance from an earlier frame.
const MATCH_IOU: f32 = 0.3;

struct Appearance {
    label: String,
    last_box: BBox,
    last_seen: DateTime<Utc>,
    best: Detection,
    /// The event this appearance opened, if the cooldown allowed one.
    event: Option<u64>,
}

/// Event logic of one camera. Time comes from the frames, so the logic is
/// deterministic for a given sequence of frames.
pub struct CameraAnalytics {
    camera_id: String,
    village: Option<String>,
    grid: Option<String>,
    settings: DetectionSettings,
    appearances: Vec<Appearance>,
    last_event_start: HashMap<String, DateTime<Utc>>,
    next_key: u64,
}

impl CameraAnalytics {
    pub fn new(
        camera_id: String,
        village: Option<String>,
        grid: Option<String>,
        settings: DetectionSettings,
    ) -> Self {
        CameraAnalytics {
            camera_id,
            village,
            grid,
            settings,
            appearances: Vec::new(),
            last_event_start: HashMap::new(),
            next_key: 1,
        }
    }

    /// Feeds one frame's detections; returns the events that start or end.
    pub fn observe(&mut self, frame: &DecodedFrame, detections: &[Detection]) -> Vec<EventUpdate> {
        let now = frame.received_at;
        let mut updates = Vec::new();
        let mut watched: Vec<&Detection> = detections
            .iter()
            .filter(|d| {
                self.settings
                    .threshold(&d.label)
                    .is_some_and(|t| d.score >= t)
            })
            .collect();
        watched.sort_by(|a, b| b.score.total_cmp(&a.score));

        let mut matched = vec![false; self.appearances.len()];
        let mut snapshot: Option<Option<Vec<u8>>> = None;
        for det in watched {
            let best = self
                .appearances
                .iter()
                .enumerate()
                .filter(|(i, a)| !matched[*i] && a.label == det.label)
                .map(|(i, a)| (i, a.last_box.iou(&det.bbox)))
                .filter(|(_, iou)| *iou >= MATCH_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = best {
                matched[i] = true;
                let a = &mut self.appearances[i];
                a.last_box = det.bbox;
                a.last_seen = now;
                if det.score > a.best.score {
                    a.best = det.clone();
                }
                continue;
            }
            let cooldown = Duration::milliseconds((self.settings.cooldown_s * 1000.0) as i64);
            let allowed = self
                .last_event_start
                .get(&det.label)
                .is_none_or(|t| now - *t >= cooldown);
            let event = allowed.then(|| {
                let key = self.next_key;
                self.next_key += 1;
                self.last_event_start.insert(det.label.clone(), now);
                let jpeg = snapshot.get_or_insert_with(|| match encode_jpeg(frame) {
                    Ok(j) => Some(j),
                    Err(e) => {
                        warn!(camera = %self.camera_id, error = %e, "event stored without snapshot");
                        None
                    }
                });
                updates.push(EventUpdate::Started {
                    key,
                    event: NewEvent {
                        camera_id: self.camera_id.clone(),
                        village: self.village.clone(),
                        grid: self.grid.clone(),
                        kind: EventKind::Object,
                        label: det.label.clone(),
                        score: det.score,
                        started_at: now,
                        ended_at: None,
                        detail: None,
                        frame_width: frame.width,
                        frame_height: frame.height,
                        boxes: vec![record(det)],
                        snapshot: jpeg.clone(),
                    },
                });
                key
            });
            self.appearances.push(Appearance {
                label: det.label.clone(),
                last_box: det.bbox,
                last_seen: now,
                best: det.clone(),
                event,
            });
            matched.push(true);
        }

        let lost = Duration::milliseconds((self.settings.lost_after_s * 1000.0) as i64);
        self.expire(|a| now - a.last_seen > lost, &mut updates);
        updates
    }

    /// Ends every open appearance (the camera stopped or the service shuts down).
    pub fn end_all(&mut self) -> Vec<EventUpdate> {
        let mut updates = Vec::new();
        self.expire(|_| true, &mut updates);
        updates
    }

    /// Whether any appearance is open.
    pub fn is_idle(&self) -> bool {
        self.appearances.is_empty()
    }

    fn expire(&mut self, gone: impl Fn(&Appearance) -> bool, updates: &mut Vec<EventUpdate>) {
        self.appearances.retain(|a| {
            if !gone(a) {
                return true;
            }
            if let Some(key) = a.event {
                updates.push(EventUpdate::Ended {
                    key,
                    ended_at: a.last_seen,
                    score: a.best.score,
                    boxes: vec![record(&a.best)],
                });
            }
            false
        });
    }
}

fn record(d: &Detection) -> BoxRecord {
    BoxRecord {
        label: d.label.clone(),
        score: d.score,
        x1: d.bbox.x1,
        y1: d.bbox.y1,
        x2: d.bbox.x2,
        y2: d.bbox.y2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::Arc;
    use xueliang_core::frame::Placement;
    use xueliang_core::{CameraRef, ModelInput};

    fn frame(at_ms: i64) -> DecodedFrame {
        let (w, h) = (64u32, 48u32);
        DecodedFrame {
            camera: CameraRef {
                index: 0,
                id: Arc::from("c"),
            },
            width: w,
            height: h,
            y: vec![128; (w * h) as usize],
            u: vec![128; (w * h / 4) as usize],
            v: vec![128; (w * h / 4) as usize],
            full_range: false,
            stream_time: at_ms as f64 / 1000.0,
            received_at: Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap()
                + Duration::milliseconds(at_ms),
            model_input: ModelInput {
                width: 1,
                height: 1,
                rgb: vec![0; 3],
                placement: Placement {
                    scale_x: 1.0,
                    scale_y: 1.0,
                    pad_x: 0,
                    pad_y: 0,
                    scaled_w: 1,
                    scaled_h: 1,
                },
            },
        }
    }

    fn det(label: &str, score: f32, x: f32) -> Detection {
        Detection {
            label: label.into(),
            class_id: 0,
            score,
            bbox: BBox::new(x, 10.0, x + 10.0, 40.0),
        }
    }

    fn settings(cooldown_s: f64) -> DetectionSettings {
        DetectionSettings {
            cooldown_s,
            lost_after_s: 1.0,
            ..DetectionSettings::default()
        }
    }

    fn started(u: &[EventUpdate]) -> usize {
        u.iter()
            .filter(|u| matches!(u, EventUpdate::Started { .. }))
            .count()
    }

    fn ended(u: &[EventUpdate]) -> usize {
        u.iter()
            .filter(|u| matches!(u, EventUpdate::Ended { .. }))
            .count()
    }

    #[test]
    fn a_walking_person_is_one_event_with_a_snapshot_that_ends_when_lost() {
        let mut a = CameraAnalytics::new("c".into(), Some("v".into()), None, settings(0.0));
        let mut all = Vec::new();
        // 5 fps, moving 2 px per frame for 2 s, then gone.
        for i in 0..10 {
            all.extend(a.observe(
                &frame(i * 200),
                &[det("person", 0.6 + i as f32 * 0.01, 2.0 * i as f32)],
            ));
        }
        assert_eq!((started(&all), ended(&all)), (1, 0));
        let EventUpdate::Started { event, .. } = &all[0] else {
            panic!()
        };
        assert_eq!(event.village.as_deref(), Some("v"));
        let jpeg = event.snapshot.as_ref().expect("snapshot");
        let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
        d.decode().unwrap();
        let info = d.info().unwrap();
        assert_eq!((info.width, info.height), (64, 48));
        // 1.2 s after the last sighting (lost_after 1 s) it ends, with the best score.
        let u = a.observe(&frame(9 * 200 + 1200), &[]);
        let [EventUpdate::Ended {
            ended_at, score, ..
        }] = u.as_slice()
        else {
            panic!("{u:?}")
        };
        assert_eq!(*ended_at, frame(1800).received_at);
        assert!((score - 0.69).abs() < 1e-5);
        assert!(a.is_idle());
    }

    #[test]
    fn two_people_are_two_events_and_low_scores_and_unwatched_labels_are_ignored() {
        let mut a = CameraAnalytics::new("c".into(), None, None, settings(0.0));
        let u = a.observe(
            &frame(0),
            &[
                det("person", 0.9, 0.0),
                det("person", 0.8, 40.0),
                det("person", 0.3, 20.0),
                det("kite", 0.99, 50.0),
            ],
        );
        assert_eq!(started(&u), 2);
        assert_eq!(a.end_all().len(), 2);
    }

    #[test]
    fn cooldown_suppresses_new_events_of_the_same_label_only() {
        let mut a = CameraAnalytics::new("c".into(), None, None, settings(10.0));
        assert_eq!(
            started(&a.observe(&frame(0), &[det("person", 0.9, 0.0)])),
            1
        );
        // A second person 2 s later: within the cooldown, no event; a car is another label.
        let u = a.observe(
            &frame(2000),
            &[
                det("person", 0.9, 0.0),
                det("person", 0.9, 40.0),
                det("car", 0.9, 20.0),
            ],
        );
        assert_eq!(started(&u), 1);
        // 11 s after the first event another new person may open an event.
        let u = a.observe(&frame(11_000), &[det("person", 0.9, 30.0)]);
        assert_eq!(started(&u), 1, "{u:?}");
    }

    #[test]
    fn a_short_miss_does_not_split_an_appearance() {
        let mut a = CameraAnalytics::new("c".into(), None, None, settings(0.0));
        let mut all = a.observe(&frame(0), &[det("person", 0.9, 0.0)]);
        all.extend(a.observe(&frame(200), &[]));
        all.extend(a.observe(&frame(400), &[]));
        all.extend(a.observe(&frame(600), &[det("person", 0.9, 1.0)]));
        assert_eq!((started(&all), ended(&all)), (1, 0));
    }
}
