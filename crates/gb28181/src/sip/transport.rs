//! UDP and TCP on one port. Received messages go, parsed, to the dispatcher
//! through one bounded queue; what does not parse is counted and logged
//! (rate-limited) here. A peer is where a message came from: replies and
//! requests to a device go back there (its NAT mapping or its connection).

use super::counters::{LogGate, SipCounters};
use super::message::Message;
use super::parse::{self, ErrorKind, Frame, ParseError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Messages waiting for the dispatcher. When full, new messages are dropped
/// and counted: UDP peers retransmit, and a full queue means overload.
pub const INBOUND_QUEUE: usize = 1024;
/// Messages waiting to be written to one TCP connection. When full, the
/// message is dropped and counted as a send error (the peer is not reading).
const TCP_WRITE_QUEUE: usize = 64;
/// A TCP connection that sends nothing for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(600);
/// At most this many TCP connections at once; more are closed at accept.
const MAX_TCP_CONNECTIONS: usize = 4096;
/// When a connection ends, how long it may still write what is queued.
const FLUSH: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
}

impl SipTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
        }
    }
}

/// The write side of an accepted TCP connection.
#[derive(Clone, Debug)]
pub struct TcpConn {
    tx: mpsc::Sender<Vec<u8>>,
}

/// Where a message came from, and so where answers go.
#[derive(Clone, Debug)]
pub enum Peer {
    Udp(SocketAddr),
    Tcp { addr: SocketAddr, conn: TcpConn },
}

impl Peer {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Peer::Udp(addr) | Peer::Tcp { addr, .. } => *addr,
        }
    }

    pub fn transport(&self) -> SipTransport {
        match self {
            Peer::Udp(_) => SipTransport::Udp,
            Peer::Tcp { .. } => SipTransport::Tcp,
        }
    }
}

pub struct Inbound {
    pub message: Message,
    pub peer: Peer,
}

/// The sockets, shared by the receive loops and everyone who sends.
pub struct Transport {
    udp: Arc<UdpSocket>,
    local: SocketAddr,
    counters: Arc<SipCounters>,
}

/// Binds UDP and TCP on the same port (a free one for both when the port is 0).
pub async fn bind(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(listen).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(listen.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Port 0: the TCP twin of the free UDP port may be taken; try another.
            Err(e) if listen.port() == 0 => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port")))
}

impl Transport {
    pub fn new(udp: Arc<UdpSocket>, counters: Arc<SipCounters>) -> std::io::Result<Transport> {
        Ok(Transport {
            local: udp.local_addr()?,
            udp,
            counters,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends a message's bytes to a peer; failures are counted and returned.
    pub async fn send(&self, peer: &Peer, bytes: Vec<u8>) -> Result<(), String> {
        let result = match peer {
            Peer::Udp(addr) => self
                .udp
                .send_to(&bytes, addr)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Peer::Tcp { conn, .. } => conn.tx.try_send(bytes).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => "TCP write queue full".to_owned(),
                mpsc::error::TrySendError::Closed(_) => "TCP connection closed".to_owned(),
            }),
        };
        if result.is_err() {
            SipCounters::add(&self.counters.send_errors);
        }
        result
    }
}

/// Counts a message that did not parse and logs it, at most once per kind per interval.
fn reject(counters: &SipCounters, logs: &LogGate, source: SocketAddr, error: &ParseError) {
    let (counter, kind) = match error.kind() {
        ErrorKind::Malformed => (&counters.malformed, "malformed"),
        ErrorKind::Oversized => (&counters.oversized, "oversized"),
        ErrorKind::Truncated => (&counters.truncated, "truncated"),
    };
    SipCounters::add(counter);
    if let Some(suppressed) = logs.allow(kind) {
        warn!(%source, %error, suppressed, "dropped a SIP message that does not parse");
    }
}

fn enqueue(queue: &mpsc::Sender<Inbound>, counters: &SipCounters, inbound: Inbound) {
    if queue.try_send(inbound).is_err() {
        SipCounters::add(&counters.dropped);
    }
}

pub async fn udp_loop(
    socket: Arc<UdpSocket>,
    queue: mpsc::Sender<Inbound>,
    counters: Arc<SipCounters>,
    logs: Arc<LogGate>,
    max_bytes: usize,
    shutdown: CancellationToken,
) {
    // One byte more than the limit, so an oversized datagram is seen as such.
    let mut buf = vec![0u8; max_bytes.min(65_535) + 1];
    loop {
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, source) = match received {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable from an earlier send shows up here on
                // some systems: not fatal for the socket.
                debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        let datagram = &buf[..len];
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            continue; // keepalive CRLFs or padding
        }
        match parse::parse_datagram(datagram, max_bytes) {
            Ok(message) => enqueue(
                &queue,
                &counters,
                Inbound {
                    message,
                    peer: Peer::Udp(source),
                },
            ),
            Err(error) => reject(&counters, &logs, source, &error),
        }
    }
}

pub struct TcpContext {
    pub queue: mpsc::Sender<Inbound>,
    pub counters: Arc<SipCounters>,
    pub logs: Arc<LogGate>,
    pub max_bytes: usize,
    pub shutdown: CancellationToken,
}

pub async fn tcp_accept_loop(listener: TcpListener, context: Arc<TcpContext>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = context.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    SipCounters::add(&context.counters.tcp_refused);
                    if let Some(suppressed) = context.logs.allow("tcp_refused") {
                        warn!(source = %addr, suppressed, "too many SIP TCP connections: closed a new one");
                    }
                    continue;
                };
                SipCounters::add(&context.counters.tcp_connections);
                let context = context.clone();
                tokio::spawn(async move {
                    tcp_connection(stream, addr, context).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little, go on.
                warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Opens a TCP connection of ours (to a superior platform): what it sends
/// goes to the dispatcher like any peer's, and the returned peer writes to it.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    context: Arc<TcpContext>,
) -> std::io::Result<Peer> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(connected) => connected?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TCP connect timed out",
            ))
        }
    };
    SipCounters::add(&context.counters.tcp_connections);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(TCP_WRITE_QUEUE);
    let peer = Peer::Tcp {
        addr,
        conn: TcpConn { tx },
    };
    tokio::spawn(serve_tcp(stream, peer.clone(), rx, context));
    Ok(peer)
}

async fn tcp_connection(stream: TcpStream, addr: SocketAddr, context: Arc<TcpContext>) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(TCP_WRITE_QUEUE);
    let peer = Peer::Tcp {
        addr,
        conn: TcpConn { tx },
    };
    serve_tcp(stream, peer, rx, context).await;
}

/// Reads messages from a TCP connection into the dispatcher's queue and
/// writes what `peer` is given, until either side ends.
async fn serve_tcp(
    stream: TcpStream,
    peer: Peer,
    mut rx: mpsc::Receiver<Vec<u8>>,
    context: Arc<TcpContext>,
) {
    let addr = peer.addr();
    let (mut reader, mut writer) = stream.into_split();
    let mut writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    'read: loop {
        let read = tokio::select! {
            biased;
            _ = context.shutdown.cancelled() => break,
            r = tokio::time::timeout(TCP_IDLE, reader.read(&mut chunk)) => r,
        };
        let n = match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match parse::frame(&buf, context.max_bytes) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::Blank(n)) => {
                    buf.drain(..n);
                }
                Ok(Frame::Message(n)) => {
                    match parse::parse_datagram(&buf[..n], context.max_bytes) {
                        Ok(message) => enqueue(
                            &context.queue,
                            &context.counters,
                            Inbound {
                                message,
                                peer: peer.clone(),
                            },
                        ),
                        Err(error) => reject(&context.counters, &context.logs, addr, &error),
                    }
                    buf.drain(..n);
                }
                Err(error) => {
                    // A stream cannot be resynchronised after a bad frame.
                    reject(&context.counters, &context.logs, addr, &error);
                    break 'read;
                }
            }
        }
    }
    drop(peer);
    // Let answers still on their way out go (the answer to the last good
    // request before a bad frame, BYEs at shutdown), then close.
    let _ = tokio::time::timeout(FLUSH, &mut writer_task).await;
    writer_task.abort();
}
