//! `[[alerts.routes]]`: which events (kinds, labels, villages) alert whom
//! (the officer on duty, channels), when to escalate, and the flood window.

use super::channels::{ChannelConfig, ChannelKind};
use super::error::{err, AlertConfigError};
use super::fields::entry;
use super::organisation::Organisation;
use serde::Deserialize;

/// Which events alert whom.
#[derive(Clone, Debug)]
pub struct Route {
    /// Event kind names; `*` matches every kind.
    pub kinds: Vec<String>,
    /// For `object` events: labels; empty = any.
    pub labels: Vec<String>,
    /// Only cameras of these villages; empty = all.
    pub villages: Vec<String>,
    /// Tell the on-duty officer of the camera's grid or village (else the duty leader).
    pub notify_on_duty: bool,
    /// Channels told about every matching alert (e.g. the centre's MQTT broker).
    pub channels: Vec<String>,
    /// Escalate to the duty leader when nobody acknowledges within this long.
    pub escalate_after: Option<chrono::Duration>,
    /// The same camera and rule within this long is merged into one alert.
    pub flood_window: chrono::Duration,
    /// `AlarmPriority` (1 most urgent .. 4) of the GB/T 28181 alarms this
    /// route sends to `gb28181` channels.
    pub alarm_priority: u8,
}

/// `alarm_priority` when a route does not set it: 四级警情, the least urgent.
pub const DEFAULT_ALARM_PRIORITY: u8 = 4;

impl Route {
    pub fn matches(&self, kind: &str, label: &str, village: Option<&str>) -> bool {
        (self.kinds.iter().any(|k| k == "*" || k == kind))
            && (kind != "object"
                || self.labels.is_empty()
                || self.labels.iter().any(|l| l == label))
            && (self.villages.is_empty()
                || village.is_some_and(|v| self.villages.iter().any(|x| x == v)))
    }

    /// Reads `[[alerts.routes]]` entry `i` (counted from 0) against the
    /// organisation and the channels.
    pub(super) fn parse(
        i: usize,
        v: toml::Value,
        org: &Organisation,
        channels: &[ChannelConfig],
    ) -> Result<Route, AlertConfigError> {
        let find = |n: &str| channels.iter().find(|c| c.name == n);
        let r: RawRoute = entry("[[alerts.routes]]", i, v)?;
        let at = format!("[[alerts.routes]] #{}", i + 1);
        if r.kinds.is_empty() {
            return err(format!(
                "{at} field `kinds`: list at least one event kind (or \"*\")"
            ));
        }
        if let Some(k) = r.kinds.iter().find(|k| *k != "*" && !valid_kind(k)) {
            return err(format!(
                "{at} field `kinds`: \"{k}\" is not an event kind name (snake_case)"
            ));
        }
        if let Some(v) = r
            .villages
            .iter()
            .find(|v| !org.villages.iter().any(|x| &x.name == *v))
        {
            return err(format!(
                "{at} field `villages`: `{v}` is not in [[organisation.villages]]"
            ));
        }
        for c in &r.channels {
            match find(c) {
                None => return err(format!("{at} field `channels`: no channel named `{c}` in [[alerts.channels]]")),
                Some(ch) if matches!(ch.kind, ChannelKind::Sms { .. }) => {
                    return err(format!(
                        "{at} field `channels`: `{c}` is SMS, which needs an officer's phone; list it in an officer's `channels`"
                    ))
                }
                Some(ch) if matches!(ch.kind, ChannelKind::Gb28181 { .. }) => {
                    check_gb_kinds(&at, c, &r.kinds)?;
                }
                _ => {}
            }
        }
        if !xueliang_core::gb_alarm::PRIORITIES.contains(&r.alarm_priority) {
            return err(format!(
                "{at} field `alarm_priority`: must be 1 (一级, most urgent) to 4 (四级)"
            ));
        }
        if !r.notify_on_duty && r.channels.is_empty() {
            return err(format!(
                "{at}: tells nobody (notify_on_duty = false and no `channels`)"
            ));
        }
        if !(r.escalate_after_min >= 0.0 && r.escalate_after_min.is_finite()) {
            return err(format!("{at} field `escalate_after_min`: must be >= 0"));
        }
        if r.escalate_after_min > 0.0 && org.duty_leaders.is_empty() {
            return err(format!(
                "{at} field `escalate_after_min`: escalation needs [[organisation.duty_leaders]]"
            ));
        }
        if !(r.flood_window_min >= 0.0 && r.flood_window_min.is_finite()) {
            return err(format!("{at} field `flood_window_min`: must be >= 0"));
        }
        let minutes = |m: f64| chrono::Duration::milliseconds((m * 60_000.0).round() as i64);
        Ok(Route {
            kinds: r.kinds,
            labels: r.labels,
            villages: r.villages,
            notify_on_duty: r.notify_on_duty,
            channels: r.channels,
            escalate_after: (r.escalate_after_min > 0.0).then(|| minutes(r.escalate_after_min)),
            flood_window: minutes(r.flood_window_min),
            alarm_priority: r.alarm_priority,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    kinds: Vec<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    villages: Vec<String>,
    #[serde(default = "yes")]
    notify_on_duty: bool,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    escalate_after_min: f64,
    #[serde(default = "five")]
    flood_window_min: f64,
    #[serde(default = "least_urgent")]
    alarm_priority: u8,
}

fn least_urgent() -> u8 {
    DEFAULT_ALARM_PRIORITY
}

/// A `gb28181` channel takes only kinds that are GB alarms, listed by name.
fn check_gb_kinds(at: &str, channel: &str, kinds: &[String]) -> Result<(), AlertConfigError> {
    let bad = kinds
        .iter()
        .find(|k| xueliang_core::gb_alarm::alarm_code(k).is_none());
    match bad {
        None => Ok(()),
        Some(k) if k == "*" => err(format!(
            "{at} field `kinds`: \"*\" with channel `{channel}` (gb28181): list the kinds, each must be a GB alarm"
        )),
        Some(k) => err(format!(
            "{at} field `kinds`: `{k}` has no GB/T 28181 alarm, so it cannot go to channel `{channel}` (gb28181); route it without that channel"
        )),
    }
}

fn yes() -> bool {
    true
}
fn five() -> f64 {
    5.0
}

fn valid_kind(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
