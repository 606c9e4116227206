//! One media session's receiving end: a port from the pool, RTP over UDP
//! or over a TCP connection the device opens (RFC 4571), the reorder
//! buffer and the PS demuxer, yielding access units.
//!
//! Memory is bounded: the reorder window (packets and bytes), one datagram
//! buffer, the TCP framing buffer (two frames at most) and the unit size
//! cap of the demuxer. Bad input is counted in [`MediaCounters`]; the first
//! bad packet of a session is logged, the rest only counted.

use super::counters::{Counter, MediaCounters};
use super::ports::{PortLease, PortPool};
use super::ps::{PsDemuxer, DEFAULT_MAX_UNIT};
use super::reorder::{Admission, Delivery, ReorderBuffer, ReorderSettings};
use super::rtp::RtpPacket;
use super::ssrc::{SsrcLock, SsrcVerdict};
use super::tcp_framing::{FramingError, Rfc4571Deframer, MAX_FRAME_LEN};
use bytes::Bytes;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use xueliang_ingest::AccessUnit;

/// How the device sends media (the SDP's `m=` protocol and `a=setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaTransport {
    /// RTP/AVP over UDP.
    Udp,
    /// TCP/RTP/AVP with `a=setup:passive` on our side: we listen, the
    /// device connects.
    TcpPassive,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP port: {tried} ports of the pool tried, all leased or in use")]
    NoFreePort { tried: usize },
    #[error("binding media port {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("receiving media on port {port}: {source}")]
    Receive {
        port: u16,
        #[source]
        source: io::Error,
    },
}

/// Limits of one receiver.
#[derive(Clone, Copy, Debug)]
pub struct ReceiverSettings {
    pub reorder: ReorderSettings,
    /// Access units bigger than this are dropped.
    pub max_unit: usize,
    /// SO_RCVBUF asked for on UDP sockets (the kernel caps it at
    /// `net.core.rmem_max`): a key frame arrives as a burst of hundreds of
    /// packets.
    pub udp_receive_buffer: usize,
    /// The longest RFC 4571 frame accepted on TCP.
    pub max_tcp_frame: usize,
}

impl Default for ReceiverSettings {
    fn default() -> Self {
        ReceiverSettings {
            reorder: ReorderSettings::default(),
            max_unit: DEFAULT_MAX_UNIT,
            udp_receive_buffer: 4 << 20,
            max_tcp_frame: MAX_FRAME_LEN,
        }
    }
}

enum Link {
    Udp(UdpSocket),
    Listening(TcpListener),
    /// The listener stays open (holding the port) but accepts no more.
    Connected {
        stream: TcpStream,
        deframer: Rfc4571Deframer,
        _listener: TcpListener,
    },
    Closed,
}

enum Incoming {
    Packet(Bytes, Option<SocketAddr>),
    Accepted(TcpStream, SocketAddr),
    Framing(FramingError),
    Closed,
}

pub struct MediaReceiver {
    lease: PortLease,
    transport: MediaTransport,
    settings: ReceiverSettings,
    link: Link,
    reorder: ReorderBuffer<Bytes>,
    demux: PsDemuxer,
    counters: Arc<MediaCounters>,
    ssrc: SsrcLock,
    datagram: Box<[u8]>,
    peer: Option<SocketAddr>,
    logged_bad_input: bool,
    logged_ps_errors: bool,
}

impl MediaReceiver {
    /// Binds a port from `pool` on `ip` with the default limits.
    pub async fn bind(
        pool: &PortPool,
        ip: IpAddr,
        transport: MediaTransport,
    ) -> Result<MediaReceiver, MediaError> {
        Self::bind_with(pool, ip, transport, ReceiverSettings::default()).await
    }

    /// Binds a port from `pool` on `ip`. Ports in use by someone else are
    /// skipped (and go back to the pool).
    pub async fn bind_with(
        pool: &PortPool,
        ip: IpAddr,
        transport: MediaTransport,
        settings: ReceiverSettings,
    ) -> Result<MediaReceiver, MediaError> {
        let counters = Arc::new(MediaCounters::default());
        Self::bind_counting(pool, ip, transport, settings, counters).await
    }

    /// [`MediaReceiver::bind_with`], counting into `counters` (shared by
    /// several receivers for totals over all sessions).
    pub async fn bind_counting(
        pool: &PortPool,
        ip: IpAddr,
        transport: MediaTransport,
        settings: ReceiverSettings,
        counters: Arc<MediaCounters>,
    ) -> Result<MediaReceiver, MediaError> {
        let mut tried = 0;
        while tried < pool.size() {
            let Some(lease) = pool.lease() else { break };
            tried += 1;
            let addr = SocketAddr::new(ip, lease.port());
            let link = match transport {
                MediaTransport::Udp => bind_udp(addr, settings.udp_receive_buffer).map(Link::Udp),
                MediaTransport::TcpPassive => TcpListener::bind(addr).await.map(Link::Listening),
            };
            match link {
                Ok(link) => return Ok(Self::new(lease, transport, link, settings, counters)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(source) => return Err(MediaError::Bind { addr, source }),
            }
        }
        Err(MediaError::NoFreePort { tried })
    }

    fn new(
        lease: PortLease,
        transport: MediaTransport,
        link: Link,
        settings: ReceiverSettings,
        counters: Arc<MediaCounters>,
    ) -> Self {
        MediaReceiver {
            lease,
            transport,
            settings,
            link,
            reorder: ReorderBuffer::new(settings.reorder),
            demux: PsDemuxer::new(counters.clone(), settings.max_unit),
            counters,
            ssrc: SsrcLock::default(),
            datagram: vec![0; 65536].into_boxed_slice(),
            peer: None,
            logged_bad_input: false,
            logged_ps_errors: false,
        }
    }

    pub fn local_port(&self) -> u16 {
        self.lease.port()
    }

    pub fn transport(&self) -> MediaTransport {
        self.transport
    }

    /// Where media last came from (the device's address as seen here).
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub fn counters(&self) -> Arc<MediaCounters> {
        self.counters.clone()
    }

    /// The SSRC offered or answered in SDP (`y=`). A hint: packets with
    /// another SSRC are still accepted and counted as mismatching.
    pub fn expect_ssrc(&mut self, ssrc: Option<u32>) {
        self.ssrc.expect(ssrc);
    }

    /// The next access unit. `Ok(None)`: the device closed the TCP
    /// connection (never for UDP). Waits as long as the device is silent;
    /// the caller bounds it. Cancel-safe: every wait is on a cancel-safe
    /// receive or a timer, and all state lives in `self`.
    pub async fn next_unit(&mut self) -> Result<Option<AccessUnit>, MediaError> {
        loop {
            if let Some(unit) = self.demux.pop() {
                return Ok(Some(unit));
            }
            if let Some(delivery) = self.reorder.pop(Instant::now().into_std()) {
                self.feed(delivery);
                self.log_ps_errors();
                continue;
            }
            if let Link::Closed = self.link {
                for delivery in self.reorder.drain() {
                    self.feed(delivery);
                }
                self.demux.end_of_stream();
                return Ok(self.demux.pop());
            }
            let deadline = self.reorder.deadline().map(Instant::from_std);
            let incoming = tokio::select! {
                biased;
                received = receive(&mut self.link, &mut self.datagram) => received,
                _ = sleep_until(deadline) => continue,
            };
            match incoming {
                Ok(incoming) => self.handle(incoming),
                Err(source) => {
                    return Err(MediaError::Receive {
                        port: self.lease.port(),
                        source,
                    })
                }
            }
        }
    }

    fn handle(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Packet(bytes, from) => self.on_packet(bytes, from),
            Incoming::Accepted(stream, from) => {
                tracing::debug!(port = self.lease.port(), %from, "media TCP connection accepted");
                self.peer = Some(from);
                if let Link::Listening(listener) = std::mem::replace(&mut self.link, Link::Closed) {
                    self.link = Link::Connected {
                        stream,
                        deframer: Rfc4571Deframer::new(self.settings.max_tcp_frame),
                        _listener: listener,
                    };
                }
            }
            Incoming::Framing(error) => {
                self.counters.bump(Counter::FramingErrors);
                self.log_bad_input(&error);
            }
            Incoming::Closed => {
                tracing::debug!(
                    port = self.lease.port(),
                    "media TCP connection closed by the device"
                );
                self.link = Link::Closed;
            }
        }
    }

    /// One datagram (`from` set) or one TCP frame (its 2-byte length gone).
    fn on_packet(&mut self, bytes: Bytes, from: Option<SocketAddr>) {
        let framing = if from.is_some() { 0 } else { 2 };
        self.counters
            .add(Counter::Bytes, (bytes.len() + framing) as u64);
        let packet = match RtpPacket::parse(&bytes) {
            Ok(packet) => packet,
            Err(e) if e.is_rtcp() => return,
            Err(e) => {
                self.counters.bump(Counter::BadRtp);
                self.log_bad_input(&e);
                return;
            }
        };
        self.counters.bump(Counter::Packets);
        if from.is_some() {
            self.peer = from;
        }
        let (verdict, mismatch) = self.ssrc.check(packet.ssrc);
        if mismatch {
            self.counters.bump(Counter::SsrcMismatch);
        }
        match verdict {
            SsrcVerdict::Accept => {}
            SsrcVerdict::Switched => {
                tracing::debug!(
                    port = self.lease.port(),
                    ssrc = packet.ssrc,
                    "media SSRC changed"
                );
                self.reorder.reset();
            }
            SsrcVerdict::Reject => return,
        }
        let payload = bytes.slice_ref(packet.payload);
        let now = Instant::now().into_std();
        match self
            .reorder
            .push(packet.sequence, payload.len(), payload, now)
        {
            Admission::Accepted { reordered: true } => self.counters.bump(Counter::Reordered),
            Admission::Accepted { reordered: false } => {}
            Admission::Late | Admission::Duplicate => self.counters.bump(Counter::Late),
        }
    }

    fn feed(&mut self, delivery: Delivery<Bytes>) {
        if delivery.lost_before > 0 || delivery.restarted {
            self.counters
                .add(Counter::Lost, u64::from(delivery.lost_before));
            self.demux.note_loss(delivery.lost_before);
        }
        self.demux.push(&delivery.item);
    }

    /// The first PS error of a session gets a log line, the rest a count.
    fn log_ps_errors(&mut self) {
        if !self.logged_ps_errors && self.counters.get(Counter::PsErrors) > 0 {
            self.logged_ps_errors = true;
            tracing::warn!(
                port = self.lease.port(),
                peer = ?self.peer,
                "broken MPEG-PS from the device (bad headers, unsupported codec or oversized \
                 frames); skipped to the next start code, further errors only counted"
            );
        }
    }

    fn log_bad_input(&mut self, error: &dyn std::error::Error) {
        if !std::mem::replace(&mut self.logged_bad_input, true) {
            tracing::warn!(
                port = self.lease.port(),
                peer = ?self.peer,
                %error,
                "bad media input (further bad packets of this session are only counted)"
            );
        }
    }
}

async fn receive(link: &mut Link, datagram: &mut [u8]) -> io::Result<Incoming> {
    match link {
        Link::Udp(socket) => {
            let (len, from) = socket.recv_from(datagram).await?;
            Ok(Incoming::Packet(
                Bytes::copy_from_slice(&datagram[..len]),
                Some(from),
            ))
        }
        Link::Listening(listener) => {
            let (stream, from) = listener.accept().await?;
            Ok(Incoming::Accepted(stream, from))
        }
        Link::Connected {
            stream, deframer, ..
        } => loop {
            match deframer.next_frame() {
                Some(Ok(frame)) => return Ok(Incoming::Packet(frame, None)),
                Some(Err(error)) => return Ok(Incoming::Framing(error)),
                None => {}
            }
            if stream.read_buf(deframer.buffer_mut()).await? == 0 {
                return Ok(Incoming::Closed);
            }
        },
        Link::Closed => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A UDP socket with a receive buffer big enough for key-frame bursts.
fn bind_udp(addr: SocketAddr, receive_buffer: usize) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(error) = socket.set_recv_buffer_size(receive_buffer) {
        tracing::debug!(%error, "could not enlarge the UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
