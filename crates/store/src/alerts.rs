//! Storage of the alert outbox, alerts, deliveries and attempts ([`AlertStore`]).
//! The outbox row of an event is written by [`crate::EventStore::insert_event`]
//! in the event's own transaction; everything else here belongs to the alert
//! dispatcher (crate `xueliang-alerts`).

use crate::error::StoreError;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use utoipa::ToSchema;

/// Who a delivery is for: the on-duty officer and the route's channels
/// (`primary`), or the duty leader after nobody acknowledged (`escalation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryLevel {
    Primary,
    Escalation,
}

impl DeliveryLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryLevel::Primary => "primary",
            DeliveryLevel::Escalation => "escalation",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "primary" => Ok(DeliveryLevel::Primary),
            "escalation" => Ok(DeliveryLevel::Escalation),
            o => Err(StoreError::Corrupt(format!("delivery level `{o}`"))),
        }
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// To send (first time, or again after a retriable failure).
    Pending,
    /// The channel accepted it.
    Delivered,
    /// A permanent failure, or the attempts ran out.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            o => Err(StoreError::Corrupt(format!("delivery status `{o}`"))),
        }
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Ok,
    Retriable,
    Permanent,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Retriable => "retriable",
            AttemptOutcome::Permanent => "permanent",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "ok" => Ok(AttemptOutcome::Ok),
            "retriable" => Ok(AttemptOutcome::Retriable),
            "permanent" => Ok(AttemptOutcome::Permanent),
            o => Err(StoreError::Corrupt(format!("attempt outcome `{o}`"))),
        }
    }
}

pub(crate) fn parse_level(s: &str) -> Result<DeliveryLevel, StoreError> {
    DeliveryLevel::parse(s)
}
pub(crate) fn parse_status(s: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(s)
}
pub(crate) fn parse_outcome(s: &str) -> Result<AttemptOutcome, StoreError> {
    AttemptOutcome::parse(s)
}

/// One message to make: a channel, and the officer it addresses if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDelivery {
    pub channel: String,
    pub officer: Option<String>,
}

/// What the dispatcher decided for an event that matched a route.
#[derive(Clone, Debug)]
pub struct AlertPlan {
    pub camera_id: String,
    /// The event kind, `object:<label>` for object events.
    pub rule_key: String,
    /// Events of the same camera and rule within this long of the alert's
    /// latest event are merged into it.
    pub flood_window: chrono::Duration,
    /// When to escalate if nobody acknowledges; `None`: never.
    pub escalate_at: Option<DateTime<Utc>>,
    pub deliveries: Vec<PlannedDelivery>,
}

/// What routing an outbox row did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteOutcome {
    /// No route matched; nobody is told.
    NoRoute,
    /// A new alert with its deliveries.
    Opened { alert_id: i64 },
    /// Merged into an open alert (flood control); no new message.
    Merged { alert_id: i64, count: i64 },
    /// The row was already routed (another dispatcher, or a replay).
    AlreadyRouted,
}

/// An alert: what an event (and the events merged into it) made the
/// dispatcher send, and who acknowledged it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub event_id: i64,
    pub camera_id: String,
    pub rule_key: String,
    /// Events merged into the alert.
    pub count: i64,
    pub created_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub last_event_id: i64,
    pub flood_until: DateTime<Utc>,
    pub escalate_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub acked_at: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub acked_via: Option<String>,
}

/// One message of an alert to one channel (and officer).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    /// The event that opened the alert.
    pub event_id: i64,
    pub channel: String,
    pub officer: Option<String>,
    pub level: DeliveryLevel,
    pub idempotency_key: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One try at sending a delivery.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
}

/// What the dispatcher cannot start now, so [`AlertStore::due_deliveries`]
/// and [`AlertStore::next_due`] leave it out: deliveries being sent (their
/// rows stay `pending` and due until the attempt is recorded), and channels
/// sending as many messages as they may at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Busy {
    pub deliveries: Vec<i64>,
    pub channels: Vec<String>,
}

/// The result of one attempt, to record with the delivery's new state.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub at: DateTime<Utc>,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    /// For a retriable failure: when to try again; `None` gives up (status `failed`).
    pub retry_at: Option<DateTime<Utc>>,
}

/// What waits in the alert outbox (for the metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Events stored but not yet routed to an alert.
    pub events: u64,
    /// Deliveries still to send (`pending`, due or backing off).
    pub deliveries: u64,
}

/// Whether this node's alert dispatcher is the one that routes, escalates
/// and sends ([`AlertStore::leadership`]). Nodes sharing a database each run
/// a dispatcher; one leads at a time, the others stand by.
#[derive(Clone, Debug)]
pub struct Leadership(watch::Receiver<Option<bool>>);

impl Leadership {
    /// Always leads: the only node (SQLite).
    pub fn always() -> Leadership {
        Leadership(watch::channel(Some(true)).1)
    }

    /// Follows an election: `None` until its first answer, then whether
    /// this node leads.
    pub fn follow(state: watch::Receiver<Option<bool>>) -> Leadership {
        Leadership(state)
    }

    /// Whether this node leads now; right after start, waits for the
    /// election's first answer (one round trip to the database).
    pub async fn leads(&mut self) -> bool {
        match self.0.wait_for(Option::is_some).await {
            Ok(state) => state.unwrap_or(false),
            // The election stopped (its store closed): no longer leads.
            Err(_) => false,
        }
    }

    /// Whether this node leads now, without waiting (`false` before the
    /// election's first answer).
    pub fn leads_now(&self) -> bool {
        self.0.borrow().unwrap_or(false)
    }

    /// Returns when leadership may have changed; never if it cannot change.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Where alerts live. Every method is one short transaction.
pub trait AlertStore: Send + Sync {
    /// Whether this node's dispatcher leads (design/alerts.md, "Several
    /// nodes"). A store only one node uses (SQLite) always leads; on
    /// PostgreSQL the nodes elect one with a session advisory lock.
    fn leadership(&self) -> Leadership {
        Leadership::always()
    }

    /// Notified after every event insert (a new outbox row), so the dispatcher
    /// need not poll fast.
    fn outbox_signal(&self) -> Arc<Notify>;

    /// Event ids whose outbox rows wait for routing, oldest first.
    fn waiting_outbox(&self, limit: u32) -> BoxFuture<'_, Result<Vec<i64>, StoreError>>;

    /// How much waits: outbox rows not yet routed, deliveries not yet sent.
    fn outbox_depth(&self) -> BoxFuture<'_, Result<OutboxDepth, StoreError>>;

    /// Routes one outbox row in one transaction: opens an alert with its
    /// deliveries, or merges into the open alert of the same camera and rule
    /// (flood control), or records that no route matched.
    fn route_event(
        &self,
        event_id: i64,
        at: DateTime<Utc>,
        plan: Option<AlertPlan>,
    ) -> BoxFuture<'_, Result<RouteOutcome, StoreError>>;

    /// Pending deliveries due at `now`, oldest first, leaving out `busy` ones.
    fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        busy: &Busy,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, StoreError>>;

    /// The earliest time something (a pending delivery that is not `busy`, an
    /// escalation) falls due.
    fn next_due(&self, busy: &Busy) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>>;

    /// Records an attempt and the delivery's new state.
    fn record_attempt(&self, record: AttemptRecord) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Postpones a pending delivery without counting an attempt (rate limits).
    fn defer_delivery(
        &self,
        delivery_id: i64,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Unacknowledged, not yet escalated alerts whose escalation time has come.
    fn due_escalations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<Alert>, StoreError>>;

    /// Marks an alert escalated and adds the escalation deliveries, unless it
    /// was acknowledged or escalated meanwhile; returns whether it did.
    fn escalate(
        &self,
        alert_id: i64,
        at: DateTime<Utc>,
        deliveries: Vec<PlannedDelivery>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    fn get_alert(&self, alert_id: i64) -> BoxFuture<'_, Result<Option<Alert>, StoreError>>;

    /// Acknowledges an alert (the first acknowledgement is kept); `None` if no
    /// such alert.
    fn ack_alert(
        &self,
        alert_id: i64,
        by: String,
        via: String,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<Alert>, StoreError>>;

    /// The alert an event opened or was merged into, if any.
    fn alert_of_event(&self, event_id: i64) -> BoxFuture<'_, Result<Option<Alert>, StoreError>>;

    /// The deliveries of an alert with their attempts, in creation order.
    fn deliveries(&self, alert_id: i64) -> BoxFuture<'_, Result<Vec<DeliveryLog>, StoreError>>;
}

/// A delivery with its attempts.
pub type DeliveryLog = (Delivery, Vec<Attempt>);
