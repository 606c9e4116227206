//! `[[organisation.villages]]` and `[[organisation.officers]]`: the
//! township's villages with their grids, and the people alerts go to.

use super::error::{err, AlertConfigError};
use super::fields::{entry, valid_id};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Village {
    pub name: String,
    #[serde(default)]
    pub grids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    /// Short id used by the roster and in acknowledgement links.
    pub id: String,
    pub name: String,
    /// Mobile number: SMS, and the @-mention in WeCom/DingTalk groups.
    #[serde(default)]
    pub phone: Option<String>,
    /// Names of `[[alerts.channels]]` that reach this officer.
    #[serde(default)]
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct VillageView {
    pub name: String,
    pub grids: Vec<String>,
}

/// Reads `[[organisation.villages]]`: names used once.
pub(super) fn villages(raw: Vec<toml::Value>) -> Result<Vec<VillageView>, AlertConfigError> {
    let mut villages: Vec<VillageView> = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let v: Village = entry("[[organisation.villages]]", i, v)?;
        if villages.iter().any(|o| o.name == v.name) {
            return err(format!(
                "[[organisation.villages]] `{}`: listed twice",
                v.name
            ));
        }
        villages.push(VillageView {
            name: v.name,
            grids: v.grids,
        });
    }
    Ok(villages)
}

/// Reads `[[organisation.officers]]`: valid ids used once, phone numbers.
pub(super) fn officers(raw: Vec<toml::Value>) -> Result<Vec<Officer>, AlertConfigError> {
    let mut officers: Vec<Officer> = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let o: Officer = entry("[[organisation.officers]]", i, v)?;
        if !valid_id(&o.id) {
            return err(format!(
                "[[organisation.officers]] #{} field `id`: \"{}\" must be 1-64 letters, digits, '-' or '_'",
                i + 1,
                o.id
            ));
        }
        if officers.iter().any(|x| x.id == o.id) {
            return err(format!(
                "[[organisation.officers]] `{}`: id used twice",
                o.id
            ));
        }
        if let Some(p) = &o.phone {
            if p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
            {
                return err(format!(
                    "[[organisation.officers]] `{}` field `phone`: \"{p}\" is not a phone number",
                    o.id
                ));
            }
        }
        officers.push(o);
    }
    Ok(officers)
}
