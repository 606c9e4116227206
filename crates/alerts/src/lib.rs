//! Alert push to duty officers (值班人员): the organisation and its duty
//! roster, routing of events to the officer on duty for the camera's grid or
//! village, flood control, escalation to the duty leader, and the channels
//! (webhook, WeCom and DingTalk group robots, MQTT, SMS gateway).
//!
//! Delivery is at least once: every stored event has an outbox row written in
//! its own transaction (crate `xueliang-store`); the [`Dispatcher`] routes the
//! rows, records every attempt, and retries retriable failures with
//! exponential backoff. See `design/alerts.md` and `docs/alerts.md`.

pub mod channel;
pub mod config;
pub mod dispatcher;
pub mod message;
pub mod sign;

pub use channel::{ChannelError, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use config::{AlertConfigError, AlertSetup, AlertsConfig, Organisation};
pub use dispatcher::{Dispatcher, TickReport};

use std::sync::Arc;
use xueliang_core::Secret;
use xueliang_store::AlertStore;

/// What the API needs of the alerts stage: the organisation (to show it),
/// the store (alerts, deliveries, acknowledgement) and the link key.
pub struct AlertService {
    pub store: Arc<dyn AlertStore>,
    pub organisation: Organisation,
    ack_key: Secret,
}

impl AlertService {
    pub fn new(store: Arc<dyn AlertStore>, setup: &AlertSetup) -> Self {
        AlertService {
            store,
            organisation: setup.organisation.clone(),
            ack_key: setup.alerts.ack_key.clone(),
        }
    }

    /// Checks an acknowledgement link: signed for this alert, officer and
    /// expiry (Unix seconds), and not expired at `now`.
    pub fn check_ack_link(
        &self,
        alert_id: i64,
        officer: &str,
        expires: i64,
        sig: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AckLink {
        if !sign::verify_ack(self.ack_key.expose(), alert_id, officer, expires, sig) {
            AckLink::Invalid
        } else if now.timestamp() >= expires {
            AckLink::Expired
        } else {
            AckLink::Valid
        }
    }
}

/// What an acknowledgement link is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckLink {
    Valid,
    /// Signed by us, but its time is over.
    Expired,
    /// Not a link we signed (or altered).
    Invalid,
}

impl std::fmt::Debug for AlertService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertService")
            .field("organisation", &self.organisation)
            .field("ack_key", &self.ack_key)
            .finish_non_exhaustive()
    }
}
