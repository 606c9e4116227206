//! Multi-object tracking by motion-predicted box overlap, ByteTrack-style:
//! confident detections are matched first and may start tracks; weak ones
//! only keep existing tracks alive (an occluded or blurred person keeps the
//! same id). Tracks survive missed frames for `lost_after`.

use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use xueliang_core::{BBox, Detection};

/// Confident detections continue a track at this overlap (with the track's
/// predicted box).
const IOU_HIGH: f32 = 0.2;
/// Weak detections must overlap more to continue a track.
const IOU_LOW: f32 = 0.4;
/// Matches before a track counts (one-frame false detections never do).
const CONFIRM_HITS: u32 = 2;
/// Unconfirmed tracks are dropped after this long without a match.
const TENTATIVE_LOST: Duration = Duration::milliseconds(1000);
/// Points kept in a track's history.
const HISTORY: usize = 256;
/// A track is stationary when its box centre stayed within this share of the
/// frame diagonal over `STATIONARY_WINDOW`.
const STATIONARY_MOVE: f32 = 0.02;
const STATIONARY_WINDOW: Duration = Duration::seconds(5);

#[derive(Clone, Debug)]
pub struct Track {
    pub id: u64,
    pub label: String,
    pub bbox: BBox,
    pub score: f32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub hits: u32,
    /// Box-coordinate velocity in pixels per second.
    velocity: [f32; 4],
    /// (time, box) of each match, oldest first.
    pub history: VecDeque<(DateTime<Utc>, BBox)>,
    /// Since when the object has not moved (None while it moves).
    pub stationary_since: Option<DateTime<Utc>>,
    /// Matched in the latest frame.
    pub seen_now: bool,
}

impl Track {
    pub fn confirmed(&self) -> bool {
        self.hits >= CONFIRM_HITS
    }

    /// The box where the object should be at `t` (moving on at its speed
    /// for at most 2 s after it was last seen).
    pub fn predicted(&self, t: DateTime<Utc>) -> BBox {
        let dt = ((t - self.last_seen).num_milliseconds() as f32 / 1000.0).min(2.0);
        let v = self.velocity;
        BBox::new(
            self.bbox.x1 + v[0] * dt,
            self.bbox.y1 + v[1] * dt,
            self.bbox.x2 + v[2] * dt,
            self.bbox.y2 + v[3] * dt,
        )
    }

    /// The previous matched box (before the latest), if any.
    pub fn previous_box(&self) -> Option<BBox> {
        let n = self.history.len();
        (n >= 2).then(|| self.history[n - 2].1)
    }

    fn apply(&mut self, det: &Detection, now: DateTime<Utc>, diagonal: f32) {
        let dt = (now - self.last_seen).num_milliseconds() as f32 / 1000.0;
        if dt > 0.0 {
            let (o, n) = (self.bbox, det.bbox);
            let step = [
                (n.x1 - o.x1) / dt,
                (n.y1 - o.y1) / dt,
                (n.x2 - o.x2) / dt,
                (n.y2 - o.y2) / dt,
            ];
            for (v, s) in self.velocity.iter_mut().zip(step) {
                *v = 0.6 * *v + 0.4 * s;
            }
        }
        self.bbox = det.bbox;
        self.score = det.score;
        self.last_seen = now;
        self.hits += 1;
        self.seen_now = true;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, det.bbox));
        self.update_stationary(now, diagonal);
    }

    fn update_stationary(&mut self, now: DateTime<Utc>, diagonal: f32) {
        let centre = |b: &BBox| ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
        let (cx, cy) = centre(&self.bbox);
        let window: Vec<&(DateTime<Utc>, BBox)> = self
            .history
            .iter()
            .filter(|(t, _)| now - *t <= STATIONARY_WINDOW)
            .collect();
        let spans_window = self
            .history
            .front()
            .is_some_and(|(t, _)| now - *t >= STATIONARY_WINDOW);
        let still = spans_window
            && window.iter().all(|(_, b)| {
                let (x, y) = centre(b);
                ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() <= STATIONARY_MOVE * diagonal
            });
        match (still, self.stationary_since) {
            (true, None) => self.stationary_since = window.first().map(|(t, _)| *t),
            (false, Some(_)) => self.stationary_since = None,
            _ => {}
        }
    }
}

pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    lost_after: Duration,
}

impl Tracker {
    pub fn new(lost_after: Duration) -> Self {
        Tracker {
            tracks: Vec::new(),
            next_id: 1,
            lost_after,
        }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Feeds one frame's detections (already filtered); `confident[i]` says
    /// whether detection `i` may start a track. Returns the tracks that ended.
    pub fn update(
        &mut self,
        now: DateTime<Utc>,
        detections: &[Detection],
        confident: &[bool],
        frame_w: u32,
        frame_h: u32,
    ) -> Vec<Track> {
        let diagonal = ((frame_w * frame_w + frame_h * frame_h) as f32).sqrt();
        for t in &mut self.tracks {
            t.seen_now = false;
        }
        let mut high: Vec<&Detection> = Vec::new();
        let mut low: Vec<&Detection> = Vec::new();
        for (d, c) in detections.iter().zip(confident) {
            if *c {
                high.push(d)
            } else {
                low.push(d)
            }
        }
        let mut free: Vec<bool> = vec![true; self.tracks.len()];
        let unmatched_high = self.associate(&high, &mut free, IOU_HIGH, false, now, diagonal);
        self.associate(&low, &mut free, IOU_LOW, true, now, diagonal);
        for det in unmatched_high {
            let id = self.next_id;
            self.next_id += 1;
            let mut history = VecDeque::new();
            history.push_back((now, det.bbox));
            self.tracks.push(Track {
                id,
                label: det.label.clone(),
                bbox: det.bbox,
                score: det.score,
                first_seen: now,
                last_seen: now,
                hits: 1,
                velocity: [0.0; 4],
                history,
                stationary_since: None,
                seen_now: true,
            });
        }
        let lost_after = self.lost_after;
        let (ended, kept): (Vec<Track>, Vec<Track>) = self.tracks.drain(..).partition(|t| {
            let gone = now - t.last_seen;
            gone > lost_after || (!t.confirmed() && gone > TENTATIVE_LOST)
        });
        self.tracks = kept;
        ended
    }

    /// No motion in the stream up to `now` (an idle camera): confirmed
    /// tracks count as seen where they were, so they are not lost while the
    /// model does not run. Tentative tracks are left to expire.
    pub fn hold(&mut self, now: DateTime<Utc>) {
        for t in self.tracks.iter_mut().filter(|t| t.confirmed()) {
            if now > t.last_seen {
                t.last_seen = now;
            }
            t.seen_now = false;
        }
    }

    /// Greedy matching by overlap with predicted boxes, best pairs first.
    /// Returns the detections left over.
    fn associate<'d>(
        &mut self,
        dets: &[&'d Detection],
        free: &mut [bool],
        min_iou: f32,
        confirmed_only: bool,
        now: DateTime<Utc>,
        diagonal: f32,
    ) -> Vec<&'d Detection> {
        let mut pairs = Vec::new();
        for (di, d) in dets.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                if !free[ti] || t.label != d.label || (confirmed_only && !t.confirmed()) {
                    continue;
                }
                // The predicted box follows a walker; the last box catches one
                // that stopped while unseen.
                let iou = t.predicted(now).iou(&d.bbox).max(t.bbox.iou(&d.bbox));
                if iou >= min_iou {
                    pairs.push((iou, di, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut used = vec![false; dets.len()];
        for (_, di, ti) in pairs {
            if used[di] || !free[ti] {
                continue;
            }
            used[di] = true;
            free[ti] = false;
            self.tracks[ti].apply(dets[di], now, diagonal);
        }
        dets.iter()
            .zip(used)
            .filter(|(_, u)| !u)
            .map(|(d, _)| *d)
            .collect()
    }

    /// Ends every track (shutdown).
    pub fn clear(&mut self) -> Vec<Track> {
        std::mem::take(&mut self.tracks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap() + Duration::milliseconds(ms)
    }

    fn person(x: f32, y: f32, score: f32) -> Detection {
        Detection {
            label: "person".into(),
            class_id: 0,
            score,
            bbox: BBox::new(x, y, x + 20.0, y + 60.0),
        }
    }

    fn update(tr: &mut Tracker, at: DateTime<Utc>, dets: &[Detection]) -> Vec<Track> {
        let confident: Vec<bool> = dets.iter().map(|d| d.score >= 0.5).collect();
        tr.update(at, dets, &confident, 640, 480)
    }

    fn ids(tr: &Tracker) -> Vec<u64> {
        tr.tracks()
            .iter()
            .filter(|t| t.confirmed())
            .map(|t| t.id)
            .collect()
    }

    #[test]
    fn a_walker_keeps_one_id_through_weak_detections_and_a_gap() {
        let mut tr = Tracker::new(Duration::seconds(2));
        for i in 0..10 {
            update(
                &mut tr,
                t(i * 200),
                &[person(10.0 + 6.0 * i as f32, 100.0, 0.8)],
            );
        }
        let id = ids(&tr);
        assert_eq!(id.len(), 1);
        // Half hidden: weak detections continue the track, never start one.
        for i in 10..14 {
            update(
                &mut tr,
                t(i * 200),
                &[person(10.0 + 6.0 * i as f32, 100.0, 0.3)],
            );
        }
        // Missed for 1.2 s, then seen again further along its path.
        let ended = update(&mut tr, t(14 * 200 + 1200), &[]);
        assert!(ended.is_empty());
        update(
            &mut tr,
            t(14 * 200 + 1400),
            &[person(10.0 + 6.0 * 21.0, 100.0, 0.8)],
        );
        assert_eq!(ids(&tr), id, "prediction carried the track over the gap");
        // Gone for longer than lost_after: ended.
        let ended = update(&mut tr, t(10_000), &[]);
        assert_eq!(ended.iter().map(|t| t.id).collect::<Vec<_>>(), id);
    }

    #[test]
    fn two_people_crossing_paths_keep_their_ids() {
        let mut tr = Tracker::new(Duration::seconds(2));
        // A walks right, B walks left, same row; they meet at x = 200.
        let mut first = Vec::new();
        for i in 0..20 {
            let a = person(100.0 + 10.0 * i as f32, 100.0, 0.9);
            let b = person(300.0 - 10.0 * i as f32, 104.0, 0.85);
            update(&mut tr, t(i * 200), &[a, b]);
            if i == 3 {
                first = tr.tracks().iter().map(|t| (t.id, t.bbox.x1)).collect();
            }
        }
        let now: Vec<(u64, f32)> = tr.tracks().iter().map(|t| (t.id, t.bbox.x1)).collect();
        assert_eq!(now.len(), 2);
        // The track that started on the left is now on the right.
        let left_id = first.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
        let right_now = now.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
        assert_eq!(left_id, right_now, "{first:?} -> {now:?}");
    }

    #[test]
    fn a_single_false_detection_never_confirms_and_a_parked_car_is_stationary() {
        let mut tr = Tracker::new(Duration::seconds(2));
        update(&mut tr, t(0), &[person(300.0, 300.0, 0.9)]);
        update(&mut tr, t(200), &[]);
        let ended = update(&mut tr, t(1400), &[]);
        assert_eq!(ended.len(), 1);
        assert!(!ended[0].confirmed());

        let car = |jitter: f32| Detection {
            label: "car".into(),
            class_id: 2,
            score: 0.8,
            bbox: BBox::new(100.0 + jitter, 200.0, 220.0 + jitter, 260.0),
        };
        for i in 0..40 {
            update(&mut tr, t(2000 + i * 200), &[car((i % 3) as f32)]);
        }
        let parked = &tr.tracks()[0];
        let since = parked.stationary_since.expect("stationary");
        assert!(since <= t(2000 + 3000), "{since}");
    }

    #[test]
    fn held_tracks_outlast_an_idle_time_and_tentative_ones_do_not() {
        let mut tr = Tracker::new(Duration::seconds(2));
        let car = Detection {
            label: "car".into(),
            class_id: 2,
            score: 0.8,
            bbox: BBox::new(100.0, 200.0, 220.0, 260.0),
        };
        for i in 0..5 {
            update(&mut tr, t(i * 200), std::slice::from_ref(&car));
        }
        // A person seen once just before the camera went idle.
        update(&mut tr, t(1000), &[car.clone(), person(400.0, 100.0, 0.9)]);
        let parked = ids(&tr);
        assert_eq!(parked.len(), 1);
        // Idle for ten minutes: key frames every 2 s hold the tracks.
        for s in 1..=300 {
            tr.hold(t(1000 + s * 2000));
        }
        // The camera wakes; the detector misses the car in the first frame.
        let wake = 1000 + 300 * 2000 + 40;
        let ended = update(&mut tr, t(wake), &[]);
        assert_eq!(ended.len(), 1, "only the tentative person expired");
        assert!(!ended[0].confirmed());
        update(&mut tr, t(wake + 200), std::slice::from_ref(&car));
        assert_eq!(ids(&tr), parked, "the parked car is the same object");
        // Without holding, the same miss after the gap loses the car.
        let mut plain = Tracker::new(Duration::seconds(2));
        for i in 0..5 {
            update(&mut plain, t(i * 200), std::slice::from_ref(&car));
        }
        let before = ids(&plain);
        let ended = update(&mut plain, t(wake), &[]);
        assert_eq!(ended.iter().map(|t| t.id).collect::<Vec<_>>(), before);
    }
}
