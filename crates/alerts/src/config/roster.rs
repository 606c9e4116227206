//! `[[organisation.roster]]` and `[[organisation.duty_leaders]]`: who is on
//! duty when (a schedule window in the configured time zone), for which
//! villages or grids; duty leaders cover the whole township and are who an
//! unacknowledged alert escalates to.

use super::directory::{Officer, VillageView};
use super::error::{err, AlertConfigError};
use super::fields::entry;
use serde::Deserialize;
use utoipa::ToSchema;
use xueliang_core::schedule::{self, ScheduleWindow, Window};

#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct RosterEntry {
    pub officer: String,
    /// Villages this entry covers (every grid in them).
    pub villages: Vec<String>,
    /// Grids this entry covers.
    pub grids: Vec<String>,
    /// When, in the configured time zone.
    #[serde(flatten)]
    pub shift: Window,
}

#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct LeaderEntry {
    pub officer: String,
    #[serde(flatten)]
    pub shift: Window,
}

/// A `[[organisation.roster]]` or `[[organisation.duty_leaders]]` entry as
/// written: who, what they cover (roster only), and when (the fields of a
/// [`ScheduleWindow`], which cannot be flattened into a table that refuses
/// unknown fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuty {
    officer: String,
    #[serde(default)]
    villages: Vec<String>,
    #[serde(default)]
    grids: Vec<String>,
    #[serde(
        default = "schedule::every_day",
        deserialize_with = "schedule::days_text"
    )]
    days: String,
    #[serde(default = "schedule::midnight")]
    from: String,
    #[serde(default = "schedule::end_of_day")]
    to: String,
}

impl RawDuty {
    /// The entry's window; the message starts with `at` and names the field.
    fn shift(&self, at: &str) -> Result<Window, AlertConfigError> {
        Window::parse(&ScheduleWindow {
            days: self.days.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        })
        .map_err(|e| AlertConfigError(format!("{at} field {e}")))
    }
}

/// Reads `[[organisation.roster]]` against the villages and officers read
/// before it.
pub(super) fn roster(
    raw: Vec<toml::Value>,
    villages: &[VillageView],
    officers: &[Officer],
) -> Result<Vec<RosterEntry>, AlertConfigError> {
    let known_village = |v: &str| villages.iter().any(|x| x.name == v);
    let known_grid = |g: &str| villages.iter().any(|x| x.grids.iter().any(|y| y == g));
    let mut roster = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let r: RawDuty = entry("[[organisation.roster]]", i, v)?;
        let at = format!("[[organisation.roster]] #{} (`{}`)", i + 1, r.officer);
        if !officers.iter().any(|o| o.id == r.officer) {
            return err(format!(
                "{at} field `officer`: no officer with id `{}`",
                r.officer
            ));
        }
        if r.villages.is_empty() && r.grids.is_empty() {
            return err(format!(
                "{at}: give `villages` or `grids` (what the officer covers)"
            ));
        }
        if let Some(v) = r.villages.iter().find(|v| !known_village(v)) {
            return err(format!(
                "{at} field `villages`: `{v}` is not in [[organisation.villages]]"
            ));
        }
        if let Some(g) = r.grids.iter().find(|g| !known_grid(g)) {
            return err(format!(
                "{at} field `grids`: `{g}` is not a grid of any village"
            ));
        }
        let shift = r.shift(&at)?;
        roster.push(RosterEntry {
            officer: r.officer,
            villages: r.villages,
            grids: r.grids,
            shift,
        });
    }
    Ok(roster)
}

/// Reads `[[organisation.duty_leaders]]` against the officers.
pub(super) fn duty_leaders(
    raw: Vec<toml::Value>,
    officers: &[Officer],
) -> Result<Vec<LeaderEntry>, AlertConfigError> {
    let mut leaders = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let r: RawDuty = entry("[[organisation.duty_leaders]]", i, v)?;
        let at = format!("[[organisation.duty_leaders]] #{} (`{}`)", i + 1, r.officer);
        if !r.villages.is_empty() || !r.grids.is_empty() {
            return err(format!(
                "{at}: duty leaders cover the whole township; remove `villages` and `grids`"
            ));
        }
        if !officers.iter().any(|o| o.id == r.officer) {
            return err(format!(
                "{at} field `officer`: no officer with id `{}`",
                r.officer
            ));
        }
        let shift = r.shift(&at)?;
        leaders.push(LeaderEntry {
            officer: r.officer,
            shift,
        });
    }
    Ok(leaders)
}
