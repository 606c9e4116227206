//! A camera's own video to a superior platform (cascade): its access units
//! as they come from ingest, muxed into MPEG-PS ([`PsMuxer`], as a
//! Hikvision camera muxes) and cut into RTP packets ([`RtpPacketizer`]),
//! over UDP, or over TCP with RFC 4571 framing, either connecting to the
//! superior (TCP active) or taking its connection (TCP passive). Nothing
//! is decoded or encoded.
//!
//! RTP timestamps are the units' PTS at 90 kHz from a random start; the
//! PS PTS count from one second. The sender ends when told to (BYE), when
//! the camera's units end (it stopped), or when the link fails.

use super::mux::{MuxOptions, PsMuxer};
use super::packetize::RtpPacketizer;
use super::tcp_framing;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use xueliang_core::LiveUnit;

/// How the superior wants the media (its offer's `m=` protocol and
/// `a=setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpwardTransport {
    /// RTP/AVP: datagrams to the offer's address.
    Udp,
    /// TCP/RTP/AVP, the superior `a=setup:passive`: it listens, we connect.
    TcpActive,
    /// TCP/RTP/AVP, the superior `a=setup:active`: we listen, it connects.
    TcpPassive,
}

impl UpwardTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            UpwardTransport::Udp => "udp",
            UpwardTransport::TcpActive => "tcp_active",
            UpwardTransport::TcpPassive => "tcp_passive",
        }
    }
}

/// The socket of one upward stream, bound before the SDP answer is sent
/// (the answer names its port).
pub enum UpwardSocket {
    Udp(UdpSocket),
    /// Nothing to bind: we connect once the superior confirmed (ACK).
    TcpActive,
    TcpPassive(TcpListener),
}

/// The discard port, which an `a=setup:active` answer names (RFC 4145).
const DISCARD_PORT: u16 = 9;

impl UpwardSocket {
    /// Binds on `ip` and `port` (0: any free port).
    pub async fn bind(
        ip: IpAddr,
        port: u16,
        transport: UpwardTransport,
    ) -> io::Result<UpwardSocket> {
        let at = SocketAddr::new(ip, port);
        Ok(match transport {
            UpwardTransport::Udp => UpwardSocket::Udp(UdpSocket::bind(at).await?),
            UpwardTransport::TcpActive => UpwardSocket::TcpActive,
            UpwardTransport::TcpPassive => UpwardSocket::TcpPassive(TcpListener::bind(at).await?),
        })
    }

    /// Whether the stream binds a port of ours (TCP active connects out).
    pub fn binds(transport: UpwardTransport) -> bool {
        transport != UpwardTransport::TcpActive
    }

    /// The port our SDP answer names.
    pub fn port(&self) -> u16 {
        let bound = match self {
            UpwardSocket::Udp(s) => s.local_addr(),
            UpwardSocket::TcpPassive(l) => l.local_addr(),
            UpwardSocket::TcpActive => return DISCARD_PORT,
        };
        bound.map(|a| a.port()).unwrap_or(DISCARD_PORT)
    }

    /// The link to `remote` (the offer's address): at once for UDP; the
    /// connection made (active) or taken (passive) within `wait`.
    pub async fn open(self, remote: SocketAddr, wait: Duration) -> io::Result<UpwardLink> {
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "no TCP connection in time");
        match self {
            UpwardSocket::Udp(socket) => Ok(UpwardLink::Udp { socket, remote }),
            UpwardSocket::TcpActive => {
                let stream = tokio::time::timeout(wait, TcpStream::connect(remote))
                    .await
                    .map_err(|_| timed_out())??;
                Ok(UpwardLink::tcp(stream))
            }
            UpwardSocket::TcpPassive(listener) => {
                let (stream, from) = tokio::time::timeout(wait, listener.accept())
                    .await
                    .map_err(|_| timed_out())??;
                debug!(%from, "superior connected for media");
                Ok(UpwardLink::tcp(stream))
            }
        }
    }
}

/// Where the packets go.
pub enum UpwardLink {
    Udp {
        socket: UdpSocket,
        remote: SocketAddr,
    },
    Tcp(TcpStream),
}

impl UpwardLink {
    fn tcp(stream: TcpStream) -> UpwardLink {
        let _ = stream.set_nodelay(true);
        UpwardLink::Tcp(stream)
    }

    /// Sends one RTP packet. A refused datagram (nobody listening yet, an
    /// ICMP port unreachable) is not an error: UDP media is best effort.
    async fn send(&mut self, packet: &[u8]) -> io::Result<usize> {
        match self {
            UpwardLink::Udp { socket, remote } => match socket.send_to(packet, *remote).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(0),
                other => other,
            },
            UpwardLink::Tcp(stream) => {
                let framed = tcp_framing::frame(packet).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "RTP packet over 65535 bytes")
                })?;
                stream.write_all(&framed).await?;
                Ok(framed.len())
            }
        }
    }
}

/// Why an upward stream ended.
#[derive(Debug)]
pub enum UpwardEnd {
    /// Told to stop (BYE, shutdown).
    Stopped,
    /// The camera's units ended: it stopped.
    SourceEnded,
    /// Sending failed (the superior closed the TCP connection).
    Failed(io::Error),
}

/// Sends `units` as PS over RTP with `ssrc` until `stop`, the units' end or
/// a failure; adds the bytes sent to `bytes`.
pub async fn send_units(
    mut link: UpwardLink,
    mut units: BoxStream<'static, LiveUnit>,
    ssrc: u32,
    bytes: Arc<AtomicU64>,
    stop: CancellationToken,
) -> UpwardEnd {
    let started = Instant::now();
    let mut packetizer = RtpPacketizer::new(ssrc, rand::random());
    let base: u32 = rand::random();
    let mut first_pts = None;
    loop {
        let unit = tokio::select! {
            biased;
            _ = stop.cancelled() => return UpwardEnd::Stopped,
            unit = units.next() => unit,
        };
        let Some(unit) = unit else {
            return UpwardEnd::SourceEnded;
        };
        let took = Instant::now();
        let first = *first_pts.get_or_insert(unit.pts);
        let ticks = unit.pts.wrapping_sub(first);
        // The PS clock starts at one second (the muxer's SCR runs 40 ms ahead).
        let ps_pts = (ticks.wrapping_add(90_000) as u64) & ((1 << 33) - 1);
        let ps =
            PsMuxer::new(MuxOptions::hikvision(unit.codec)).mux(&unit.data, ps_pts, unit.is_key);
        for packet in packetizer.packetize(&ps, base.wrapping_add(ticks as u32)) {
            let sent = tokio::select! {
                biased;
                _ = stop.cancelled() => return UpwardEnd::Stopped,
                sent = link.send(&packet) => sent,
            };
            match sent {
                Ok(n) => {
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return UpwardEnd::Failed(e),
            }
        }
        if ticks == 0 {
            info!(
                ssrc,
                first_unit_after_ms = (took - started).as_millis() as u64,
                key_frame_to_sent_us = took.elapsed().as_micros() as u64,
                "upward stream: first key frame sent"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;
    use crate::media::tcp_framing::Rfc4571Deframer;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use xueliang_core::VideoCodec;

    fn unit(n: i64, is_key: bool) -> LiveUnit {
        let nal = if is_key { 0x65 } else { 0x41 };
        LiveUnit {
            codec: VideoCodec::H264,
            is_key,
            pts: 1_000 + n * 3600,
            data: Bytes::from([vec![0, 0, 0, 1, nal], vec![7; 3000]].concat()),
        }
    }

    fn units(n: i64) -> BoxStream<'static, LiveUnit> {
        futures::stream::iter((0..n).map(|i| unit(i, i == 0))).boxed()
    }

    #[tokio::test]
    async fn udp_packets_carry_the_ssrc_and_timestamps_that_step_with_the_pts() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let socket = UpwardSocket::bind("127.0.0.1".parse().unwrap(), 0, UpwardTransport::Udp)
            .await
            .unwrap();
        assert_ne!(socket.port(), DISCARD_PORT);
        let link = socket
            .open(receiver.local_addr().unwrap(), Duration::from_secs(1))
            .await
            .unwrap();
        let bytes = Arc::new(AtomicU64::new(0));
        let end = send_units(
            link,
            units(3),
            0x0100_0001,
            bytes.clone(),
            CancellationToken::new(),
        )
        .await;
        assert!(matches!(end, UpwardEnd::SourceEnded));
        let mut stamps = Vec::new();
        let mut got = 0u64;
        let mut buf = vec![0; 2048];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), receiver.recv(&mut buf)).await
        {
            got += n as u64;
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.ssrc, 0x0100_0001);
            assert_eq!(p.payload_type, 96);
            if p.marker {
                stamps.push(p.timestamp);
            }
        }
        assert_eq!(stamps.len(), 3, "one marked packet per frame");
        assert_eq!(stamps[1].wrapping_sub(stamps[0]), 3600);
        assert_eq!(stamps[2].wrapping_sub(stamps[1]), 3600);
        assert_eq!(bytes.load(Ordering::Relaxed), got);
    }

    #[tokio::test]
    async fn tcp_passive_takes_the_connection_and_frames_each_packet() {
        let socket =
            UpwardSocket::bind("127.0.0.1".parse().unwrap(), 0, UpwardTransport::TcpPassive)
                .await
                .unwrap();
        let port = socket.port();
        let superior = tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut all = Vec::new();
            stream.read_to_end(&mut all).await.unwrap();
            all
        });
        let link = socket
            .open("127.0.0.1:1".parse().unwrap(), Duration::from_secs(2))
            .await
            .unwrap();
        let bytes = Arc::new(AtomicU64::new(0));
        let end = send_units(link, units(2), 7, bytes.clone(), CancellationToken::new()).await;
        assert!(matches!(end, UpwardEnd::SourceEnded));
        let all = superior.await.unwrap();
        assert_eq!(all.len() as u64, bytes.load(Ordering::Relaxed));
        let mut deframer = Rfc4571Deframer::new(65535);
        deframer.extend(&all);
        let mut packets = 0;
        while let Some(frame) = deframer.next_frame() {
            assert_eq!(RtpPacket::parse(&frame.unwrap()).unwrap().ssrc, 7);
            packets += 1;
        }
        assert!(packets >= 6, "{packets}");
    }

    #[tokio::test]
    async fn a_stop_ends_the_stream_and_nobody_connecting_times_out() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let socket = UpwardSocket::bind("127.0.0.1".parse().unwrap(), 0, UpwardTransport::Udp)
            .await
            .unwrap();
        let link = socket
            .open(receiver.local_addr().unwrap(), Duration::from_secs(1))
            .await
            .unwrap();
        let stop = CancellationToken::new();
        stop.cancel();
        let never = futures::stream::pending().boxed();
        let end = send_units(link, never, 1, Arc::default(), stop).await;
        assert!(matches!(end, UpwardEnd::Stopped));
        let passive =
            UpwardSocket::bind("127.0.0.1".parse().unwrap(), 0, UpwardTransport::TcpPassive)
                .await
                .unwrap();
        let err = passive
            .open("127.0.0.1:1".parse().unwrap(), Duration::from_millis(50))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
