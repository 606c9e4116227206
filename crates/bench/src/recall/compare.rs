//! Adaptive against full rate, side by side: line crossings per line and
//! direction, rule events with their start times, distinct tracks, objects
//! missed, and the delay from an object's first full-rate detection to its
//! first adaptive one. Pure: two outcomes in, figures out.

use super::pass::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;

/// A full-rate object tracked longer than this must be found by the adaptive
/// pass too (the target).
pub const MUST_FIND_S: f64 = 2.0;
/// Counts of crossings and rule events may differ by this share...
pub const COUNT_TOLERANCE: f64 = 0.05;
/// ...and rule events may start this much later or earlier.
pub const START_TOLERANCE_S: f64 = 0.4;
/// The adaptive pass saw a full-rate object when one of its boxes within
/// this time of one of the object's overlaps it this much.
const SAME_TIME_S: f64 = 0.15;
const SAME_IOU: f32 = 0.3;
/// Events of a kind further apart than this are different events.
const SAME_EVENT_S: f64 = 5.0;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CountRow {
    pub key: String,
    pub full: usize,
    pub adaptive: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EventRow {
    pub key: String,
    pub full: usize,
    pub adaptive: usize,
    /// Events of both passes paired by start time.
    pub paired: usize,
    /// Largest |adaptive start - full start| over the pairs, seconds.
    pub max_start_diff_s: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Missed {
    pub label: String,
    pub from_s: f64,
    pub to_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub inferences_full: u64,
    pub inferences_adaptive: u64,
    pub woken_by_motion: u64,
    /// After how many adaptive detections the need was what, and why.
    pub reasons: BTreeMap<&'static str, u64>,
    pub crossings: Vec<CountRow>,
    pub events: Vec<EventRow>,
    /// Confirmed tracks of each pass.
    pub tracks_full: usize,
    pub tracks_adaptive: usize,
    /// Full-rate objects tracked longer than [`MUST_FIND_S`]...
    pub long_tracks: usize,
    /// ...that the adaptive pass never saw.
    pub missed: Vec<Missed>,
    /// Per full-rate confirmed object the adaptive pass saw: seconds from
    /// its first full-rate detection to its first adaptive one, sorted.
    pub first_seen_delays_s: Vec<f64>,
}

impl Comparison {
    pub fn of(full: &Outcome, adaptive: &Outcome) -> Comparison {
        let (delays, missed, long_tracks) = objects(full, adaptive);
        Comparison {
            inferences_full: full.inferences,
            inferences_adaptive: adaptive.inferences,
            woken_by_motion: adaptive.woken_by_motion,
            reasons: adaptive.reasons.clone(),
            crossings: crossings(full, adaptive),
            events: events(full, adaptive),
            tracks_full: full.tracks.values().filter(|t| t.confirmed).count(),
            tracks_adaptive: adaptive.tracks.values().filter(|t| t.confirmed).count(),
            long_tracks,
            missed,
            first_seen_delays_s: delays,
        }
    }

    /// Adaptive inferences as a share of full-rate ones, minus one.
    pub fn inference_change(&self) -> f64 {
        self.inferences_adaptive as f64 / self.inferences_full.max(1) as f64 - 1.0
    }

    /// What misses the targets, one line each (empty: all met).
    /// Plain object events (cameras without rules) are compared but are no
    /// target: each is the first object confirmed after its label's
    /// cooldown, so a walker confirmed a frame later can hand the event to
    /// another walker seconds later without anything being missed.
    pub fn shortfalls(&self) -> Vec<String> {
        self.shortfalls_beyond(None)
    }

    /// The shortfalls larger than the full rate's own differences from
    /// itself at another phase (`noise`: full rate against full rate half a
    /// detection interval later): a count off by no more than the noise's,
    /// a start no further off, or no more objects missed, is the tracker's
    /// chance, not the reduced rate's doing.
    pub fn shortfalls_beyond(&self, noise: Option<&Comparison>) -> Vec<String> {
        let gap = |full: usize, adaptive: usize| (adaptive as f64 - full as f64).abs();
        let off =
            |full: usize, adaptive: usize| gap(full, adaptive) > COUNT_TOLERANCE * full as f64;
        let noise_crossings = |key: &str| {
            noise
                .and_then(|n| n.crossings.iter().find(|r| r.key == key))
                .map_or(0.0, |r| gap(r.full, r.adaptive))
        };
        let noise_events = |key: &str| noise.and_then(|n| n.events.iter().find(|r| r.key == key));
        let mut out = Vec::new();
        for c in &self.crossings {
            if off(c.full, c.adaptive) && gap(c.full, c.adaptive) > noise_crossings(&c.key) {
                out.push(format!("crossings {}: {} vs {}", c.key, c.adaptive, c.full));
            }
        }
        for e in self.events.iter().filter(|e| !e.key.starts_with("object/")) {
            let n = noise_events(&e.key);
            if off(e.full, e.adaptive)
                && gap(e.full, e.adaptive) > n.map_or(0.0, |n| gap(n.full, n.adaptive))
            {
                out.push(format!("events {}: {} vs {}", e.key, e.adaptive, e.full));
            }
            if e.max_start_diff_s > START_TOLERANCE_S
                && e.max_start_diff_s > n.map_or(0.0, |n| n.max_start_diff_s)
            {
                out.push(format!(
                    "events {}: a start {:.0} ms off",
                    e.key,
                    e.max_start_diff_s * 1e3
                ));
            }
        }
        if self.missed.len() > noise.map_or(0, |n| n.missed.len()) {
            for m in &self.missed {
                out.push(format!(
                    "missed a {} tracked {:.1}-{:.1} s",
                    m.label, m.from_s, m.to_s
                ));
            }
        }
        out
    }
}

fn crossings(full: &Outcome, adaptive: &Outcome) -> Vec<CountRow> {
    let mut keys: Vec<&(String, String)> = full
        .crossings
        .keys()
        .chain(adaptive.crossings.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let count = |o: &Outcome, k: &(String, String)| o.crossings.get(k).map_or(0, Vec::len);
    keys.into_iter()
        .map(|k| CountRow {
            key: format!("{} {}", k.0, k.1),
            full: count(full, k),
            adaptive: count(adaptive, k),
        })
        .collect()
}

fn events(full: &Outcome, adaptive: &Outcome) -> Vec<EventRow> {
    let group = |o: &Outcome| {
        let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for e in &o.events {
            by.entry(e.key.clone()).or_default().push(e.start);
        }
        by
    };
    let (f, a) = (group(full), group(adaptive));
    let mut keys: Vec<&String> = f.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = Vec::new();
    keys.into_iter()
        .map(|k| {
            let (fs, adaptive_starts) = (f.get(k).unwrap_or(&none), a.get(k).unwrap_or(&none));
            let pairs = pair(fs, adaptive_starts);
            EventRow {
                key: k.clone(),
                full: fs.len(),
                adaptive: adaptive_starts.len(),
                paired: pairs.len(),
                max_start_diff_s: pairs.iter().fold(0.0, |m, d| m.max(d.abs())),
            }
        })
        .collect()
}

/// Pairs start times, nearest first, within [`SAME_EVENT_S`]; returns the
/// differences (b - a) of the pairs.
fn pair(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            if (y - x).abs() <= SAME_EVENT_S {
                candidates.push(((y - x).abs(), i, j));
            }
        }
    }
    candidates.sort_by(|p, q| p.0.total_cmp(&q.0));
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut out = Vec::new();
    for (_, i, j) in candidates {
        if used_a[i] || used_b[j] {
            continue;
        }
        used_a[i] = true;
        used_b[j] = true;
        out.push(b[j] - a[i]);
    }
    out
}

/// First-seen delays of the full-rate objects the adaptive pass saw, the
/// long ones it missed, and how many long ones there were.
fn objects(full: &Outcome, adaptive: &Outcome) -> (Vec<f64>, Vec<Missed>, usize) {
    let points: Vec<(f64, xueliang_core::BBox, &str)> = adaptive
        .tracks
        .values()
        .flat_map(|t| {
            t.points
                .iter()
                .map(move |(at, b)| (*at, *b, t.label.as_str()))
        })
        .collect();
    let (mut delays, mut missed, mut long) = (Vec::new(), Vec::new(), 0);
    for t in full.tracks.values().filter(|t| t.confirmed) {
        let is_long = t.last() - t.first() > MUST_FIND_S;
        long += is_long as usize;
        let first = t.points.iter().find(|(at, b)| {
            points.iter().any(|(when, other, label)| {
                *label == t.label && (when - at).abs() <= SAME_TIME_S && b.iou(other) >= SAME_IOU
            })
        });
        match first {
            Some((at, _)) => delays.push(at - t.first()),
            None if is_long => missed.push(Missed {
                label: t.label.clone(),
                from_s: t.first(),
                to_s: t.last(),
            }),
            None => {}
        }
    }
    delays.sort_by(f64::total_cmp);
    (delays, missed, long)
}

#[cfg(test)]
mod tests {
    use super::super::pass::{RuleEvent, SeenTrack};
    use super::*;
    use xueliang_core::BBox;

    fn track(label: &str, points: &[(f64, f32)]) -> SeenTrack {
        SeenTrack {
            label: label.into(),
            confirmed: true,
            points: points
                .iter()
                .map(|(t, x)| (*t, BBox::new(*x, 100.0, x + 20.0, 160.0)))
                .collect(),
        }
    }

    fn outcome(tracks: Vec<SeenTrack>, events: &[(&str, f64)], crossings: usize) -> Outcome {
        let mut o = Outcome {
            tracks: tracks
                .into_iter()
                .enumerate()
                .map(|(i, t)| (i as u64, t))
                .collect(),
            events: events
                .iter()
                .map(|(k, s)| RuleEvent {
                    key: k.to_string(),
                    start: *s,
                })
                .collect(),
            ..Outcome::default()
        };
        if crossings > 0 {
            o.crossings
                .insert(("path".into(), "forward".into()), vec![1.0; crossings]);
        }
        o
    }

    #[test]
    fn the_same_outcome_meets_every_target() {
        let walker = track("person", &[(0.0, 10.0), (1.0, 20.0), (3.0, 40.0)]);
        let o = outcome(vec![walker], &[("intrusion/yard/-", 2.0)], 20);
        let c = Comparison::of(&o, &o);
        assert!(c.shortfalls().is_empty(), "{:?}", c.shortfalls());
        assert_eq!(c.first_seen_delays_s, vec![0.0]);
        assert_eq!(c.long_tracks, 1);
    }

    #[test]
    fn each_shortfall_is_named() {
        let walker = track("person", &[(0.0, 10.0), (1.0, 20.0), (3.0, 40.0)]);
        let full = outcome(
            vec![walker.clone(), track("car", &[(0.0, 300.0), (5.0, 300.0)])],
            &[("intrusion/yard/-", 2.0), ("loitering/yard/-", 10.0)],
            20,
        );
        // The walker found 1 s late; the car never; the intrusion 0.6 s late;
        // the loitering lost; two crossings of 20 missed (one would be within 5 %).
        let late = track("person", &[(1.0, 20.0), (3.0, 40.0)]);
        let adaptive = outcome(vec![late], &[("intrusion/yard/-", 2.6)], 18);
        let c = Comparison::of(&full, &adaptive);
        assert_eq!(c.first_seen_delays_s, vec![1.0]);
        assert_eq!(c.missed.len(), 1);
        assert_eq!(c.missed[0].label, "car");
        let s = c.shortfalls();
        assert_eq!(s.len(), 4, "{s:?}");
        assert!(
            s[0].starts_with("crossings path forward: 18 vs 20"),
            "{s:?}"
        );
        assert!(s.iter().any(|l| l.contains("600 ms off")), "{s:?}");
        assert!(s
            .iter()
            .any(|l| l.starts_with("events loitering/yard/-: 0 vs 1")));
        assert!(s.iter().any(|l| l.starts_with("missed a car")));
    }

    #[test]
    fn events_pair_nearest_first() {
        assert_eq!(pair(&[1.0, 10.0], &[10.2, 1.1]).len(), 2);
        let d = pair(&[1.0, 10.0], &[10.2, 1.1]);
        assert!(d.iter().all(|x| x.abs() <= 0.2 + 1e-9), "{d:?}");
        assert!(pair(&[1.0], &[9.0]).is_empty(), "too far apart");
    }

    #[test]
    fn a_shortfall_the_full_rate_shows_against_itself_is_noise() {
        let walker = track("person", &[(0.0, 10.0), (1.0, 20.0), (3.0, 40.0)]);
        let full = outcome(vec![walker.clone()], &[("intrusion/yard/-", 2.0)], 20);
        // Adaptive: 17 crossings, the intrusion 0.5 s late.
        let adaptive = outcome(vec![walker.clone()], &[("intrusion/yard/-", 2.5)], 17);
        let c = Comparison::of(&full, &adaptive);
        assert_eq!(c.shortfalls().len(), 2, "{:?}", c.shortfalls());
        // The full rate half an interval later: 18 crossings, the intrusion
        // 0.6 s late. The start is within that noise; 3 crossings off are not.
        let shifted = outcome(vec![walker], &[("intrusion/yard/-", 2.6)], 18);
        let noise = Comparison::of(&full, &shifted);
        let beyond = c.shortfalls_beyond(Some(&noise));
        assert_eq!(beyond, vec!["crossings path forward: 17 vs 20".to_owned()]);
        // As noisy in crossings as adaptive: nothing beyond the noise.
        let noisier = outcome(vec![], &[("intrusion/yard/-", 2.6)], 17);
        let noise = Comparison::of(&full, &noisier);
        assert!(c.shortfalls_beyond(Some(&noise)).is_empty());
    }
}
