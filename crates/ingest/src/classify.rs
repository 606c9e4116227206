//! Turning a failed session into an operator-facing reason.

use xueliang_core::HealthReason;

/// Why a session ended. `detail` never contains credentials (retina only ever
/// sees a URL without them).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{reason:?}: {detail}")]
pub struct SessionError {
    pub reason: HealthReason,
    pub detail: String,
}

impl SessionError {
    pub fn new(reason: HealthReason, detail: impl Into<String>) -> Self {
        SessionError {
            reason,
            detail: detail.into(),
        }
    }

    /// Classifies an error from retina during `stage` (describe, setup, play, read).
    pub fn from_retina(stage: &str, e: &retina::Error) -> Self {
        let text = e.to_string();
        // retina puts connection context on following lines; the first is the gist.
        let gist = text.lines().next().unwrap_or_default().to_owned();
        let reason = match e.status_code() {
            Some(401) | Some(403) => HealthReason::AuthFailed,
            Some(404) => HealthReason::NotFound,
            Some(_) => HealthReason::Protocol,
            None if text.starts_with("Unable to connect") && text.contains("refused") => {
                HealthReason::Refused
            }
            None if text.starts_with("Unable to connect") => HealthReason::Unreachable,
            None if text.starts_with("Unsupported") => HealthReason::UnsupportedCodec,
            None if text.contains("framing error") || text.contains("Error reading") => {
                HealthReason::Protocol
            }
            None => HealthReason::Other,
        };
        SessionError::new(reason, format!("{stage}: {gist}"))
    }
}
