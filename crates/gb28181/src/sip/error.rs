//! Errors of the SIP side, with the device id where there is one.

use xueliang_core::HealthReason;

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("invalid SIP settings: {0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("device {0} is not registered")]
    DeviceOffline(String),
    #[error("device {device_id} answered {code} {reason}")]
    Refused {
        device_id: String,
        code: u16,
        reason: String,
    },
    #[error("device {0} did not answer")]
    Timeout(String),
    #[error("cannot send to device {device_id}: {detail}")]
    Transport { device_id: String, detail: String },
    #[error("the SIP server is shutting down")]
    ShuttingDown,
}

/// Why an INVITE did not give a dialog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("device {device_id} is not registered")]
    DeviceOffline { device_id: String },
    #[error("device refused the INVITE: {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("device did not answer the INVITE")]
    Timeout,
    #[error("cannot send the INVITE: {0}")]
    Transport(String),
    #[error("the device's answer is unusable: {0}")]
    BadAnswer(String),
    #[error("the SIP server is shutting down")]
    ShuttingDown,
}

impl InviteError {
    /// The camera health reason an operator should see.
    pub fn health_reason(&self) -> HealthReason {
        match self {
            InviteError::DeviceOffline { .. } => HealthReason::DeviceOffline,
            InviteError::Refused { .. } | InviteError::BadAnswer(_) => HealthReason::InviteRefused,
            InviteError::Timeout | InviteError::Transport(_) => HealthReason::Unreachable,
            InviteError::ShuttingDown => HealthReason::Other,
        }
    }
}

/// Why a client transaction ended without a final response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no final response in time")]
    Timeout,
    #[error("send failed: {0}")]
    Send(String),
    #[error("shutting down")]
    ShuttingDown,
}
