//! `[organisation]`: the township's villages, officers, duty roster and duty
//! leaders put together, and who is on duty for a camera at a given time.

use super::directory::{self, Officer, VillageView};
use super::error::AlertConfigError;
use super::roster::{self, LeaderEntry, RosterEntry};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use utoipa::ToSchema;
use xueliang_core::schedule::Window;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    #[serde(default)]
    township: Option<String>,
    #[serde(default)]
    villages: Vec<toml::Value>,
    #[serde(default)]
    officers: Vec<toml::Value>,
    #[serde(default)]
    roster: Vec<toml::Value>,
    #[serde(default)]
    duty_leaders: Vec<toml::Value>,
}

/// Villages, grids, officers and who is on duty when.
#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct Organisation {
    pub township: Option<String>,
    pub villages: Vec<VillageView>,
    pub officers: Vec<Officer>,
    pub roster: Vec<RosterEntry>,
    /// The township's duty leaders (带班领导): the fallback when no officer
    /// covers a camera, and who an unacknowledged alert escalates to.
    pub duty_leaders: Vec<LeaderEntry>,
    /// The time zone of the roster and of messages (`[detection] timezone`).
    #[serde(skip)]
    pub tz: Tz,
}

impl Organisation {
    /// Parses `[organisation]`; shifts are read in the time zone `tz`.
    pub fn parse(table: &toml::Table, tz: Tz) -> Result<Organisation, AlertConfigError> {
        let raw = RawOrganisation::deserialize(toml::Value::Table(table.clone()))
            .map_err(|e| AlertConfigError(format!("[organisation]: {}", e.message())))?;
        let villages = directory::villages(raw.villages)?;
        let officers = directory::officers(raw.officers)?;
        let roster = roster::roster(raw.roster, &villages, &officers)?;
        let duty_leaders = roster::duty_leaders(raw.duty_leaders, &officers)?;
        Ok(Organisation {
            township: raw.township,
            villages,
            officers,
            roster,
            duty_leaders,
            tz,
        })
    }

    /// Whether `shift` covers `at` in the organisation's time zone.
    pub fn covers(&self, shift: &Window, at: DateTime<Utc>) -> bool {
        shift.contains(at, self.tz)
    }

    pub fn officer(&self, id: &str) -> Option<&Officer> {
        self.officers.iter().find(|o| o.id == id)
    }

    /// What a user limited to `villages` may see: those villages with their
    /// grids, the roster entries covering them (trimmed to them), the duty
    /// leaders (they stand behind every village), and only the officers these
    /// name.
    pub fn scoped(&self, villages: &[String]) -> Organisation {
        let seen: Vec<VillageView> = self
            .villages
            .iter()
            .filter(|v| villages.contains(&v.name))
            .cloned()
            .collect();
        let grids: Vec<&String> = seen.iter().flat_map(|v| &v.grids).collect();
        let roster: Vec<RosterEntry> = self
            .roster
            .iter()
            .filter_map(|r| {
                let entry = RosterEntry {
                    villages: r
                        .villages
                        .iter()
                        .filter(|v| villages.contains(v))
                        .cloned()
                        .collect(),
                    grids: r
                        .grids
                        .iter()
                        .filter(|g| grids.contains(g))
                        .cloned()
                        .collect(),
                    ..r.clone()
                };
                (!entry.villages.is_empty() || !entry.grids.is_empty()).then_some(entry)
            })
            .collect();
        let named = |id: &str| {
            roster.iter().any(|r| r.officer == id)
                || self.duty_leaders.iter().any(|l| l.officer == id)
        };
        Organisation {
            township: self.township.clone(),
            officers: self
                .officers
                .iter()
                .filter(|o| named(&o.id))
                .cloned()
                .collect(),
            villages: seen,
            roster,
            duty_leaders: self.duty_leaders.clone(),
            tz: self.tz,
        }
    }

    /// The officers on duty at `at` for a camera: those whose roster covers its
    /// grid; if none, those covering its village.
    pub fn on_duty_for(
        &self,
        village: Option<&str>,
        grid: Option<&str>,
        at: DateTime<Utc>,
    ) -> Vec<&Officer> {
        let pick = |f: &dyn Fn(&RosterEntry) -> bool| -> Vec<&Officer> {
            let mut ids: Vec<&str> = Vec::new();
            for r in &self.roster {
                if f(r) && self.covers(&r.shift, at) && !ids.contains(&r.officer.as_str()) {
                    ids.push(&r.officer);
                }
            }
            ids.into_iter().filter_map(|id| self.officer(id)).collect()
        };
        if let Some(g) = grid {
            let by_grid = pick(&|r| r.grids.iter().any(|x| x == g));
            if !by_grid.is_empty() {
                return by_grid;
            }
        }
        match village {
            Some(v) => pick(&|r| r.villages.iter().any(|x| x == v)),
            None => Vec::new(),
        }
    }

    /// The duty leaders on duty at `at`.
    pub fn leaders_at(&self, at: DateTime<Utc>) -> Vec<&Officer> {
        let mut out: Vec<&Officer> = Vec::new();
        for l in &self.duty_leaders {
            if self.covers(&l.shift, at) {
                if let Some(o) = self.officer(&l.officer) {
                    if !out.iter().any(|x| x.id == o.id) {
                        out.push(o);
                    }
                }
            }
        }
        out
    }
}
