//! `[ingest]`: RTSP connection and frame timeouts, and reconnect delays.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Seconds to wait for the TCP connection and each RTSP request.
    pub connect_timeout_s: f64,
    /// Seconds without a frame after which a session is dropped as stalled.
    pub frame_timeout_s: f64,
    /// First reconnect delay, seconds.
    pub backoff_initial_s: f64,
    /// Longest reconnect delay, seconds.
    pub backoff_max_s: f64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            connect_timeout_s: 10.0,
            frame_timeout_s: 10.0,
            backoff_initial_s: 1.0,
            backoff_max_s: 60.0,
        }
    }
}

impl IngestConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("connect_timeout_s", self.connect_timeout_s),
            ("frame_timeout_s", self.frame_timeout_s),
            ("backoff_initial_s", self.backoff_initial_s),
            ("backoff_max_s", self.backoff_max_s),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("field `{name}`: must be > 0, got {v}"));
            }
        }
        if self.backoff_max_s < self.backoff_initial_s {
            return Err("field `backoff_max_s`: must be >= backoff_initial_s".into());
        }
        Ok(())
    }
}
