//! Cascade upward (级联): Xueliang as a lower platform (下级平台) that
//! registers to a superior platform (上级平台, the county or police
//! platform). Per superior, one supervised task ([`Shared::run_upstream`]):
//! REGISTER answered to its digest challenge, refreshed at 80 % of the
//! granted time, a Keepalive MESSAGE every `keepalive_s`; any failure (no
//! answer, an error response, `keepalive_misses` keepalives unanswered)
//! is recorded and the whole registration starts again after a backoff
//! (doubling from `backoff_min` to `backoff_max`, with jitter). At
//! shutdown, REGISTER with `Expires: 0`.
//!
//! The superior's own requests (MESSAGE Query Catalog, DeviceInfo,
//! DeviceStatus) come through the server's dispatcher, recognised by the
//! From id; [`super::cascade`] answers them, and
//! [`super::catalog_notify`] keeps its catalog subscription.

use super::build::{self, Local, Outgoing};
use super::charset::Charset;
use super::digest::Challenge;
use super::headers::{self, NameAddr, SipUri};
use super::manscdp;
use super::message::{Message, Method};
use super::server::Shared;
use super::transaction::OnFinal;
use super::transport::{self, Peer, SipTransport};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{info, warn};
use xueliang_core::config::gb28181::{Gb28181Upstream, UpstreamCharset, UpstreamTransport};
use xueliang_core::gb28181::{CascadeCameras, GbUpstream, UpstreamState};
use xueliang_core::Clock;

/// The registration is refreshed when this share of the granted time is gone.
const REFRESH_AT: f64 = 0.8;
/// How long a TCP connection to a superior may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One superior platform: its `[[gb28181.upstream]]` and the tuning tests
/// shorten.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    pub config: Gb28181Upstream,
    /// The first wait after a failure; doubled at each failure in a row.
    pub backoff_min: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// Catalog items per Response MESSAGE (and per catalog NOTIFY).
    pub catalog_chunk: usize,
    /// How often a catalog subscription compares the catalog with the one
    /// last notified.
    pub catalog_check: Duration,
    /// The zone of the times in record queries and their answers: the
    /// alarms' (`[detection] timezone`, Beijing time by default), so that a
    /// search around an alarm's `AlarmTime` finds its clip.
    pub timezone: chrono_tz::Tz,
}

impl UpstreamSettings {
    pub fn new(config: Gb28181Upstream) -> UpstreamSettings {
        UpstreamSettings {
            config,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            catalog_chunk: 10,
            catalog_check: Duration::from_secs(2),
            timezone: chrono_tz::Asia::Shanghai,
        }
    }

    pub fn charset(&self) -> Charset {
        match self.config.charset {
            UpstreamCharset::Gb2312 => Charset::gb2312(),
            UpstreamCharset::Utf8 => Charset::utf8(),
        }
    }

    pub fn transport(&self) -> SipTransport {
        match self.config.transport {
            UpstreamTransport::Udp => SipTransport::Udp,
            UpstreamTransport::Tcp => SipTransport::Tcp,
        }
    }
}

/// Why a registration or a request to a superior failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("cannot send: {0}")]
    Send(String),
    #[error("no answer")]
    NoAnswer,
    #[error("{code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("{code} {reason} to our digest answer: wrong password or id")]
    AuthRejected { code: u16, reason: String },
    #[error("{0} keepalives unanswered")]
    KeepalivesLost(u32),
    #[error("shutting down")]
    ShuttingDown,
}

/// The wait before attempt `failures + 1` (`failures` >= 1 in a row):
/// `min` doubled per failure, capped at `max`, then a random share of its
/// upper half taken off (jitter, so many lower platforms restarted together
/// do not retry in step).
pub fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let doubled = min.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = doubled.min(max);
    let jitter: f64 = rand::random::<f64>() * 0.5;
    capped.mul_f64(1.0 - jitter)
}

/// A superior platform, the state of our registration to it, and what its
/// queries are answered from.
pub struct Link {
    pub settings: UpstreamSettings,
    pub cameras: Arc<dyn CascadeCameras>,
    status: Mutex<GbUpstream>,
    /// Where the superior is reached: resolved (UDP) or connected (TCP);
    /// cleared after a failure so the next attempt resolves again.
    peer: Mutex<Option<Peer>>,
    sn: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Link {
    pub fn new(
        settings: UpstreamSettings,
        cameras: Arc<dyn CascadeCameras>,
        now: DateTime<Utc>,
    ) -> Link {
        let c = &settings.config;
        let status = GbUpstream {
            id: c.id.clone(),
            address: format!("{}:{}", c.address, c.port),
            transport: settings.transport().as_str().to_ascii_lowercase(),
            local_id: c.local_id.clone(),
            state: UpstreamState::Registering,
            since: now,
            last_error: None,
            registered_until: None,
            last_keepalive: None,
            registrations: 0,
            failures: 0,
            catalog_queries: 0,
            alarms_sent: 0,
            alarms_failed: 0,
            catalog_notifies_sent: 0,
            catalog_notifies_failed: 0,
            streams: 0,
            streams_refused: 0,
            stream_bytes: 0,
        };
        Link {
            settings,
            cameras,
            status: Mutex::new(status),
            peer: Mutex::new(None),
            sn: AtomicU32::new(1),
        }
    }

    pub fn id(&self) -> &str {
        &self.settings.config.id
    }

    pub fn view(&self) -> GbUpstream {
        lock(&self.status).clone()
    }

    pub fn next_sn(&self) -> u32 {
        self.sn.fetch_add(1, Ordering::Relaxed)
    }

    fn set_state(&self, state: UpstreamState, now: DateTime<Utc>) {
        let mut s = lock(&self.status);
        if s.state != state {
            s.state = state;
            s.since = now;
        }
        if state != UpstreamState::Registered {
            s.registered_until = None;
        }
    }

    fn registered(&self, now: DateTime<Utc>, granted: u32) {
        self.set_state(UpstreamState::Registered, now);
        let mut s = lock(&self.status);
        s.registrations += 1;
        s.registered_until = Some(now + chrono::Duration::seconds(i64::from(granted)));
    }

    fn failed(&self, now: DateTime<Utc>, error: &LinkError) {
        self.set_state(UpstreamState::Failed, now);
        let mut s = lock(&self.status);
        s.failures += 1;
        s.last_error = Some(error.to_string());
    }

    fn keepalive_answered(&self, now: DateTime<Utc>) {
        lock(&self.status).last_keepalive = Some(now);
    }

    pub fn catalog_answered(&self) {
        lock(&self.status).catalog_queries += 1;
    }

    pub(super) fn alarm_done(&self, sent: bool) {
        let mut s = lock(&self.status);
        if sent {
            s.alarms_sent += 1;
        } else {
            s.alarms_failed += 1;
        }
    }

    pub(super) fn catalog_notify_done(&self, sent: bool) {
        let mut s = lock(&self.status);
        if sent {
            s.catalog_notifies_sent += 1;
        } else {
            s.catalog_notifies_failed += 1;
        }
    }

    pub(super) fn state(&self) -> UpstreamState {
        lock(&self.status).state
    }

    fn forget_peer(&self) {
        *lock(&self.peer) = None;
    }
}

/// What one registration keeps between its REGISTERs: RFC 3261 keeps the
/// Call-ID and From tag and counts CSeq up; the last challenge is answered
/// again (nonce count up) on refreshes.
struct Registration {
    call_id: String,
    from_tag: String,
    cseq: u32,
    challenge: Option<Challenge>,
    /// The challenge came in a 407: answer in `Proxy-Authorization`.
    proxy: bool,
    nc: u32,
}

impl Registration {
    fn new() -> Registration {
        Registration {
            call_id: build::call_id(),
            from_tag: build::tag(),
            cseq: 0,
            challenge: None,
            proxy: false,
            nc: 0,
        }
    }
}

pub(super) fn tx_error(e: super::error::TxError) -> LinkError {
    match e {
        super::error::TxError::Timeout => LinkError::NoAnswer,
        super::error::TxError::Send(detail) => LinkError::Send(detail),
        super::error::TxError::ShuttingDown => LinkError::ShuttingDown,
    }
}

/// The registration time a 200 to our REGISTER grants: the Contact's
/// `expires`, else the Expires header, else what we asked.
fn granted_expires(response: &Message, asked: u32) -> u32 {
    headers::requested_expires(response)
        .filter(|e| *e > 0)
        .unwrap_or(asked)
}

/// Marks `link` registered on a 2xx to its REGISTER, where the dispatcher
/// takes the response in: a superior that SUBSCRIBEs or INVITEs right after
/// its 200 (a request that may be handled before the registration task
/// wakes up) finds the link registered.
fn mark_registered(link: Arc<Link>, clock: Arc<dyn Clock>, asked: u32) -> OnFinal {
    Box::new(move |response: &Message| {
        if response.status().is_some_and(|c| (200..300).contains(&c)) {
            link.registered(clock.now(), granted_expires(response, asked));
        }
    })
}

impl Shared {
    /// Who we are towards this superior: our local id at its first 10 digits.
    pub(super) fn upstream_local(&self, link: &Link) -> Local {
        let id = &link.settings.config.local_id;
        Local {
            server_id: id.clone(),
            domain: id.chars().take(10).collect(),
            addr: self.local.addr,
        }
    }

    /// Where the superior is: resolved (UDP) or connected (TCP) once, then kept.
    async fn upstream_peer(&self, link: &Link) -> Result<Peer, LinkError> {
        if let Some(peer) = lock(&link.peer).clone() {
            return Ok(peer);
        }
        let c = &link.settings.config;
        let target = format!("{}:{}", c.address, c.port);
        let addr: SocketAddr = tokio::net::lookup_host(&target)
            .await
            .map_err(|e| LinkError::Resolve(format!("{target}: {e}")))?
            .next()
            .ok_or_else(|| LinkError::Resolve(target.clone()))?;
        let peer = match link.settings.transport() {
            SipTransport::Udp => Peer::Udp(addr),
            SipTransport::Tcp => transport::connect(addr, CONNECT_TIMEOUT, self.tcp.clone())
                .await
                .map_err(|e| LinkError::Connect(format!("{addr}: {e}")))?,
        };
        *lock(&link.peer) = Some(peer.clone());
        Ok(peer)
    }

    fn register_request(&self, link: &Link, reg: &mut Registration, expires: u32) -> Message {
        let c = &link.settings.config;
        let local = self.upstream_local(link);
        let uri = SipUri::new(&c.id, &c.domain, None);
        let to = NameAddr::new(SipUri::new(&local.server_id, &local.domain, None));
        reg.cseq += 1;
        let mut request = build::request(
            &local,
            &Outgoing {
                method: Method::Register,
                uri: &uri,
                from_tag: &reg.from_tag,
                to: &to,
                call_id: &reg.call_id,
                cseq: reg.cseq,
                transport: link.settings.transport(),
            },
        );
        request.headers.push("Contact", local.contact().to_string());
        request.headers.push("Expires", expires.to_string());
        if let Some(challenge) = &reg.challenge {
            reg.nc += 1;
            let answer = challenge.answer(
                "REGISTER",
                &uri.to_string(),
                &c.local_id,
                c.password.expose(),
                reg.nc,
            );
            let name = if reg.proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            request.headers.push(name, answer);
        }
        request
    }

    /// One registration (or refresh): REGISTER, the challenge answered;
    /// returns the seconds granted. The link is registered from the moment
    /// the 200 arrives ([`mark_registered`]), before this returns.
    async fn register(&self, link: &Arc<Link>, reg: &mut Registration) -> Result<u32, LinkError> {
        let asked = link.settings.config.register_expires_s;
        let peer = self.upstream_peer(link).await?;
        // A first answer, then at most one fresh challenge (stale nonce or
        // a refresh whose nonce the superior no longer takes).
        for _ in 0..3 {
            let request = self.register_request(link, reg, asked);
            let answered_with = reg.challenge.as_ref().map(|c| c.nonce.clone());
            let on_final = mark_registered(link.clone(), self.clock.clone(), asked);
            let response = self
                .client
                .request_observed(&self.tx_context(), &request, &peer, Some(on_final))
                .await
                .map_err(tx_error)?;
            let code = response.status().unwrap_or(0);
            let reason = response.reason().unwrap_or_default().to_owned();
            match code {
                200..=299 => return Ok(granted_expires(&response, asked)),
                401 | 407 => {
                    let name = if code == 401 {
                        "WWW-Authenticate"
                    } else {
                        "Proxy-Authenticate"
                    };
                    let challenge = response.header(name).and_then(Challenge::parse).ok_or(
                        LinkError::Refused {
                            code,
                            reason: format!("{reason} (no MD5 digest challenge)"),
                        },
                    )?;
                    // Our answer to a fresh nonce refused: the password is wrong.
                    let fresh_answer_refused =
                        answered_with.is_some() && !challenge.stale && reg.nc <= 1;
                    if fresh_answer_refused {
                        return Err(LinkError::AuthRejected { code, reason });
                    }
                    if answered_with.as_deref() != Some(challenge.nonce.as_str()) {
                        reg.nc = 0;
                    }
                    reg.challenge = Some(challenge);
                    reg.proxy = code == 407;
                }
                _ => return Err(LinkError::Refused { code, reason }),
            }
        }
        Err(LinkError::Refused {
            code: 401,
            reason: "Unauthorized (challenged again and again)".into(),
        })
    }

    /// A MANSCDP MESSAGE of ours to the superior; `Ok` on its 2xx.
    pub(super) async fn message_upstream(&self, link: &Link, body: &str) -> Result<(), LinkError> {
        let c = &link.settings.config;
        let peer = self.upstream_peer(link).await?;
        let local = self.upstream_local(link);
        let uri = SipUri::new(&c.id, &c.domain, None);
        let to = NameAddr::new(uri.clone());
        let call_id = build::call_id();
        let request = build::request(
            &local,
            &Outgoing {
                method: Method::Message,
                uri: &uri,
                from_tag: &build::tag(),
                to: &to,
                call_id: &call_id,
                cseq: 1,
                transport: link.settings.transport(),
            },
        );
        self.send_manscdp(link, request, &peer, body).await
    }

    /// Sends `request` to the superior with `body` as its MANSCDP XML (in
    /// the link's charset); `Ok` on its 2xx.
    pub(super) async fn send_manscdp(
        &self,
        link: &Link,
        mut request: Message,
        peer: &Peer,
        body: &str,
    ) -> Result<(), LinkError> {
        request
            .headers
            .push("Content-Type", "Application/MANSCDP+xml");
        request.body = link.settings.charset().encode(body);
        let response = self
            .client
            .request(&self.tx_context(), &request, peer)
            .await
            .map_err(tx_error)?;
        match response.status() {
            Some(200..=299) => Ok(()),
            code => Err(LinkError::Refused {
                code: code.unwrap_or(0),
                reason: response.reason().unwrap_or_default().to_owned(),
            }),
        }
    }

    async fn keepalive_upstream(&self, link: &Link) -> Result<(), LinkError> {
        let body = manscdp::keepalive(
            link.next_sn(),
            &link.settings.config.local_id,
            link.settings.charset().label(),
        );
        self.message_upstream(link, &body).await
    }

    /// Registered: refreshes before expiry and keeps alive until shutdown
    /// (`Ok`) or a failure.
    async fn stay_registered(
        &self,
        link: &Arc<Link>,
        reg: &mut Registration,
        mut granted: u32,
    ) -> Result<(), LinkError> {
        let c = &link.settings.config;
        let keepalive = Duration::from_secs(u64::from(c.keepalive_s));
        let mut refresh_at =
            Instant::now() + Duration::from_secs(u64::from(granted)).mul_f64(REFRESH_AT);
        let mut keepalive_at = Instant::now() + keepalive;
        let mut misses = 0;
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(()),
                _ = sleep_until(refresh_at) => {
                    granted = self.register(link, reg).await?;
                    refresh_at = Instant::now() + Duration::from_secs(u64::from(granted)).mul_f64(REFRESH_AT);
                }
                _ = sleep_until(keepalive_at) => {
                    keepalive_at = Instant::now() + keepalive;
                    match self.keepalive_upstream(link).await {
                        Ok(()) => {
                            misses = 0;
                            link.keepalive_answered(self.clock.now());
                        }
                        Err(LinkError::NoAnswer) => {
                            misses += 1;
                            warn!(upstream = %c.id, misses, "keepalive to the superior platform unanswered");
                            if misses >= c.keepalive_misses {
                                return Err(LinkError::KeepalivesLost(misses));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// The supervised loop of one superior: never returns an error; ends
    /// at shutdown after unregistering.
    pub(super) async fn run_upstream(self: Arc<Self>, link: Arc<Link>) {
        let c = link.settings.config.clone();
        let span = tracing::info_span!("upstream", upstream = %c.id);
        let _ = tracing::Instrument::instrument(
            async {
                let mut failures = 0u32;
                let mut reg = Registration::new();
                loop {
                    if self.shutdown.is_cancelled() {
                        break;
                    }
                    link.set_state(UpstreamState::Registering, self.clock.now());
                    reg = Registration::new();
                    let outcome = match self.register(&link, &mut reg).await {
                        Ok(granted) => {
                            failures = 0;
                            info!(address = %format!("{}:{}", c.address, c.port), expires = granted,
                                "registered to the superior platform");
                            self.stay_registered(&link, &mut reg, granted).await
                        }
                        Err(e) => Err(e),
                    };
                    let error = match outcome {
                        Ok(()) | Err(LinkError::ShuttingDown) => break,
                        Err(e) => e,
                    };
                    failures += 1;
                    link.failed(self.clock.now(), &error);
                    link.forget_peer();
                    let wait = backoff(
                        failures,
                        link.settings.backoff_min,
                        link.settings.backoff_max,
                    );
                    warn!(error = %error, failures, retry_in_ms = wait.as_millis() as u64,
                        "registration to the superior platform failed");
                    tokio::select! {
                        biased;
                        _ = self.shutdown.cancelled() => break,
                        _ = sleep(wait) => {}
                    }
                }
                if link.state() == UpstreamState::Registered {
                    self.unregister_upstream(&link, &mut reg).await;
                }
                link.set_state(UpstreamState::Stopped, self.clock.now());
            },
            span,
        )
        .await;
    }

    /// REGISTER with `Expires: 0`, sent once without waiting for the answer
    /// (the dispatcher is stopping with the rest of the service).
    async fn unregister_upstream(&self, link: &Link, reg: &mut Registration) {
        let Some(peer) = lock(&link.peer).clone() else {
            return;
        };
        let request = self.register_request(link, reg, 0);
        match self.transport.send(&peer, request.to_bytes()).await {
            Ok(()) => info!("unregistered from the superior platform (Expires: 0 sent)"),
            Err(e) => warn!(error = %e, "could not send the unregistration"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..50 {
            let first = backoff(1, min, max);
            assert!(first >= min / 2 && first <= min, "{first:?}");
            let third = backoff(3, min, max);
            assert!(third >= min * 2 && third <= min * 4, "{third:?}");
            let late = backoff(40, min, max);
            assert!(late >= max / 2 && late <= max, "{late:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(5, min, max)).collect();
        assert!(spread.len() > 1, "no jitter");
    }

    #[test]
    fn the_granted_time_comes_from_contact_or_expires() {
        let parse = |t: &str| super::super::parse::parse_datagram(t.as_bytes(), 65535).unwrap();
        let with_contact = parse(
            "SIP/2.0 200 OK\r\nContact: <sip:a@1.2.3.4>;expires=1800\r\nExpires: 3600\r\n\r\n",
        );
        assert_eq!(granted_expires(&with_contact, 3600), 1800);
        let header = parse("SIP/2.0 200 OK\r\nExpires: 600\r\n\r\n");
        assert_eq!(granted_expires(&header, 3600), 600);
        let none = parse("SIP/2.0 200 OK\r\n\r\n");
        assert_eq!(granted_expires(&none, 3600), 3600);
    }
}
