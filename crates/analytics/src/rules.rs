//! Zones, their rules and counting lines, applied to tracked objects. Pure
//! logic: it says what happens; the camera turns that into events.

use crate::geometry::{crosses, inside, side};
use crate::schedule::Schedule;
use crate::tracker::Track;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use xueliang_core::config::CameraConfig;
use xueliang_core::zones::{LineConfig, LineEvents, Point, RuleConfig, RuleKind};
use xueliang_core::{BBox, Crossing, Direction, EventKind};

/// An object outside its zone this long has left it (a detection missing at
/// the zone's edge does not split a stay).
const EXIT_GRACE: Duration = Duration::milliseconds(1500);
/// A crowd smaller than the rule's count this long has dispersed.
const CROWD_EXIT: Duration = Duration::seconds(5);
/// Within this distance of a line (share of the frame) an object's side is
/// uncertain: wobbling feet on the line are not crossings.
const LINE_MARGIN: f64 = 0.01;

/// Something the camera must turn into an event update.
#[derive(Debug, PartialEq)]
pub enum Happening {
    Start {
        key: u64,
        kind: EventKind,
        zone: String,
        rule: Option<String>,
        /// The objects involved (one, or a crowd's members).
        objects: Vec<u64>,
        started_at: DateTime<Utc>,
        /// For events that are over at once (line crossings).
        ended: bool,
        detail: Option<String>,
    },
    End {
        key: u64,
        at: DateTime<Utc>,
    },
    Crossed(Crossing),
}

/// The bottom centre of a box, normalised: where the object stands.
pub fn foot(b: &BBox, w: u32, h: u32) -> Point {
    [
        ((b.x1 + b.x2) / 2.0 / w as f32) as f64,
        (b.y2 / h as f32) as f64,
    ]
}

struct Presence {
    entered: DateTime<Utc>,
    last_in: DateTime<Utc>,
}

struct RuleState {
    cfg: RuleConfig,
    labels: Vec<String>,
    /// Object -> open event key (per-object rules).
    open: HashMap<u64, u64>,
    /// Object (or 0 for the crowd) -> no new event before this time.
    cooldown_until: HashMap<u64, DateTime<Utc>>,
    crowd_since: Option<DateTime<Utc>>,
    crowd_absent_since: Option<DateTime<Utc>>,
    crowd_open: Option<u64>,
}

struct ZoneState {
    name: String,
    polygon: Vec<Point>,
    schedule: Schedule,
    presence: HashMap<u64, Presence>,
    rules: Vec<RuleState>,
}

struct LineState {
    cfg: LineConfig,
    labels: Vec<String>,
    /// Object -> the side it was last clearly on (true = left) and where.
    clear_side: HashMap<u64, (bool, Point)>,
}

pub struct RuleEngine {
    camera_id: String,
    zones: Vec<ZoneState>,
    lines: Vec<LineState>,
    next_key: u64,
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0) as i64)
}

impl RuleEngine {
    pub fn new(camera: &CameraConfig, tz: Tz) -> Self {
        let default_labels = &camera.detection.labels;
        let zones = camera
            .rules
            .zones
            .iter()
            .map(|z| {
                let zone_labels = z.labels.clone().unwrap_or_else(|| default_labels.clone());
                ZoneState {
                    name: z.name.clone(),
                    polygon: z.polygon.clone(),
                    schedule: Schedule::new(&z.schedule, tz),
                    presence: HashMap::new(),
                    rules: z
                        .rules
                        .iter()
                        .map(|r| RuleState {
                            labels: r.labels.clone().unwrap_or_else(|| zone_labels.clone()),
                            cfg: r.clone(),
                            open: HashMap::new(),
                            cooldown_until: HashMap::new(),
                            crowd_since: None,
                            crowd_absent_since: None,
                            crowd_open: None,
                        })
                        .collect(),
                }
            })
            .collect();
        let lines = camera
            .rules
            .lines
            .iter()
            .map(|l| LineState {
                labels: l.labels.clone().unwrap_or_else(|| default_labels.clone()),
                cfg: l.clone(),
                clear_side: HashMap::new(),
            })
            .collect();
        RuleEngine {
            camera_id: camera.id.clone(),
            zones,
            lines,
            next_key: 1,
        }
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key - 1
    }

    /// Labels any zone or line looks at.
    pub fn watches(&self, label: &str) -> bool {
        self.zones
            .iter()
            .any(|z| z.rules.iter().any(|r| r.labels.iter().any(|l| l == label)))
            || self
                .lines
                .iter()
                .any(|l| l.labels.iter().any(|x| x == label))
    }

    /// One frame: `tracks` are the live tracks, `ended` those that just ended.
    pub fn update(
        &mut self,
        now: DateTime<Utc>,
        tracks: &[Track],
        ended: &[Track],
        w: u32,
        h: u32,
    ) -> Vec<Happening> {
        let mut out = Vec::new();
        self.update_lines(tracks, w, h, &mut out);
        let mut zones = std::mem::take(&mut self.zones);
        for zone in &mut zones {
            self.update_zone(zone, now, tracks, ended, w, h, &mut out);
        }
        self.zones = zones;
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn update_zone(
        &mut self,
        zone: &mut ZoneState,
        now: DateTime<Utc>,
        tracks: &[Track],
        ended: &[Track],
        w: u32,
        h: u32,
        out: &mut Vec<Happening>,
    ) {
        // Who is in the zone.
        for t in tracks.iter().filter(|t| t.confirmed() && t.seen_now) {
            if inside(foot(&t.bbox, w, h), &zone.polygon) {
                // An object first seen inside entered when it was first seen
                // (before the tracker confirmed it).
                let first_inside = t
                    .history
                    .front()
                    .is_some_and(|(_, b)| inside(foot(b, w, h), &zone.polygon));
                let entered = if first_inside { t.first_seen } else { now };
                zone.presence
                    .entry(t.id)
                    .or_insert(Presence {
                        entered,
                        last_in: now,
                    })
                    .last_in = now;
            }
        }
        let ended_at: HashMap<u64, DateTime<Utc>> =
            ended.iter().map(|t| (t.id, t.last_seen)).collect();
        zone.presence
            .retain(|id, p| !ended_at.contains_key(id) && now - p.last_in <= EXIT_GRACE);
        let active = zone.schedule.active(now);
        let by_id: HashMap<u64, &Track> = tracks.iter().map(|t| (t.id, t)).collect();

        for rule in &mut zone.rules {
            let end_at = |id: &u64| ended_at.get(id).copied().unwrap_or(now);
            if rule.cfg.kind == RuleKind::Crowd {
                let members: Vec<u64> = zone
                    .presence
                    .keys()
                    .filter(|id| {
                        by_id
                            .get(id)
                            .is_some_and(|t| rule.labels.contains(&t.label))
                    })
                    .copied()
                    .collect();
                let min = rule.cfg.min_count.unwrap_or(2) as usize;
                let crowded = active && members.len() >= min;
                if crowded {
                    rule.crowd_absent_since = None;
                    let since = *rule.crowd_since.get_or_insert(now);
                    let lasted = now - since >= secs(rule.cfg.min_duration_s.unwrap_or(0.0));
                    let cooled = rule.cooldown_until.get(&0).is_none_or(|t| now >= *t);
                    if rule.crowd_open.is_none() && lasted && cooled {
                        let key = self.key();
                        rule.crowd_open = Some(key);
                        let detail = Some(format!(
                            "{} in the zone (rule: at least {min})",
                            members.len()
                        ));
                        out.push(Happening::Start {
                            key,
                            kind: EventKind::Crowd,
                            zone: zone.name.clone(),
                            rule: Some(rule.cfg.name.clone()),
                            objects: members,
                            started_at: since,
                            ended: false,
                            detail,
                        });
                    }
                } else {
                    rule.crowd_since = None;
                    if let Some(key) = rule.crowd_open {
                        let absent = *rule.crowd_absent_since.get_or_insert(now);
                        if now - absent >= CROWD_EXIT || !active {
                            rule.crowd_open = None;
                            rule.crowd_absent_since = None;
                            rule.cooldown_until
                                .insert(0, now + secs(rule.cfg.cooldown_s));
                            out.push(Happening::End { key, at: now });
                        }
                    }
                }
                continue;
            }

            // Per-object rules: since when does each object qualify?
            let mut qualifying: HashMap<u64, DateTime<Utc>> = HashMap::new();
            if active {
                for (id, p) in &zone.presence {
                    let Some(t) = by_id.get(id) else { continue };
                    if !rule.labels.contains(&t.label) {
                        continue;
                    }
                    let min = secs(rule.cfg.min_duration_s.unwrap_or(0.0));
                    let since = match rule.cfg.kind {
                        RuleKind::Intrusion => Some(p.entered),
                        RuleKind::Loitering => Some(p.entered),
                        RuleKind::VehicleDwell => t.stationary_since.map(|s| s.max(p.entered)),
                        RuleKind::Crowd => None,
                    };
                    if let Some(since) = since.filter(|s| now - *s >= min) {
                        qualifying.insert(*id, since);
                    }
                }
            }
            // Ends: open events whose object no longer qualifies.
            let gone: Vec<u64> = rule
                .open
                .keys()
                .filter(|id| !qualifying.contains_key(id))
                .copied()
                .collect();
            for id in gone {
                if let Some(key) = rule.open.remove(&id) {
                    let at = end_at(&id);
                    rule.cooldown_until
                        .insert(id, at + secs(rule.cfg.cooldown_s));
                    out.push(Happening::End { key, at });
                }
            }
            rule.cooldown_until.retain(|id, _| by_id.contains_key(id));
            // Starts.
            let mut starts: Vec<(u64, DateTime<Utc>)> = qualifying.into_iter().collect();
            starts.sort();
            for (id, since) in starts {
                let cooled = rule.cooldown_until.get(&id).is_none_or(|t| now >= *t);
                if rule.open.contains_key(&id) || !cooled {
                    continue;
                }
                let key = self.key();
                rule.open.insert(id, key);
                let kind = match rule.cfg.kind {
                    RuleKind::Intrusion => EventKind::Intrusion,
                    RuleKind::Loitering => EventKind::Loitering,
                    RuleKind::VehicleDwell => EventKind::VehicleDwell,
                    RuleKind::Crowd => EventKind::Crowd,
                };
                out.push(Happening::Start {
                    key,
                    kind,
                    zone: zone.name.clone(),
                    rule: Some(rule.cfg.name.clone()),
                    objects: vec![id],
                    started_at: since,
                    ended: false,
                    detail: None,
                });
            }
        }
    }

    fn update_lines(&mut self, tracks: &[Track], w: u32, h: u32, out: &mut Vec<Happening>) {
        let mut starts = Vec::new();
        for line in &mut self.lines {
            let (a, b) = (line.cfg.from, line.cfg.to);
            let length = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            for t in tracks
                .iter()
                .filter(|t| t.confirmed() && t.seen_now && line.labels.contains(&t.label))
            {
                let q = foot(&t.bbox, w, h);
                // Distance from the line (normalised); within the margin the
                // side is uncertain and nothing changes.
                let distance = side(a, b, q) / length;
                if distance.abs() < LINE_MARGIN {
                    continue;
                }
                let left = distance > 0.0;
                let Some((was_left, p)) = line.clear_side.insert(t.id, (left, q)) else {
                    continue;
                };
                if was_left == left || !crosses(a, b, p, q) {
                    continue;
                }
                let direction = if was_left {
                    Direction::Forward
                } else {
                    Direction::Backward
                };
                out.push(Happening::Crossed(Crossing {
                    camera_id: self.camera_id.clone(),
                    line: line.cfg.name.clone(),
                    direction,
                    label: t.label.clone(),
                    at: t.last_seen,
                }));
                let wanted = match line.cfg.events {
                    LineEvents::None => false,
                    LineEvents::Both => true,
                    LineEvents::Forward => direction == Direction::Forward,
                    LineEvents::Backward => direction == Direction::Backward,
                };
                if wanted {
                    starts.push((line.cfg.name.clone(), t.id, t.last_seen, direction));
                }
            }
            let live: Vec<u64> = tracks.iter().map(|t| t.id).collect();
            line.clear_side.retain(|id, _| live.contains(id));
        }
        for (name, id, at, direction) in starts {
            let key = self.key();
            out.push(Happening::Start {
                key,
                kind: EventKind::LineCrossing,
                zone: name,
                rule: None,
                objects: vec![id],
                started_at: at,
                ended: true,
                detail: Some(direction.as_str().to_owned()),
            });
        }
    }

    /// Ends every open event (shutdown).
    pub fn end_all(&mut self, now: DateTime<Utc>) -> Vec<Happening> {
        let mut out = Vec::new();
        for zone in &mut self.zones {
            for rule in &mut zone.rules {
                for (_, key) in rule.open.drain() {
                    out.push(Happening::End { key, at: now });
                }
                if let Some(key) = rule.crowd_open.take() {
                    out.push(Happening::End { key, at: now });
                }
            }
        }
        out
    }
}
