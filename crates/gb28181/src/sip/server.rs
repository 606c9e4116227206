//! The SIP server: starts the UDP and TCP listeners, the dispatcher that
//! hands each message to its handler (registrar, MESSAGE, BYE, responses to
//! our transactions), and the sweep that takes silent devices offline. The
//! public face is [`SipServer`]; [`Shared`] is what the handlers share.

use super::alarm_subscription::AlarmSubscriptions;
use super::auth_limit::AuthLimiter;
use super::build::{self, Local};
use super::cascade::UpstreamQuery;
use super::cascade_video::CascadeVideo;
use super::catalog::CatalogAssembler;
use super::catalog_notify::CatalogSubscriptions;
use super::counters::{LogGate, SipCounters};
use super::device::{DeviceEvent, DeviceInfo, Registry};
use super::dialog::{Dialog, Dialogs};
use super::digest::NonceSigner;
use super::error::{InviteError, SipError};
use super::headers;
use super::message::{Message, Method, StartLine};
use super::sdp::MediaOffer;
use super::settings::SipSettings;
use super::transaction::{ClientTransactions, ResponseCache, Seen, TxContext};
use super::transport::{self, Inbound, Peer, TcpContext, Transport};
use super::upstream::{Link, UpstreamSettings};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use xueliang_core::{Clock, SystemClock};

/// Device events waiting for slow subscribers. When full, a lagging
/// subscriber loses the oldest events and is told how many (broadcast).
const EVENT_QUEUE: usize = 256;
/// At most one log line per kind of bad input per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
const ALLOW: &str = "REGISTER, MESSAGE, INVITE, BYE, ACK, OPTIONS, SUBSCRIBE";

/// A response and what to do once it is sent.
pub(super) struct Reply {
    pub response: Message,
    /// Ask this device for its catalog (it just came online).
    pub query_catalog: Option<String>,
    /// A superior platform's query, answered in MESSAGEs of our own.
    pub upstream_query: Option<UpstreamQuery>,
}

impl From<Message> for Reply {
    fn from(response: Message) -> Reply {
        Reply {
            response,
            query_catalog: None,
            upstream_query: None,
        }
    }
}

pub(super) struct Shared {
    pub settings: SipSettings,
    pub clock: Arc<dyn Clock>,
    pub transport: Transport,
    pub local: Local,
    pub counters: Arc<SipCounters>,
    pub logs: Arc<LogGate>,
    pub client: ClientTransactions,
    cache: ResponseCache,
    registry: Mutex<Registry>,
    pub catalogs: Mutex<CatalogAssembler>,
    pub dialogs: Mutex<Dialogs>,
    pub auth: Mutex<AuthLimiter>,
    pub nonces: NonceSigner,
    /// What our own TCP connections (to superior platforms) need.
    pub tcp: Arc<TcpContext>,
    /// The superior platforms we register to.
    upstreams: Mutex<Vec<Arc<Link>>>,
    /// Live video to superior platforms (cascade).
    pub video: CascadeVideo,
    /// Superior platforms' catalog subscriptions (cascade).
    pub catalog_subs: CatalogSubscriptions,
    /// Superior platforms' alarm subscriptions (cascade).
    pub alarm_subs: AlarmSubscriptions,
    events: broadcast::Sender<DeviceEvent>,
    sn: AtomicU32,
    ssrc_seq: AtomicU32,
    pub shutdown: CancellationToken,
}

/// A lock that survives a panic elsewhere (the data is still usable).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    pub fn catalogs(&self) -> MutexGuard<'_, CatalogAssembler> {
        lock(&self.catalogs)
    }

    pub fn dialogs(&self) -> MutexGuard<'_, Dialogs> {
        lock(&self.dialogs)
    }

    pub fn auth(&self) -> MutexGuard<'_, AuthLimiter> {
        lock(&self.auth)
    }

    pub fn upstreams(&self) -> MutexGuard<'_, Vec<Arc<Link>>> {
        lock(&self.upstreams)
    }

    pub fn publish(&self, event: DeviceEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    pub fn next_sn(&self) -> u32 {
        self.sn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_ssrc_seq(&self) -> u32 {
        self.ssrc_seq.fetch_add(1, Ordering::Relaxed) % 9_999 + 1
    }

    pub fn tx_context(&self) -> TxContext<'_> {
        TxContext {
            transport: &self.transport,
            counters: &self.counters,
            t1: self.settings.t1,
            invite_timeout: self.settings.invite_timeout,
            shutdown: &self.shutdown,
        }
    }

    /// A response to `request` from `peer`.
    pub fn reply(&self, request: &Message, peer: &Peer, code: u16, reason: &str) -> Message {
        build::response(request, peer.addr(), code, reason, &build::tag())
    }

    /// Logs a line about bad input, at most once per kind per interval.
    pub fn log_bad(&self, kind: &'static str, peer: &Peer, detail: &str) {
        if let Some(suppressed) = self.logs.allow(kind) {
            warn!(kind, source = %peer.addr(), detail, suppressed, "bad SIP input");
        }
    }

    async fn dispatch(self: &Arc<Self>, inbound: Inbound) {
        let Inbound { message, peer } = inbound;
        match &message.start {
            StartLine::Response { .. } => {
                SipCounters::add(&self.counters.responses);
                if let Err(unmatched) = self.client.deliver(message) {
                    self.on_unmatched_response(&unmatched, &peer).await;
                }
            }
            StartLine::Request { method, .. } => {
                SipCounters::add(&self.counters.requests);
                if *method == Method::Ack {
                    // Only a superior's INVITE gets our 2xx (live video upward).
                    self.on_ack(&message);
                    return;
                }
                self.on_request(&message, &peer).await;
            }
        }
    }

    async fn on_request(self: &Arc<Self>, request: &Message, peer: &Peer) {
        let complete = headers::top_via(request).is_some()
            && headers::from(request).is_some()
            && headers::to(request).is_some()
            && request.call_id().is_some()
            && headers::CSeq::of(request).is_some();
        if !complete {
            SipCounters::add(&self.counters.missing_headers);
            self.log_bad("missing_headers", peer, &request.to_string());
            if headers::top_via(request).is_some() {
                let bad = self.reply(request, peer, 400, "Bad Request");
                let _ = self.transport.send(peer, bad.to_bytes()).await;
            }
            return;
        }
        let Some(key) = ResponseCache::key(request, peer) else {
            return;
        };
        match self.cache.seen(&key) {
            Seen::New => {}
            Seen::Pending => return,
            Seen::Answered(bytes) => {
                SipCounters::add(&self.counters.retransmissions_received);
                let _ = self.transport.send(peer, bytes).await;
                return;
            }
        }
        let reply = match request.method() {
            Some(Method::Register) => self.on_register(request, peer),
            Some(Method::Message) => self.on_message(request, peer),
            Some(Method::Invite) => self.on_invite(request, peer).await.into(),
            Some(Method::Bye) => self.on_bye(request, peer).into(),
            Some(Method::Subscribe) => self.on_subscribe(request, peer),
            Some(Method::Options) => {
                let mut ok = self.reply(request, peer, 200, "OK");
                ok.headers.push("Allow", ALLOW);
                ok.into()
            }
            Some(Method::Cancel) => self
                .reply(request, peer, 481, "Call/Transaction Does Not Exist")
                .into(),
            Some(Method::Other(name)) => {
                SipCounters::add(&self.counters.unknown_method);
                self.log_bad("unknown_method", peer, name);
                self.reply(request, peer, 501, "Not Implemented").into()
            }
            _ => {
                SipCounters::add(&self.counters.unknown_method);
                let mut no = self.reply(request, peer, 405, "Method Not Allowed");
                no.headers.push("Allow", ALLOW);
                no.into()
            }
        };
        let bytes = reply.response.to_bytes();
        self.cache.answered(&key, &bytes);
        let _ = self.transport.send(peer, bytes).await;
        if let Some(query) = reply.upstream_query {
            let shared = self.clone();
            tokio::spawn(async move { shared.answer_upstream(query).await });
        }
        if let Some(device_id) = reply.query_catalog {
            let shared = self.clone();
            tokio::spawn(async move {
                if let Err(e) = shared.query_catalog(&device_id).await {
                    info!(device = %device_id, error = %e, "catalog query after registration failed");
                }
            });
        }
    }

    async fn on_unmatched_response(&self, response: &Message, peer: &Peer) {
        let invite_2xx = response.status().is_some_and(|c| (200..300).contains(&c))
            && headers::CSeq::of(response).is_some_and(|c| c.method == Method::Invite);
        let ack = match (invite_2xx, response.call_id()) {
            (true, Some(call_id)) => self.dialogs().ack_of(call_id),
            _ => None,
        };
        match ack {
            // The device did not get our ACK and repeats its 200.
            Some(ack) => {
                let _ = self.transport.send(peer, ack).await;
            }
            None => {
                SipCounters::add(&self.counters.unmatched_responses);
                debug!(source = %peer.addr(), response = %response, "response matches no transaction");
            }
        }
    }
}

/// The GB/T 28181 SIP server. Cheap to clone; everything runs in tasks
/// that end when the shutdown token is cancelled.
#[derive(Clone)]
pub struct SipServer {
    shared: Arc<Shared>,
}

impl SipServer {
    pub async fn start(
        settings: SipSettings,
        shutdown: CancellationToken,
    ) -> Result<SipServer, SipError> {
        SipServer::start_with_clock(settings, Arc::new(SystemClock), shutdown).await
    }

    pub async fn start_with_clock(
        settings: SipSettings,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> Result<SipServer, SipError> {
        settings.validate()?;
        let (udp, tcp) =
            transport::bind(settings.listen)
                .await
                .map_err(|source| SipError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let udp = Arc::new(udp);
        let counters = Arc::new(SipCounters::default());
        let logs = Arc::new(LogGate::new(LOG_INTERVAL));
        let transport =
            Transport::new(udp.clone(), counters.clone()).map_err(|source| SipError::Bind {
                addr: settings.listen,
                source,
            })?;
        let bound = transport.local_addr();
        let advertised_ip = if bound.ip().is_unspecified() {
            settings.media_ip
        } else {
            bound.ip()
        };
        let local = Local {
            server_id: settings.server_id.clone(),
            domain: settings.domain.clone(),
            addr: SocketAddr::new(advertised_ip, bound.port()),
        };
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let (queue, inbound) = mpsc::channel(transport::INBOUND_QUEUE);
        let max_bytes = settings.max_message_bytes;
        let tcp_context = Arc::new(TcpContext {
            queue: queue.clone(),
            counters: counters.clone(),
            logs: logs.clone(),
            max_bytes,
            shutdown: shutdown.clone(),
        });
        let shared = Arc::new(Shared {
            tcp: tcp_context.clone(),
            upstreams: Mutex::new(Vec::new()),
            video: CascadeVideo::default(),
            catalog_subs: CatalogSubscriptions::default(),
            alarm_subs: AlarmSubscriptions::default(),
            auth: Mutex::new(AuthLimiter::new(
                settings.auth_failures_before_block,
                settings.auth_block,
            )),
            registry: Mutex::new(Registry::new(settings.max_devices)),
            catalogs: Mutex::new(CatalogAssembler::default()),
            dialogs: Mutex::new(Dialogs::default()),
            cache: ResponseCache::default(),
            client: ClientTransactions::default(),
            nonces: NonceSigner::new(),
            sn: AtomicU32::new(1),
            ssrc_seq: AtomicU32::new(0),
            events,
            settings,
            clock,
            transport,
            local,
            counters: counters.clone(),
            logs: logs.clone(),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(transport::udp_loop(
            udp,
            queue,
            counters,
            logs,
            max_bytes,
            shutdown.clone(),
        ));
        tokio::spawn(transport::tcp_accept_loop(tcp, tcp_context));
        tokio::spawn(run_dispatcher(shared.clone(), inbound));
        tokio::spawn(run_sweeper(shared.clone()));
        info!(listen = %bound, server_id = %shared.settings.server_id, "GB/T 28181 SIP server listening (UDP and TCP)");
        Ok(SipServer { shared })
    }

    /// The bound address (UDP and TCP share the port).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.transport.local_addr()
    }

    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.shared
            .registry()
            .infos(self.shared.settings.keepalive_interval)
    }

    pub fn device(&self, device_id: &str) -> Option<DeviceInfo> {
        self.devices().into_iter().find(|d| d.id == device_id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.shared.events.subscribe()
    }

    pub fn counters(&self) -> Arc<SipCounters> {
        self.shared.counters.clone()
    }

    /// Asks a device for its catalog; returns once the device accepted the
    /// query. The answer comes later: a [`DeviceEvent::CatalogUpdated`].
    pub async fn query_catalog(&self, device_id: &str) -> Result<(), SipError> {
        self.shared.query_catalog(device_id).await
    }

    /// Registers to a superior platform (cascade) and answers its queries
    /// with `cameras`, until shutdown, when it unregisters. The task ends
    /// once the unregistration is sent.
    pub fn start_upstream(
        &self,
        settings: UpstreamSettings,
        cameras: Arc<dyn xueliang_core::gb28181::CascadeCameras>,
    ) -> tokio::task::JoinHandle<()> {
        let link = Arc::new(Link::new(settings, cameras, self.shared.clock.now()));
        self.shared.upstreams().push(link.clone());
        tokio::spawn(self.shared.clone().run_upstream(link))
    }

    /// The superior platforms and the state of each registration.
    pub fn upstreams(&self) -> Vec<xueliang_core::gb28181::GbUpstream> {
        let links = self.shared.upstreams().clone();
        links
            .iter()
            .map(|l| {
                let mut view = l.view();
                self.shared.video.fill(&mut view);
                view
            })
            .collect()
    }

    /// The cameras' own video, for the superior platforms that INVITE
    /// their channels (without it, such an INVITE gets 480).
    pub fn share_live_video(&self, live: Arc<dyn xueliang_core::LiveUnits>) {
        self.shared.video.share(live);
    }

    /// The cameras' event clips, for the superiors' record queries
    /// (RecordInfo) and playback; without them both find nothing.
    pub fn share_recordings(&self, recordings: Arc<dyn xueliang_core::RecordedClips>) {
        self.shared.video.share_recordings(recordings);
    }

    /// The ports upward streams bind (`rtp_ports`, shared with the devices'
    /// media); without them they take any free port.
    pub fn use_media_ports(&self, pool: crate::media::PortPool) {
        self.shared.video.use_ports(pool);
    }

    /// Sends an alarm to a superior platform (see [`super::alarm`]).
    pub async fn send_alarm(
        &self,
        alarm: &xueliang_core::gb_alarm::GbAlarm,
    ) -> Result<(), xueliang_core::gb_alarm::AlarmSendError> {
        self.shared.send_alarm(alarm).await
    }

    /// Asks a device for live video of one channel.
    pub async fn invite(
        &self,
        device_id: &str,
        channel_id: &str,
        offer: MediaOffer,
    ) -> Result<Dialog, InviteError> {
        self.shared.invite(device_id, channel_id, offer).await
    }
}

async fn run_dispatcher(shared: Arc<Shared>, mut inbound: mpsc::Receiver<Inbound>) {
    loop {
        let next = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break,
            n = inbound.recv() => n,
        };
        let Some(message) = next else { break };
        shared.dispatch(message).await;
    }
    shared.end_all_dialogs().await;
}

async fn run_sweeper(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.sweep();
        shared.expire_catalogs();
    }
}

impl xueliang_core::gb_alarm::UpstreamAlarms for SipServer {
    fn send_alarm<'a>(
        &'a self,
        alarm: &'a xueliang_core::gb_alarm::GbAlarm,
    ) -> futures::future::BoxFuture<'a, Result<(), xueliang_core::gb_alarm::AlarmSendError>> {
        Box::pin(self.shared.send_alarm(alarm))
    }
}
