//! `[live]`: live video in the dashboard and the API (`GET
//! /api/v1/cameras/{id}/live.mp4`): how many may watch.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Viewers of one camera at once (all share one stream).
    pub max_viewers_per_camera: usize,
    /// Viewers of all cameras at once.
    pub max_viewers: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            max_viewers_per_camera: 8,
            max_viewers: 64,
        }
    }
}

impl LiveConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.max_viewers_per_camera) {
            return Err(format!(
                "field `max_viewers_per_camera`: must be in [1, 1000], got {}",
                self.max_viewers_per_camera
            ));
        }
        if !(1..=10_000).contains(&self.max_viewers) {
            return Err(format!(
                "field `max_viewers`: must be in [1, 10000], got {}",
                self.max_viewers
            ));
        }
        Ok(())
    }
}
