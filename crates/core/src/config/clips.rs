//! `[clips]`: a short MP4 per event, cut without re-encoding from a ring of
//! each camera's recent compressed video (design/live-view.md).

use crate::EventKind;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClipsConfig {
    /// Record clips at all.
    pub enabled: bool,
    /// Seconds before the event's start (from the key frame at or before).
    pub pre_s: f64,
    /// Seconds after the event's end.
    pub post_s: f64,
    /// Longest clip, seconds; a longer event's clip stops here.
    pub max_s: f64,
    /// The event kinds that get a clip.
    pub kinds: Vec<EventKind>,
    /// Each camera's ring of recent video, MiB: it must hold `pre_s` plus a
    /// GOP at the camera's bitrate (about 1 MiB for a D1 sub-stream at
    /// 1 Mb/s and 5 s).
    pub ring_mb: f64,
}

impl Default for ClipsConfig {
    fn default() -> Self {
        ClipsConfig {
            enabled: true,
            pre_s: 5.0,
            post_s: 10.0,
            max_s: 120.0,
            kinds: vec![
                EventKind::Object,
                EventKind::Intrusion,
                EventKind::Loitering,
                EventKind::Crowd,
                EventKind::LineCrossing,
                EventKind::VehicleDwell,
            ],
            ring_mb: 4.0,
        }
    }
}

impl ClipsConfig {
    /// The ring's bound in bytes.
    pub fn ring_bytes(&self) -> usize {
        (self.ring_mb * 1024.0 * 1024.0) as usize
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let within = |name: &str, v: f64, lo: f64, hi: f64| {
            if v >= lo && v <= hi {
                Ok(())
            } else {
                Err(format!("field `{name}`: must be in [{lo}, {hi}], got {v}"))
            }
        };
        within("pre_s", self.pre_s, 0.0, 60.0)?;
        within("post_s", self.post_s, 0.0, 300.0)?;
        within("max_s", self.max_s, 1.0, 600.0)?;
        within("ring_mb", self.ring_mb, 0.25, 256.0)?;
        let without_video =
            |k: &&EventKind| matches!(k, EventKind::CameraOffline | EventKind::StoreFull);
        if let Some(k) = self.kinds.iter().find(without_video) {
            return Err(format!(
                "field `kinds`: \"{}\" events have no video of their own",
                k.as_str()
            ));
        }
        Ok(())
    }
}
