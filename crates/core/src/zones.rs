//! Per-camera analytics configuration: detection filters, masks, zones with
//! schedules and rules, and counting lines. Coordinates are normalised to the
//! frame (0..1, origin top left), so they survive a change of resolution.

use crate::camera_error::CameraError;
use crate::schedule::{ScheduleWindow, Window};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A point in normalised frame coordinates.
pub type Point = [f64; 2];

/// Per-label shape filters; detections outside them are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LabelFilter {
    /// Smallest box, as a share of the frame's area.
    pub min_area: Option<f64>,
    /// Largest box, as a share of the frame's area.
    pub max_area: Option<f64>,
    /// Narrowest box, width / height (in pixels).
    pub min_aspect: Option<f64>,
    /// Widest box, width / height.
    pub max_aspect: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// An object of the rule's labels is in the zone while the schedule is active.
    Intrusion,
    /// The same object stays in the zone at least `min_duration_s`.
    Loitering,
    /// At least `min_count` objects are in the zone for at least `min_duration_s`.
    Crowd,
    /// A vehicle stands still in the zone at least `min_duration_s`.
    VehicleDwell,
}

#[derive(Clone, Debug, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub kind: RuleKind,
    /// Labels the rule looks at; default the zone's labels.
    pub labels: Option<Vec<String>>,
    /// Seconds the situation must last (loitering, crowd, vehicle_dwell).
    pub min_duration_s: Option<f64>,
    /// Objects needed (crowd).
    pub min_count: Option<u32>,
    /// Seconds after an event of this rule ends before the same object (for a
    /// crowd: the zone) can start another.
    #[serde(default = "default_cooldown")]
    pub cooldown_s: f64,
}

fn default_cooldown() -> f64 {
    60.0
}

#[derive(Clone, Debug, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    /// At least 3 points.
    #[schema(value_type = Vec<[f64]>)]
    pub polygon: Vec<Point>,
    /// Labels the zone cares about; default the camera's detection labels.
    pub labels: Option<Vec<String>>,
    /// When the zone is watched; empty = always.
    #[serde(default)]
    pub schedule: Vec<ScheduleWindow>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// Which crossings of a line make events (all are counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineEvents {
    #[default]
    None,
    Forward,
    Backward,
    Both,
}

/// A tripwire from `from` to `to`. Crossing it from its left side to its
/// right side (looking from `from` towards `to`) is `forward`.
#[derive(Clone, Debug, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    pub name: String,
    #[schema(value_type = [f64])]
    pub from: Point,
    #[schema(value_type = [f64])]
    pub to: Point,
    /// Labels counted; default the camera's detection labels.
    pub labels: Option<Vec<String>>,
    #[serde(default)]
    pub events: LineEvents,
}

/// All analytics settings of one camera besides `[detection]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraRules {
    #[serde(default)]
    pub filters: BTreeMap<String, LabelFilter>,
    /// Polygons whose detections (by bottom centre) are ignored.
    #[serde(default)]
    pub masks: Vec<Vec<Point>>,
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    #[serde(default)]
    pub lines: Vec<LineConfig>,
}

impl CameraRules {
    /// Whether the camera makes rule and line events instead of plain object events.
    pub fn has_rules(&self) -> bool {
        !self.zones.is_empty() || !self.lines.is_empty()
    }

    /// Checks shapes and values; the message names the zone/line/rule and
    /// field, the error's field is the field's path (`zones.polygon`,
    /// `zones.rules.min_count`, `lines.from`, `filters.person.min_area`).
    pub fn validate(&self) -> Result<(), CameraError> {
        for (label, f) in &self.filters {
            let at = format!("filters.{label}");
            for (name, v) in [("min_area", f.min_area), ("max_area", f.max_area)] {
                if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                    let message = format!("{at}: field `{name}` must be in [0, 1]");
                    return Err(CameraError::new(format!("{at}.{name}"), message));
                }
            }
            for (name, v) in [("min_aspect", f.min_aspect), ("max_aspect", f.max_aspect)] {
                if v.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                    let message = format!("{at}: field `{name}` must be > 0");
                    return Err(CameraError::new(format!("{at}.{name}"), message));
                }
            }
        }
        for (i, m) in self.masks.iter().enumerate() {
            polygon(m).map_err(|e| CameraError::new("masks", format!("masks[{i}]: {e}")))?;
        }
        let mut names = std::collections::HashSet::new();
        for z in &self.zones {
            let at = format!("zone \"{}\"", z.name);
            let error = |field: &str, message: String| {
                CameraError::new(format!("zones.{field}"), format!("{at}: {message}"))
            };
            if z.name.trim().is_empty() {
                return Err(CameraError::new(
                    "zones.name",
                    "zones: field `name` must not be empty",
                ));
            }
            if !names.insert(format!("zone:{}", z.name)) {
                return Err(error("name", "field `name`: duplicate zone name".into()));
            }
            polygon(&z.polygon).map_err(|e| error("polygon", format!("field `polygon`: {e}")))?;
            for (i, w) in z.schedule.iter().enumerate() {
                let field = format!("schedule[{i}]");
                Window::parse(w).map_err(|e| error(&field, format!("field `{field}`: {e}")))?;
            }
            for r in &z.rules {
                let at = format!("{at}, rule \"{}\"", r.name);
                let error = |field: &str, message: &str| {
                    CameraError::new(
                        format!("zones.rules.{field}"),
                        format!("{at}: field `{field}` {message}"),
                    )
                };
                if !names.insert(format!("rule:{}", r.name)) {
                    return Err(CameraError::new(
                        "zones.rules.name",
                        format!("{at}: field `name`: duplicate rule name on this camera"),
                    ));
                }
                let need_duration = matches!(r.kind, RuleKind::Loitering | RuleKind::VehicleDwell);
                if need_duration && r.min_duration_s.is_none() {
                    return Err(error("min_duration_s", "is required for this kind"));
                }
                if r.min_duration_s
                    .is_some_and(|d| !(d >= 0.0 && d.is_finite()))
                {
                    return Err(error("min_duration_s", "must be >= 0"));
                }
                match (r.kind, r.min_count) {
                    (RuleKind::Crowd, None) => {
                        return Err(error("min_count", "is required for crowd"))
                    }
                    (RuleKind::Crowd, Some(n)) if n < 2 => {
                        return Err(error("min_count", "must be >= 2"))
                    }
                    (RuleKind::Crowd, _) | (_, None) => {}
                    (_, Some(_)) => return Err(error("min_count", "applies to crowd rules only")),
                }
                if !(r.cooldown_s >= 0.0 && r.cooldown_s.is_finite()) {
                    return Err(error("cooldown_s", "must be >= 0"));
                }
            }
        }
        for l in &self.lines {
            let at = format!("line \"{}\"", l.name);
            let error = |field: &str, message: String| {
                CameraError::new(format!("lines.{field}"), format!("{at}: {message}"))
            };
            if !names.insert(format!("line:{}", l.name)) {
                return Err(error("name", "field `name`: duplicate line name".into()));
            }
            for (field, p) in [("from", l.from), ("to", l.to)] {
                point(p).map_err(|e| error(field, format!("field `{field}`: {e}")))?;
            }
            if (l.from[0] - l.to[0]).abs() + (l.from[1] - l.to[1]).abs() < 1e-6 {
                return Err(error("from", "fields `from` and `to` must differ".into()));
            }
        }
        Ok(())
    }

    /// Every label the rules name, with where it is named.
    pub fn labels(&self) -> Vec<NamedLabel<'_>> {
        let mut out = Vec::new();
        for l in self.filters.keys() {
            out.push(NamedLabel {
                field: format!("filters.{l}"),
                place: format!("filters.{l}"),
                label: l,
            });
        }
        for z in &self.zones {
            for l in z.labels.iter().flatten() {
                out.push(NamedLabel {
                    field: "zones.labels".into(),
                    place: format!("zone \"{}\": field `labels`", z.name),
                    label: l,
                });
            }
            for r in &z.rules {
                for l in r.labels.iter().flatten() {
                    out.push(NamedLabel {
                        field: "zones.rules.labels".into(),
                        place: format!("zone \"{}\", rule \"{}\": field `labels`", z.name, r.name),
                        label: l,
                    });
                }
            }
        }
        for line in &self.lines {
            for l in line.labels.iter().flatten() {
                out.push(NamedLabel {
                    field: "lines.labels".into(),
                    place: format!("line \"{}\": field `labels`", line.name),
                    label: l,
                });
            }
        }
        out
    }
}

/// A label named by a camera's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedLabel<'a> {
    /// The field's path (`zones.labels`, `filters.person`, ...).
    pub field: String,
    /// Where it is named, for a message (``zone "yard": field `labels` ``).
    pub place: String,
    pub label: &'a str,
}

fn point(p: Point) -> Result<(), String> {
    if p.iter().all(|v| (0.0..=1.0).contains(v)) {
        Ok(())
    } else {
        Err(format!(
            "coordinates must be in 0..1 (normalised to the frame), got [{}, {}]",
            p[0], p[1]
        ))
    }
}

fn polygon(points: &[Point]) -> Result<(), String> {
    if points.len() < 3 {
        return Err(format!(
            "a polygon needs at least 3 points, got {}",
            points.len()
        ));
    }
    for p in points {
        point(*p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<CameraRules, String> {
        let r: CameraRules = toml::from_str(text).map_err(|e| e.to_string())?;
        r.validate().map(|_| r).map_err(|e| e.message)
    }

    #[test]
    fn a_full_set_of_rules_parses() {
        let r = rules(
            r#"
masks = [[[0.0, 0.0], [1.0, 0.0], [1.0, 0.1]]]
filters = { person = { min_area = 0.001, max_aspect = 1.5 } }
[[zones]]
name = "yard"
polygon = [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]]
labels = ["person"]
schedule = [{ days = "mon-fri", from = "22:00", to = "06:00" }]
rules = [
  { name = "night", kind = "intrusion" },
  { name = "gather", kind = "crowd", min_count = 5, min_duration_s = 30 },
]
[[lines]]
name = "gate"
from = [0.5, 0.0]
to = [0.5, 1.0]
events = "forward"
"#,
        )
        .unwrap();
        assert!(r.has_rules());
        assert_eq!(r.zones[0].rules[1].kind, RuleKind::Crowd);
        assert_eq!(r.lines[0].events, LineEvents::Forward);
        assert_eq!(r.labels().len(), 2);
    }

    #[test]
    fn bad_shapes_name_the_zone_and_field() {
        let e = rules("[[zones]]\nname = \"z\"\npolygon = [[0.1, 0.1], [0.2, 0.2]]\n").unwrap_err();
        assert!(
            e.contains("zone \"z\"") && e.contains("polygon") && e.contains("3 points"),
            "{e}"
        );
        let e = rules("[[zones]]\nname = \"z\"\npolygon = [[0.1, 0.1], [1.2, 0.2], [0.3, 0.9]]\n")
            .unwrap_err();
        assert!(e.contains("zone \"z\"") && e.contains("0..1"), "{e}");
        let e = rules("[[zones]]\nname = \"z\"\npolygon = [[0,0],[1,0],[1,1]]\nrules = [{ name = \"r\", kind = \"loitering\" }]\n")
            .unwrap_err();
        assert!(
            e.contains("rule \"r\"") && e.contains("min_duration_s"),
            "{e}"
        );
        let e = rules("[[zones]]\nname = \"z\"\npolygon = [[0,0],[1,0],[1,1]]\nschedule = [{ days = \"mon-fry\", from = \"22:00\", to = \"06:00\" }]\n")
            .unwrap_err();
        assert!(e.contains("schedule[0]") && e.contains("fry"), "{e}");
        let e = rules("[[lines]]\nname = \"l\"\nfrom = [0.5, 0.5]\nto = [0.5, 0.5]\n").unwrap_err();
        assert!(e.contains("line \"l\""), "{e}");
        let e = rules("[[zones]]\nname = \"z\"\npolygon = [[0,0],[1,0],[1,1]]\ncolour = 1\n")
            .unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn a_zone_schedule_with_a_list_of_days_says_what_to_write() {
        let e = rules("[[zones]]\nname = \"z\"\npolygon = [[0,0],[1,0],[1,1]]\nschedule = [{ days = [\"mon\", \"tue\", \"wed\"], from = \"22:00\", to = \"06:00\" }]\n")
            .unwrap_err();
        assert!(
            e.contains("`days`") && e.contains("days = \"mon-wed\""),
            "{e}"
        );
    }
}
