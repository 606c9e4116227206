//! Live video upward (cascade): a registered superior platform INVITEs one
//! of the channels of the catalog we gave it ([`super::cascade`]) and gets
//! that camera's own H.264/H.265 as PS over RTP ([`crate::media::upward`])
//! from the units ingest already has ([`LiveUnits`]): no transcoding, no
//! second connection to the camera.
//!
//! The camera may be of any source: an RTSP camera, or a GB/T 28181
//! channel of a device registered to us (device access), whose units come
//! from the stream ingest already has open with that device: no second
//! INVITE goes to the device.
//!
//! Answers: 403 to a peer that is not a registered superior, 404 for a
//! channel not in its catalog, 480 when the camera does not run here or
//! has no video now (`OFF` in the catalog: its worker is reconnecting, or
//! its device refuses our INVITE), 486
//! over `max_upstream_streams` of that superior, 400 without a usable SDP
//! offer, 488 for an offer we cannot serve (not `s=Play`, `Playback` or
//! `Download`, no PS payload, TCP without `a=setup`); else 200 with our SDP answer (SSRC from the
//! offer's `y=`, or our own when it has none or `y=0`), repeated until the ACK. The media starts on
//! the ACK. A BYE from the superior stops the stream; we send BYE when the
//! camera stops or the media link fails.
//!
//! `s=Playback` and `s=Download` take the same path with the camera's
//! event clips as the units ([`super::cascade_playback`]): 404 when no
//! clip overlaps the window, and the end-of-file notice when they end.

use super::build::{self, Outgoing};
use super::cascade::{catalog_items, Node};
use super::cascade_playback::{self, Wanted, BYE_WAIT};
use super::headers::{self, NameAddr, SipUri};
use super::message::{Message, Method};
use super::sdp;
use super::server::Shared;
use super::transport::Peer;
use super::upstream::Link;
use crate::media::upward::{send_units, UpwardEnd, UpwardSocket, UpwardTransport};
use crate::media::{PortLease, PortPool};
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};
use xueliang_core::gb28181::{GbUpstream, UpstreamState};
use xueliang_core::{LiveUnit, LiveUnits, RecordedClips};

/// How long the superior has to connect (TCP passive) or to accept our
/// connection (TCP active) once it sent the ACK.
const MEDIA_CONNECT: Duration = Duration::from_secs(10);
/// The longest wait between repeats of our 200 (RFC 3261's T2).
const T2: Duration = Duration::from_secs(4);
/// Ports of `rtp_ports` tried for one stream before giving up.
const BIND_TRIES: usize = 8;

/// A stream's socket and the port of `rtp_ports` it holds.
type Bound = (UpwardSocket, Option<PortLease>);

/// What upward streams share: the cameras' units, the open streams by
/// Call-ID, each superior's totals, and the ports they may use.
#[derive(Default)]
pub struct CascadeVideo {
    live: Mutex<Option<Arc<dyn LiveUnits>>>,
    /// The cameras' event clips, for playback and record queries.
    recordings: Mutex<Option<Arc<dyn RecordedClips>>>,
    /// `rtp_ports`, shared with the devices' media; `None`: any free port.
    ports: Mutex<Option<PortPool>>,
    streams: Mutex<HashMap<String, Slot>>,
    totals: Mutex<HashMap<String, Arc<Totals>>>,
}

/// One superior's totals since start.
#[derive(Default)]
struct Totals {
    refused: AtomicU64,
    bytes: Arc<AtomicU64>,
}

struct Slot {
    upstream: String,
    acked: CancellationToken,
    stop: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CascadeVideo {
    pub fn share(&self, live: Arc<dyn LiveUnits>) {
        *lock(&self.live) = Some(live);
    }

    pub fn share_recordings(&self, recordings: Arc<dyn RecordedClips>) {
        *lock(&self.recordings) = Some(recordings);
    }

    pub fn recordings(&self) -> Option<Arc<dyn RecordedClips>> {
        lock(&self.recordings).clone()
    }

    pub fn use_ports(&self, pool: PortPool) {
        *lock(&self.ports) = Some(pool);
    }

    fn totals(&self, upstream: &str) -> Arc<Totals> {
        lock(&self.totals)
            .entry(upstream.to_owned())
            .or_default()
            .clone()
    }

    /// Adds the streams now, refused and bytes sent to a superior's view.
    pub fn fill(&self, view: &mut GbUpstream) {
        view.streams = lock(&self.streams)
            .values()
            .filter(|s| s.upstream == view.id)
            .count() as u32;
        let totals = self.totals(&view.id);
        view.streams_refused = totals.refused.load(Ordering::Relaxed);
        view.stream_bytes = totals.bytes.load(Ordering::Relaxed);
    }

    fn remove(&self, call_id: &str) -> Option<Slot> {
        lock(&self.streams).remove(call_id)
    }
}

/// Why an INVITE is refused, as its SIP answer.
#[derive(Debug)]
enum Refusal {
    BadOffer(&'static str),
    UnknownChannel,
    /// No event clip of the camera overlaps the window asked for.
    NoRecording(String),
    NotRunning(String),
    Busy(u32),
    /// Every port of `rtp_ports` is in use.
    NoPort,
    Unsupported(&'static str),
    Failed(String),
}

impl Refusal {
    fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::BadOffer(_) => (400, "Bad Request"),
            Refusal::UnknownChannel | Refusal::NoRecording(_) => (404, "Not Found"),
            Refusal::NotRunning(_) => (480, "Temporarily Unavailable"),
            Refusal::Busy(_) => (486, "Busy Here"),
            Refusal::NoPort => (503, "Service Unavailable"),
            Refusal::Unsupported(_) => (488, "Not Acceptable Here"),
            Refusal::Failed(_) => (500, "Server Internal Error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Refusal::BadOffer(d) | Refusal::Unsupported(d) => (*d).to_owned(),
            Refusal::UnknownChannel => "no such channel in its catalog".into(),
            Refusal::NotRunning(d) | Refusal::Failed(d) | Refusal::NoRecording(d) => d.clone(),
            Refusal::Busy(max) => format!("{max} upward streams already (max_upstream_streams)"),
            Refusal::NoPort => "no free media port in rtp_ports".into(),
        }
    }
}

/// One accepted INVITE, from the 200 to the end of its stream.
struct Upward {
    link: Arc<Link>,
    channel: String,
    camera: String,
    call_id: String,
    peer: Peer,
    /// Our 200, repeated until the ACK.
    ok: Vec<u8>,
    socket: UpwardSocket,
    /// The port of `rtp_ports` the socket holds, back to the pool at the end.
    _port: Option<PortLease>,
    remote: SocketAddr,
    units: BoxStream<'static, LiveUnit>,
    ssrc: u32,
    transport: UpwardTransport,
    /// Recorded video: tell the end of the file, and wait for the BYE.
    recorded: bool,
    bytes: Arc<AtomicU64>,
    acked: CancellationToken,
    stop: CancellationToken,
    bye: UpwardBye,
}

/// What our BYE needs: the dialog as the INVITE made it.
struct UpwardBye {
    /// The superior's Contact (else its From URI at its address).
    target: SipUri,
    /// Its From, with its tag: our To.
    superior: NameAddr,
    /// Its To with our tag: our From.
    ours: NameAddr,
    our_tag: String,
    /// The CSeq of our next request in the dialog.
    cseq: u32,
}

impl Shared {
    /// An INVITE: live video for a superior, refused for anyone else.
    pub(super) async fn on_invite(self: &Arc<Self>, request: &Message, peer: &Peer) -> Message {
        let from = headers::from(request).and_then(|f| f.uri.user);
        let link = from.and_then(|id| self.upstreams().iter().find(|l| l.id() == id).cloned());
        let Some(link) = link.filter(|l| l.view().state == UpstreamState::Registered) else {
            self.log_bad(
                "invite_not_superior",
                peer,
                "INVITE from a peer that is not a registered superior platform",
            );
            return self.reply(request, peer, 403, "Forbidden");
        };
        match self.accept_invite(&link, request, peer).await {
            Ok(ok) => ok,
            Err(refusal) => {
                self.video
                    .totals(link.id())
                    .refused
                    .fetch_add(1, Ordering::Relaxed);
                let (code, reason) = refusal.status();
                info!(upstream = link.id(), code, detail = %refusal.detail(), "superior's INVITE refused");
                self.reply(request, peer, code, reason)
            }
        }
    }

    async fn accept_invite(
        self: &Arc<Self>,
        link: &Arc<Link>,
        request: &Message,
        peer: &Peer,
    ) -> Result<Message, Refusal> {
        if request.body.is_empty() {
            return Err(Refusal::BadOffer("no SDP offer"));
        }
        let offer = sdp::parse_answer(&String::from_utf8_lossy(&request.body));
        // A recording's channel is also in its `u=` line.
        let channel = request
            .request_uri()
            .and_then(SipUri::parse)
            .and_then(|u| u.user)
            .or_else(|| offer.uri_channel.clone())
            .ok_or(Refusal::BadOffer("Request-URI without a channel id"))?;
        let wanted = Wanted::of(&offer).map_err(Refusal::Unsupported)?;
        let (camera, online) = catalog_items(&link.settings.config, &link.cameras.cameras())
            .into_iter()
            .find_map(|item| match item.node {
                Node::Camera { camera, online, .. } if item.id == channel => Some((camera, online)),
                _ => None,
            })
            .ok_or(Refusal::UnknownChannel)?;
        // Its worker may run (reconnecting, or its GB device refusing our
        // INVITE) with no video to forward: a 200 would leave the superior
        // waiting for media that does not come.
        if !online && wanted == Wanted::Live {
            return Err(Refusal::NotRunning(format!(
                "camera {camera} has no video now (OFF in the catalog)"
            )));
        }
        let remote = offer.addr.ok_or(Refusal::BadOffer(
            "SDP offer without a video address and port",
        ))?;
        let payload = offer
            .ps_payload
            .ok_or(Refusal::Unsupported("no PS/90000 payload offered"))?;
        let transport = match (offer.tcp, offer.setup.as_deref()) {
            (false, _) => UpwardTransport::Udp,
            (true, Some("passive")) => UpwardTransport::TcpActive,
            (true, Some("active")) => UpwardTransport::TcpPassive,
            (true, _) => {
                return Err(Refusal::Unsupported(
                    "TCP media without a=setup:active or passive",
                ))
            }
        };
        let call_id = request
            .call_id()
            .ok_or(Refusal::BadOffer("no Call-ID"))?
            .to_owned();
        let max = link.settings.config.max_upstream_streams;
        let acked = CancellationToken::new();
        let stop = self.shutdown.child_token();
        {
            let mut streams = lock(&self.video.streams);
            let open = streams.values().filter(|s| s.upstream == link.id()).count();
            if open >= max as usize {
                return Err(Refusal::Busy(max));
            }
            if streams.contains_key(&call_id) {
                return Err(Refusal::Unsupported("a re-INVITE of a running stream"));
            }
            streams.insert(
                call_id.clone(),
                Slot {
                    upstream: link.id().to_owned(),
                    acked: acked.clone(),
                    stop: stop.clone(),
                },
            );
        }
        let prepared = self
            .prepare_upward(link, request, peer, &channel, &camera, &wanted, transport)
            .await;
        let (ok, (socket, port), units) = match prepared {
            Ok(p) => p,
            Err(refusal) => {
                self.video.remove(&call_id);
                return Err(refusal);
            }
        };
        let ssrc = offer
            .ssrc
            .filter(|s| *s != 0)
            .unwrap_or_else(|| self.upward_ssrc(link));
        let mut ok = ok;
        ok.body = sdp::upward_answer(
            &channel,
            wanted.session(),
            self.local.addr.ip(),
            socket.port(),
            transport,
            payload,
            ssrc,
        )
        .into_bytes();
        let our_tag = headers::to(&ok)
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        let superior = headers::from(request).ok_or(Refusal::BadOffer("no From"))?;
        let bye = UpwardBye {
            target: request
                .header("Contact")
                .and_then(NameAddr::parse)
                .map(|c| c.uri)
                .unwrap_or_else(|| SipUri::at(link.id(), peer.addr())),
            ours: headers::to(&ok).ok_or(Refusal::BadOffer("no To"))?,
            superior,
            our_tag,
            cseq: headers::CSeq::of(request).map_or(1, |c| c.seq) + 1,
        };
        info!(upstream = link.id(), %channel, %camera, transport = transport.as_str(), %remote, ssrc,
            session = wanted.session(), "superior's INVITE accepted");
        let session = Upward {
            link: link.clone(),
            channel,
            camera,
            call_id,
            peer: peer.clone(),
            ok: ok.to_bytes(),
            socket,
            _port: port,
            remote,
            units,
            ssrc,
            transport,
            recorded: wanted != Wanted::Live,
            bytes: self.video.totals(link.id()).bytes.clone(),
            acked,
            stop,
            bye,
        };
        tokio::spawn(self.clone().run_upward(session));
        Ok(ok)
    }

    /// The 200 (without its SDP), the bound socket and the camera's units.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_upward(
        &self,
        link: &Link,
        request: &Message,
        peer: &Peer,
        channel: &str,
        camera: &str,
        wanted: &Wanted,
        transport: UpwardTransport,
    ) -> Result<(Message, Bound, BoxStream<'static, LiveUnit>), Refusal> {
        let units = self.units(camera, wanted).await?;
        let socket = self.bind_upward(transport).await?;
        let mut ok = build::response(request, peer.addr(), 200, "OK", &build::tag());
        let contact = SipUri::at(channel, self.upstream_local(link).addr);
        ok.headers
            .push("Contact", NameAddr::new(contact).to_string());
        ok.headers.push("Content-Type", "APPLICATION/SDP");
        Ok((ok, socket, units))
    }

    /// The units to send: the camera's live ones, or its clips' paced.
    async fn units(
        &self,
        camera: &str,
        wanted: &Wanted,
    ) -> Result<BoxStream<'static, LiveUnit>, Refusal> {
        let Wanted::Recorded {
            from, to, speed, ..
        } = wanted
        else {
            let live = lock(&self.video.live)
                .clone()
                .ok_or_else(|| Refusal::NotRunning("no cameras' video shared".into()))?;
            return live
                .subscribe(camera)
                .map_err(|e| Refusal::NotRunning(e.to_string()));
        };
        let none =
            || Refusal::NoRecording(format!("no event clip of {camera} from {from} to {to}"));
        let recordings = self.video.recordings().ok_or_else(none)?;
        let failed = |e: xueliang_core::RecordedClipsError| Refusal::Failed(e.to_string());
        let clips = recordings.find(camera, *from, *to).await.map_err(failed)?;
        let units = cascade_playback::clip_units(recordings.as_ref(), &clips, (*from, *to))
            .await
            .map_err(failed)?;
        if units.is_empty() {
            return Err(none());
        }
        info!(%camera, clips = clips.len(), units = units.len(), speed, "recorded video found");
        Ok(cascade_playback::paced(units, *speed))
    }

    /// The stream's socket, on a port of `rtp_ports` when the server was
    /// given them (the range a firewall opens for video), else on any free
    /// port. A port another program holds is passed over (it goes to the
    /// back of the pool); TCP active binds nothing.
    async fn bind_upward(&self, transport: UpwardTransport) -> Result<Bound, Refusal> {
        let ip = self.settings.listen.ip();
        let failed = |e: std::io::Error| Refusal::Failed(format!("binding a media socket: {e}"));
        let pool = lock(&self.video.ports).clone();
        let Some(pool) = pool.filter(|_| UpwardSocket::binds(transport)) else {
            let socket = UpwardSocket::bind(ip, 0, transport).await.map_err(failed)?;
            return Ok((socket, None));
        };
        let mut last = None;
        for _ in 0..pool.size().min(BIND_TRIES) {
            let Some(lease) = pool.lease() else { break };
            match UpwardSocket::bind(ip, lease.port(), transport).await {
                Ok(socket) => return Ok((socket, Some(lease))),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(Refusal::NoPort, failed))
    }

    /// Our own SSRC (2022 edition): `0`, the local domain's digits 4-8, a sequence.
    fn upward_ssrc(&self, link: &Link) -> u32 {
        let domain: String = link.settings.config.local_id.chars().take(10).collect();
        sdp::live_ssrc(&domain, self.next_ssrc_seq())
    }

    /// An ACK: the superior took our 200; its stream may start.
    pub(super) fn on_ack(&self, request: &Message) {
        let Some(call_id) = request.call_id() else {
            return;
        };
        if let Some(slot) = lock(&self.video.streams).get(call_id) {
            slot.acked.cancel();
        }
    }

    /// A BYE for an upward stream: stops it (200); `None` when the Call-ID
    /// is not one of ours.
    pub(super) fn on_upward_bye(&self, request: &Message, peer: &Peer) -> Option<Message> {
        let slot = self.video.remove(request.call_id()?)?;
        slot.stop.cancel();
        info!(upstream = %slot.upstream, "superior ended the upward stream (BYE)");
        Some(self.reply(request, peer, 200, "OK"))
    }

    async fn run_upward(self: Arc<Self>, mut s: Upward) {
        let span = tracing::info_span!("upward", upstream = %s.link.id(), channel = %s.channel, camera = %s.camera);
        async {
            let started = Instant::now();
            let end = self.stream_upward(&mut s, started).await;
            let ours_to_end = match &end {
                Ended::Stream(UpwardEnd::Stopped) => false,
                Ended::NoAck => {
                    warn!("no ACK to our 200: stream not started");
                    false
                }
                Ended::Connect(e) => {
                    warn!(error = %e, transport = s.transport.as_str(), "media connection to the superior failed");
                    true
                }
                Ended::Stream(UpwardEnd::SourceEnded) if s.recorded => {
                    !self.end_of_recording(&mut s).await
                }
                Ended::Stream(UpwardEnd::SourceEnded) => {
                    info!("the camera stopped: ending the upward stream");
                    true
                }
                Ended::Stream(UpwardEnd::Failed(e)) => {
                    warn!(error = %e, "sending media to the superior failed");
                    true
                }
            };
            self.video.remove(&s.call_id);
            if ours_to_end && !self.shutdown.is_cancelled() {
                self.bye_upward(&s.link, &mut s.bye, &s.call_id, &s.peer).await;
            }
            info!(
                bytes = s.bytes.load(Ordering::Relaxed),
                seconds = started.elapsed().as_secs(),
                "upward stream ended"
            );
        }
        .instrument(span)
        .await
    }

    /// Waits for the ACK (repeating the 200), opens the media link and
    /// sends until the end.
    async fn stream_upward(&self, s: &mut Upward, started: Instant) -> Ended {
        let mut wait = self.settings.t1;
        let give_up = started + self.settings.t1 * 64;
        loop {
            tokio::select! {
                biased;
                _ = s.stop.cancelled() => return Ended::Stream(UpwardEnd::Stopped),
                _ = s.acked.cancelled() => break,
                _ = sleep(wait) => {
                    if Instant::now() >= give_up {
                        return Ended::NoAck;
                    }
                    let _ = self.transport.send(&s.peer, s.ok.clone()).await;
                    wait = (wait * 2).min(T2);
                }
            }
        }
        let socket = std::mem::replace(&mut s.socket, UpwardSocket::TcpActive);
        let link = tokio::select! {
            biased;
            _ = s.stop.cancelled() => return Ended::Stream(UpwardEnd::Stopped),
            link = socket.open(s.remote, MEDIA_CONNECT) => link,
        };
        let link = match link {
            Ok(link) => link,
            Err(e) => return Ended::Connect(e),
        };
        let units = std::mem::replace(&mut s.units, Box::pin(futures::stream::empty()));
        Ended::Stream(send_units(link, units, s.ssrc, s.bytes.clone(), s.stop.clone()).await)
    }

    /// The recording ended: the end-of-file notice in the dialog, then the
    /// superior's BYE awaited ([`BYE_WAIT`]); `true` when it came.
    async fn end_of_recording(&self, s: &mut Upward) -> bool {
        let c = &s.link.settings.config;
        let body = cascade_playback::end_of_file(
            &s.channel,
            s.link.next_sn(),
            s.link.settings.charset().label(),
        );
        let request = self.in_dialog(&s.link, &mut s.bye, Method::Message, &s.call_id, &s.peer);
        match self.send_manscdp(&s.link, request, &s.peer, &body).await {
            Ok(()) => info!(upstream = %c.id, "recording sent: end of file told (MediaStatus 121)"),
            Err(e) => warn!(error = %e, "end-of-file notice (MediaStatus 121) not taken"),
        }
        tokio::select! {
            _ = s.stop.cancelled() => true,
            _ = sleep(BYE_WAIT) => {
                warn!(wait_s = BYE_WAIT.as_secs(), "no BYE after the end of the recording: ending it");
                false
            }
        }
    }

    /// A request of ours in an upward stream's dialog.
    fn in_dialog(
        &self,
        link: &Link,
        bye: &mut UpwardBye,
        method: Method,
        call_id: &str,
        peer: &Peer,
    ) -> Message {
        let local = self.upstream_local(link);
        let mut request = build::request(
            &local,
            &Outgoing {
                method,
                uri: &bye.target,
                from_tag: &bye.our_tag,
                to: &bye.superior,
                call_id,
                cseq: bye.cseq,
                transport: peer.transport(),
            },
        );
        bye.cseq += 1;
        request.headers.set("From", bye.ours.to_string());
        request
    }

    /// Our BYE to the superior, answered or not.
    async fn bye_upward(&self, link: &Link, bye: &mut UpwardBye, call_id: &str, peer: &Peer) {
        let request = self.in_dialog(link, bye, Method::Bye, call_id, peer);
        match self
            .client
            .request(&self.tx_context(), &request, peer)
            .await
        {
            Ok(response) => info!(
                status = response.status().unwrap_or(0),
                "BYE sent to the superior"
            ),
            Err(e) => warn!(error = %e, "BYE to the superior not answered"),
        }
    }
}

/// How one upward stream ended.
enum Ended {
    NoAck,
    Connect(std::io::Error),
    Stream(UpwardEnd),
}
