//! [`AlertSetup`]: `[organisation]` and `[alerts]` read from the core config
//! and checked against its cameras.

use super::alerts::AlertsConfig;
use super::channels::ChannelKind;
use super::error::{err, AlertConfigError};
use super::organisation::Organisation;
use std::collections::BTreeSet;
use xueliang_core::CameraConfig;

/// Both tables, checked against the cameras (their villages and grids must be
/// in the organisation when it lists villages).
#[derive(Clone, Debug)]
pub struct AlertSetup {
    pub organisation: Organisation,
    pub alerts: AlertsConfig,
}

impl AlertSetup {
    pub fn from_config(config: &xueliang_core::Config) -> Result<AlertSetup, AlertConfigError> {
        let org = Organisation::parse(&config.organisation, config.detection.tz())?;
        let default_url = format!("http://{}", config.server.listen);
        let alerts = AlertsConfig::parse(&config.alerts, &org, &default_url)?;
        check_cameras(&org, &config.cameras)?;
        check_upstreams(&alerts, config.gb28181.as_ref())?;
        Ok(AlertSetup {
            organisation: org,
            alerts,
        })
    }
}

fn check_cameras(org: &Organisation, cameras: &[CameraConfig]) -> Result<(), AlertConfigError> {
    if org.villages.is_empty() {
        return Ok(());
    }
    let villages: BTreeSet<&str> = org.villages.iter().map(|v| v.name.as_str()).collect();
    for c in cameras {
        if let Some(v) = &c.village {
            if !villages.contains(v.as_str()) {
                return err(format!(
                    "camera `{}` field `village`: `{v}` is not in [[organisation.villages]]",
                    c.id
                ));
            }
            if let Some(g) = &c.grid {
                let ok = org
                    .villages
                    .iter()
                    .any(|x| &x.name == v && x.grids.iter().any(|y| y == g));
                if !ok {
                    return err(format!(
                        "camera `{}` field `grid`: `{g}` is not a grid of village `{v}` in [[organisation.villages]]",
                        c.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Each `gb28181` channel names a `[[gb28181.upstream]]`.
fn check_upstreams(
    alerts: &AlertsConfig,
    gb: Option<&xueliang_core::config::gb28181::Gb28181Config>,
) -> Result<(), AlertConfigError> {
    for c in &alerts.channels {
        let ChannelKind::Gb28181 { upstream } = &c.kind else {
            continue;
        };
        let known = gb.is_some_and(|g| g.upstreams.iter().any(|u| &u.id == upstream));
        if !known {
            return err(format!(
                "[[alerts.channels]] `{}` field `upstream`: no [[gb28181.upstream]] with id `{upstream}`",
                c.name
            ));
        }
    }
    Ok(())
}
