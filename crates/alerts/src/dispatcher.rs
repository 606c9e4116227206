//! The dispatcher: turns outbox rows into alerts (routing, flood control),
//! sends deliveries with retries and backoff (rate limits per channel), and
//! escalates unacknowledged alerts. All decisions use the [`Clock`], so tests
//! run it in simulated time by calling [`Dispatcher::tick`].
//!
//! Each attempt runs as its own task, at most `concurrency` per channel, so a
//! receiver that hangs until the channel's timeout holds up only its own
//! channel's sends, never routing, escalation or the other channels.
//!
//! Nodes sharing a database each run a dispatcher; only the one whose store
//! says it leads ([`AlertStore::leadership`]) does anything, so a delivery is
//! sent by one node, under one rate limit (design/alerts.md, "Several nodes").

use crate::channel::{self, Channel};
use crate::config::{AlertSetup, ChannelKind, Route, DEFAULT_ALARM_PRIORITY};
use crate::message::{self, MessageInput, OfficerInfo};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use xueliang_core::gb_alarm::UpstreamAlarms;
use xueliang_core::telemetry::{telemetry, DeliveryOutcome};
use xueliang_core::{CameraConfig, Clock, Event};
use xueliang_store::alerts::{
    AlertPlan, AttemptOutcome, AttemptRecord, Busy, Delivery, Leadership, PlannedDelivery,
    RouteOutcome,
};
use xueliang_store::{AlertStore, EventStore, StoreError};

/// Rows handled per batch.
const BATCH: u32 = 100;
/// Longest sleep between looks at the store (the outbox signal wakes it sooner).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long sends in flight may still finish at shutdown. Those that do not
/// are cancelled unrecorded: their deliveries stay due for the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Attempts started and not finished yet.
type Sends = JoinSet<Result<AttemptOutcome, StoreError>>;

/// What one [`Dispatcher::tick`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub routed: usize,
    pub opened: usize,
    pub merged: usize,
    pub escalated: usize,
    /// Attempts started; the outcomes below count those that finished.
    pub started: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    pub rate_limited: usize,
}

impl TickReport {
    fn count(&mut self, outcome: AttemptOutcome) {
        match outcome {
            AttemptOutcome::Ok => self.delivered += 1,
            AttemptOutcome::Retriable => self.retrying += 1,
            AttemptOutcome::Permanent => self.failed += 1,
        }
    }
}

/// The outcome of a finished send; `None` if its task panicked (a bug: it is
/// logged, and the delivery stays due).
fn outcome(
    done: Result<Result<AttemptOutcome, StoreError>, JoinError>,
) -> Result<Option<AttemptOutcome>, StoreError> {
    done.map_err(|e| error!(error = %e, "alert send task failed; the delivery stays due"))
        .ok()
        .transpose()
}

/// For [`Dispatcher::run`], which does not count outcomes (each attempt logs
/// its own): logs a send whose attempt could not be recorded.
fn log_unrecorded(done: Result<Result<AttemptOutcome, StoreError>, JoinError>) {
    if let Err(e) = outcome(done) {
        warn!(error = %e, "alert dispatcher: cannot record an attempt; the delivery stays due");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Deliveries being sent now, and how many per channel. Their rows stay
/// `pending` and due until the attempt is recorded, so this is what keeps a
/// delivery from being sent twice at once.
#[derive(Default)]
struct InFlight {
    deliveries: HashSet<i64>,
    per_channel: HashMap<String, usize>,
}

impl InFlight {
    /// What the store should leave out: these deliveries, and the channels
    /// already sending `limit` messages.
    fn busy(&self, limit: usize) -> Busy {
        Busy {
            deliveries: self.deliveries.iter().copied().collect(),
            channels: self
                .per_channel
                .iter()
                .filter(|(_, &n)| n >= limit)
                .map(|(c, _)| c.clone())
                .collect(),
        }
    }
}

/// A delivery marked in flight. Dropping it (the attempt ended, or was
/// cancelled) clears the mark.
struct Claim {
    in_flight: Arc<Mutex<InFlight>>,
    delivery: i64,
    channel: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut f = lock(&self.in_flight);
        f.deliveries.remove(&self.delivery);
        if let Some(n) = f.per_channel.get_mut(&self.channel) {
            *n -= 1;
            if *n == 0 {
                f.per_channel.remove(&self.channel);
            }
        }
    }
}

/// A token bucket: `per_min` messages a minute, bursts up to `per_min`.
struct Bucket {
    per_min: f64,
    tokens: f64,
    at: DateTime<Utc>,
}

impl Bucket {
    /// Takes a token, or says when the next one comes.
    fn take(&mut self, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        let elapsed = (now - self.at).num_milliseconds().max(0) as f64 / 60_000.0;
        self.tokens = (self.tokens + elapsed * self.per_min).min(self.per_min);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = ((1.0 - self.tokens) / self.per_min * 60_000.0).ceil() as i64;
            Err(now + chrono::Duration::milliseconds(wait_ms.max(1)))
        }
    }
}

pub struct Dispatcher<S: ?Sized> {
    store: Arc<S>,
    setup: AlertSetup,
    /// Camera names and places for the messages (routing uses the event's
    /// own village and grid): those given to `new`, then each one given to
    /// `set_camera`.
    cameras: RwLock<HashMap<String, CameraConfig>>,
    channels: HashMap<String, Box<dyn Channel>>,
    /// What the channels were built with.
    senders: channel::Senders,
    buckets: Mutex<HashMap<String, Bucket>>,
    in_flight: Arc<Mutex<InFlight>>,
    clock: Arc<dyn Clock>,
    /// From the store at the first round (it may start an election).
    leadership: OnceLock<Leadership>,
}

impl<S: AlertStore + EventStore + ?Sized + 'static> Dispatcher<S> {
    pub fn new(
        store: Arc<S>,
        setup: AlertSetup,
        cameras: &[CameraConfig],
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("xueliang/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        let senders = channel::Senders {
            http,
            upstream_alarms: None,
            tz: setup.organisation.tz,
        };
        let channels = setup
            .alerts
            .channels
            .iter()
            .map(|c| (c.name.clone(), channel::build(c, &senders)))
            .collect();
        let now = clock.now();
        let buckets = setup
            .alerts
            .channels
            .iter()
            .filter(|c| c.rate_per_min > 0)
            .map(|c| {
                (
                    c.name.clone(),
                    Bucket {
                        per_min: c.rate_per_min as f64,
                        tokens: c.rate_per_min as f64,
                        at: now,
                    },
                )
            })
            .collect();
        Dispatcher {
            store,
            setup,
            cameras: RwLock::new(cameras.iter().map(|c| (c.id.clone(), c.clone())).collect()),
            channels,
            buckets: Mutex::new(buckets),
            in_flight: Default::default(),
            senders,
            clock,
            leadership: OnceLock::new(),
        }
    }

    /// `gb28181` channels send their alarms through `alarms` (the SIP
    /// server's upstream links).
    pub fn with_upstream_alarms(mut self, alarms: Arc<dyn UpstreamAlarms>) -> Self {
        self.senders.upstream_alarms = Some(alarms);
        for c in &self.setup.alerts.channels {
            if matches!(c.kind, ChannelKind::Gb28181 { .. }) {
                self.channels
                    .insert(c.name.clone(), channel::build(c, &self.senders));
            }
        }
        self
    }

    /// Whether this node's dispatcher leads (see the store's election).
    fn leadership(&self) -> Leadership {
        self.leadership
            .get_or_init(|| self.store.leadership())
            .clone()
    }

    /// Adds or replaces a camera (started, added or changed at run time). A
    /// deleted camera is kept: alerts about its past events still name it.
    pub fn set_camera(&self, camera: &CameraConfig) {
        let mut cameras = match self.cameras.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        cameras.insert(camera.id.clone(), camera.clone());
    }

    /// Runs until `shutdown`: a round whenever the outbox signals, something
    /// falls due, a send finishes (its channel may start another), this
    /// node starts leading, or a second passes; a node that does not lead
    /// does nothing in its rounds. Sends run on their own; at shutdown they
    /// get [`SHUTDOWN_GRACE`] to finish. Never returns an error: store
    /// failures are logged and retried.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let signal = self.store.outbox_signal();
        let mut leadership = self.leadership();
        info!(
            routes = self.setup.alerts.routes.len(),
            channels = self.channels.len(),
            "alert dispatcher running"
        );
        let mut sends = Sends::new();
        loop {
            let wait = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                r = self.step(&mut sends) => match r {
                    Ok(report) => {
                        if report != TickReport::default() {
                            debug!(?report, "alert round");
                        }
                        if leadership.leads_now() {
                            self.until_next_due().await
                        } else {
                            // Another node sends what is due: wait to lead.
                            IDLE_POLL
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "alert dispatcher: store error; retrying");
                        IDLE_POLL
                    }
                },
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = sends.join_next() => log_unrecorded(done),
                _ = signal.notified() => {}
                _ = leadership.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let grace = async {
            while let Some(done) = sends.join_next().await {
                log_unrecorded(done);
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, grace).await.is_err() {
            warn!(
                unanswered = sends.len(),
                "alert dispatcher stopping: unanswered sends stay due for the next start"
            );
        }
        sends.shutdown().await;
        info!("alert dispatcher stopped");
    }

    async fn until_next_due(&self) -> Duration {
        match self.store.next_due(&self.busy()).await {
            Ok(Some(t)) => (t - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(IDLE_POLL),
            _ => IDLE_POLL,
        }
    }

    /// One round, then waits for its sends, starting more as channels free
    /// up, until nothing more is due now: tests step through simulated time
    /// with it and read every outcome in the report.
    pub async fn tick(self: &Arc<Self>) -> Result<TickReport, StoreError> {
        let mut sends = Sends::new();
        let mut report = self.step(&mut sends).await?;
        while let Some(done) = sends.join_next().await {
            if let Some(o) = outcome(done)? {
                report.count(o);
            }
            self.start_due(&mut sends, &mut report).await?;
        }
        Ok(report)
    }

    /// One round: route waiting outbox rows, escalate what is due, start
    /// sending what is due into `sends` (without waiting for the sends).
    /// Nothing unless this node leads.
    async fn step(self: &Arc<Self>, sends: &mut Sends) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        if !self.leadership().leads().await {
            return Ok(report);
        }
        loop {
            let ids = self.store.waiting_outbox(BATCH).await?;
            for &id in &ids {
                self.route_one(id, &mut report).await?;
            }
            if ids.len() < BATCH as usize {
                break;
            }
        }
        self.escalate_due(&mut report).await?;
        self.start_due(sends, &mut report).await?;
        Ok(report)
    }

    fn route_for(&self, event: &Event) -> Option<&Route> {
        self.setup
            .alerts
            .routes
            .iter()
            .find(|r| r.matches(event.kind.as_str(), &event.label, event.village.as_deref()))
    }

    async fn route_one(&self, event_id: i64, report: &mut TickReport) -> Result<(), StoreError> {
        let now = self.clock.now();
        let Some(event) = self.store.get_event(event_id).await? else {
            self.store.route_event(event_id, now, None).await?;
            return Ok(());
        };
        let plan = self.route_for(&event).map(|route| {
            let mut deliveries: Vec<PlannedDelivery> = Vec::new();
            let mut add = |channel: &str, officer: Option<&str>| {
                let d = PlannedDelivery {
                    channel: channel.to_owned(),
                    officer: officer.map(str::to_owned),
                };
                if !deliveries.contains(&d) {
                    deliveries.push(d);
                }
            };
            if route.notify_on_duty {
                let org = &self.setup.organisation;
                let mut officers =
                    org.on_duty_for(event.village.as_deref(), event.grid.as_deref(), now);
                if officers.is_empty() {
                    officers = org.leaders_at(now);
                }
                if officers.is_empty() {
                    warn!(event = event.id, camera = %event.camera_id, "no officer or duty leader on duty for this camera");
                }
                for o in officers {
                    for c in &o.channels {
                        add(c, Some(&o.id));
                    }
                }
            }
            for c in &route.channels {
                add(c, None);
            }
            let rule_key = if event.kind.as_str() == "object" {
                format!("object:{}", event.label)
            } else {
                event.kind.as_str().to_owned()
            };
            AlertPlan {
                camera_id: event.camera_id.clone(),
                rule_key,
                flood_window: route.flood_window,
                escalate_at: route.escalate_after.map(|d| now + d),
                deliveries,
            }
        });
        let outcome = self.store.route_event(event_id, now, plan).await?;
        report.routed += 1;
        match outcome {
            RouteOutcome::Opened { alert_id } => {
                report.opened += 1;
                info!(event = event_id, alert = alert_id, camera = %event.camera_id, kind = %event.kind, "alert opened");
            }
            RouteOutcome::Merged { alert_id, count } => {
                report.merged += 1;
                debug!(
                    event = event_id,
                    alert = alert_id,
                    count,
                    "event merged into open alert"
                );
            }
            RouteOutcome::NoRoute | RouteOutcome::AlreadyRouted => {}
        }
        Ok(())
    }

    async fn escalate_due(&self, report: &mut TickReport) -> Result<(), StoreError> {
        let now = self.clock.now();
        for alert in self.store.due_escalations(now, BATCH).await? {
            let leaders = self.setup.organisation.leaders_at(now);
            let deliveries: Vec<PlannedDelivery> = leaders
                .iter()
                .flat_map(|o| {
                    o.channels.iter().map(|c| PlannedDelivery {
                        channel: c.clone(),
                        officer: Some(o.id.clone()),
                    })
                })
                .collect();
            if deliveries.is_empty() {
                warn!(
                    alert = alert.id,
                    "escalation due but no duty leader is on duty"
                );
            }
            if self.store.escalate(alert.id, now, deliveries).await? {
                report.escalated += 1;
                info!(
                    alert = alert.id,
                    leaders = leaders.len(),
                    "alert escalated: not acknowledged in time"
                );
            }
        }
        Ok(())
    }

    /// Starts an attempt, in its own task, for each due delivery that is not
    /// in flight, up to `concurrency` per channel; postpones those over their
    /// channel's rate limit. Starts none once this node no longer leads
    /// (sends already started finish).
    async fn start_due(
        self: &Arc<Self>,
        sends: &mut Sends,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let leadership = self.leadership();
        loop {
            if !leadership.leads_now() {
                return Ok(());
            }
            let now = self.clock.now();
            let due = self.store.due_deliveries(now, BATCH, &self.busy()).await?;
            let n = due.len();
            let mut taken = 0;
            for d in due {
                let Some(claim) = self.claim(&d) else {
                    continue; // in flight, or its channel filled up in this batch
                };
                taken += 1;
                if let Some(until) = self.rate_limited(&d.channel, now) {
                    report.rate_limited += 1;
                    self.store.defer_delivery(d.id, until).await?;
                    continue;
                }
                report.started += 1;
                let this = Arc::clone(self);
                sends.spawn(async move {
                    let _claim = claim;
                    this.attempt(d).await
                });
            }
            // Started and postponed rows are left out of the next look; a full
            // batch of them means more may be due.
            if n < BATCH as usize || taken == 0 {
                return Ok(());
            }
        }
    }

    fn busy(&self) -> Busy {
        lock(&self.in_flight).busy(self.setup.alerts.concurrency)
    }

    /// Marks `d` in flight, unless it is already or its channel is sending
    /// `concurrency` messages.
    fn claim(&self, d: &Delivery) -> Option<Claim> {
        let mut f = lock(&self.in_flight);
        let n = f.per_channel.get(&d.channel).copied().unwrap_or(0);
        if n >= self.setup.alerts.concurrency || !f.deliveries.insert(d.id) {
            return None;
        }
        f.per_channel.insert(d.channel.clone(), n + 1);
        Some(Claim {
            in_flight: Arc::clone(&self.in_flight),
            delivery: d.id,
            channel: d.channel.clone(),
        })
    }

    /// When `channel` is over its rate limit now: the time of its next token.
    fn rate_limited(&self, channel: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        lock(&self.buckets)
            .get_mut(channel)
            .and_then(|b| b.take(now).err())
    }

    /// The delay after a delivery's attempt number `attempts` (1 = the first) failed.
    fn backoff(&self, attempts: i64) -> Duration {
        let retry = u32::try_from(attempts.max(1) - 1).unwrap_or(u32::MAX);
        self.setup
            .alerts
            .retry
            .delay(retry, &mut rand::thread_rng())
    }

    async fn attempt(&self, d: Delivery) -> Result<AttemptOutcome, StoreError> {
        let started = self.clock.now();
        let t0 = std::time::Instant::now();
        let result = self.send(&d).await;
        let duration_ms = t0.elapsed().as_millis() as i64;
        let attempts = d.attempts + 1;
        let (outcome, error, retry_at) = match result {
            Ok(()) => (AttemptOutcome::Ok, None, None),
            Err(e) if e.is_retriable() => {
                if attempts >= self.setup.alerts.max_attempts as i64 {
                    (
                        AttemptOutcome::Retriable,
                        Some(format!("{e} (gave up after {attempts} attempts)")),
                        None,
                    )
                } else {
                    let retry = started
                        + chrono::Duration::from_std(self.backoff(attempts)).unwrap_or_default();
                    (AttemptOutcome::Retriable, Some(e.to_string()), Some(retry))
                }
            }
            Err(e) => (AttemptOutcome::Permanent, Some(e.to_string()), None),
        };
        let counted = match outcome {
            AttemptOutcome::Ok => DeliveryOutcome::Delivered,
            AttemptOutcome::Retriable if retry_at.is_some() => DeliveryOutcome::Retried,
            _ => DeliveryOutcome::Failed,
        };
        telemetry().delivery_attempted(&d.channel, counted);
        match (&outcome, &error) {
            (AttemptOutcome::Ok, _) => {
                debug!(delivery = d.id, channel = %d.channel, ms = duration_ms, "delivered")
            }
            (_, Some(e)) => {
                warn!(delivery = d.id, channel = %d.channel, attempt = attempts, retry = retry_at.is_some(), error = %e, "delivery failed")
            }
            _ => {}
        }
        self.store
            .record_attempt(AttemptRecord {
                delivery_id: d.id,
                at: started,
                duration_ms,
                outcome,
                error,
                retry_at,
            })
            .await?;
        Ok(outcome)
    }

    async fn send(&self, d: &Delivery) -> Result<(), SendError> {
        let channel = self.channels.get(&d.channel).ok_or_else(|| {
            SendError::Gone(format!("channel `{}` is no longer configured", d.channel))
        })?;
        let alert = self
            .store
            .get_alert(d.alert_id)
            .await
            .map_err(SendError::Store)?
            .ok_or_else(|| SendError::Gone(format!("alert {} is gone", d.alert_id)))?;
        let event = self
            .store
            .get_event(d.event_id)
            .await
            .map_err(SendError::Store)?
            .ok_or_else(|| SendError::Gone(format!("event {} is gone", d.event_id)))?;
        let officer = d.officer.as_deref().and_then(|id| {
            self.setup.organisation.officer(id).map(|o| OfficerInfo {
                id: o.id.clone(),
                name: o.name.clone(),
                phone: o.phone.clone(),
            })
        });
        let escalated_after_min = alert
            .escalate_at
            .map(|e| ((e - alert.created_at).num_seconds() as f64 / 60.0 * 10.0).round() / 10.0);
        let camera = match self.cameras.read() {
            Ok(g) => g.get(&event.camera_id).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&event.camera_id).cloned(),
        };
        let msg = message::build(MessageInput {
            delivery: d,
            alert: &alert,
            event: &event,
            camera: camera.as_ref(),
            officer,
            public_url: &self.setup.alerts.public_url,
            ack_key: self.setup.alerts.ack_key.expose(),
            ack_expires: (self.clock.now() + self.setup.alerts.ack_link_lifetime).timestamp(),
            escalated_after_min,
            tz: self.setup.organisation.tz,
            alarm_priority: self
                .route_for(&event)
                .map_or(DEFAULT_ALARM_PRIORITY, |r| r.alarm_priority),
        });
        channel.send(&msg).await.map_err(SendError::Channel)
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Channel(channel::ChannelError),
    /// Reading the alert failed; the attempt is retried.
    #[error("store: {0}")]
    Store(StoreError),
    #[error("{0}")]
    Gone(String),
}

impl SendError {
    fn is_retriable(&self) -> bool {
        match self {
            SendError::Channel(e) => e.is_retriable(),
            SendError::Store(e) => e.is_retriable(),
            SendError::Gone(_) => false,
        }
    }
}
