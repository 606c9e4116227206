//! MediaReceiver over real sockets: the `gb28181-ps-send` tool (a separate
//! process) or in-process senders stream the test footage as PS over RTP;
//! the receiver must give back the clip's access units, key frames and
//! counts, over UDP and over TCP with RFC 4571 framing, through reordering,
//! loss, SSRC mismatches, garbage datagrams, and cancelled waits.

use crate::common::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use xueliang_core::VideoCodec;
use xueliang_gb28181::media::tcp_framing;
use xueliang_gb28181::media::testing::MuxOptions;
use xueliang_gb28181::media::{Counter, MediaError, MediaReceiver, MediaTransport, PortPool};
use xueliang_ingest::AccessUnit;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn pool() -> PortPool {
    // A range of its own per test binary run, so parallel tests (and other
    // processes) rarely collide; bind skips ports in use anyway. Below
    // Linux's ephemeral ports (32768-60999), which any connection or
    // "free port" elsewhere may take at any moment.
    let base = 12_000 + (std::process::id() % 500) as u16 * 40;
    PortPool::new(base..=base + 39).expect("even ports in the range")
}

/// Units until `n` arrived, the stream ended, or `idle` passed without one.
async fn collect(
    receiver: &mut MediaReceiver,
    n: usize,
    idle: Duration,
) -> (Vec<AccessUnit>, bool) {
    let mut units = Vec::new();
    while units.len() < n {
        match tokio::time::timeout(idle, receiver.next_unit()).await {
            Ok(Ok(Some(unit))) => units.push(unit),
            Ok(Ok(None)) => return (units, true),
            Ok(Err(e)) => panic!("receiver failed: {e}"),
            Err(_) => break,
        }
    }
    (units, false)
}

fn assert_units_match(footage: &Footage, units: &[AccessUnit], codec: VideoCodec) {
    for (i, unit) in units.iter().enumerate() {
        assert_eq!(unit.codec, codec, "unit {i}");
        assert!(unit.data == footage.clip.units[i], "unit {i} differs");
        assert_eq!(unit.is_key, footage.keys[i], "unit {i} key flag");
        assert_eq!(unit.lost_packets, 0, "unit {i}");
    }
}

fn ps_send(to: SocketAddr, transport: &str, ssrc: u32, seconds: f64) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gb28181-ps-send"))
        .arg("--input")
        .arg(fixture(VideoCodec::H264))
        .args(["--to", &to.to_string(), "--transport", transport])
        .args([
            "--ssrc",
            &ssrc.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .args(["--rate", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("starting gb28181-ps-send")
}

#[tokio::test]
async fn udp_from_the_ps_send_tool() {
    let footage = footage(VideoCodec::H264);
    let pool = pool();
    let mut receiver = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::Udp)
        .await
        .unwrap();
    assert_eq!(receiver.local_port() % 2, 0);
    receiver.expect_ssrc(Some(1234));
    let mut sender = ps_send(
        SocketAddr::new(LOCALHOST, receiver.local_port()),
        "udp",
        1234,
        4.0,
    );
    // 40 frames sent; over UDP the last stays open until a next one starts.
    let (units, ended) = collect(&mut receiver, 39, Duration::from_secs(10)).await;
    assert!(sender.wait().await.unwrap().success());
    assert!(!ended);
    assert_eq!(units.len(), 39);
    assert_units_match(footage, &units, VideoCodec::H264);
    assert!(units[0].is_key && units[20].is_key);
    let c = receiver.counters();
    assert_eq!(c.get(Counter::Lost), 0);
    assert_eq!(c.get(Counter::SsrcMismatch), 0);
    assert_eq!(c.get(Counter::Units), 39);
    assert!(c.get(Counter::Packets) > 39 && c.get(Counter::Bytes) > 300_000);
    assert_eq!(receiver.peer().map(|p| p.ip()), Some(LOCALHOST));
}

#[tokio::test]
async fn tcp_passive_from_the_ps_send_tool_with_a_mismatching_ssrc() {
    let footage = footage(VideoCodec::H264);
    let pool = pool();
    let mut receiver = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::TcpPassive)
        .await
        .unwrap();
    receiver.expect_ssrc(Some(1234));
    let mut sender = ps_send(
        SocketAddr::new(LOCALHOST, receiver.local_port()),
        "tcp",
        999,
        4.0,
    );
    let (units, ended) = collect(&mut receiver, 100, Duration::from_secs(10)).await;
    assert!(sender.wait().await.unwrap().success());
    assert!(ended, "the device closing the connection ends the stream");
    assert_eq!(units.len(), 40, "every frame, the last one at the close");
    assert_units_match(footage, &units, VideoCodec::H264);
    let c = receiver.counters();
    assert_eq!(c.get(Counter::SsrcMismatch), c.get(Counter::Packets));
    assert!(c.get(Counter::Packets) > 40);
    assert!(receiver.next_unit().await.unwrap().is_none());
}

/// RTP packets of the footage, optionally without a PSM.
fn packets(codec: VideoCodec, psm: bool) -> Vec<Vec<u8>> {
    let footage = footage(codec);
    let frames = mux(
        footage,
        MuxOptions {
            psm,
            ..MuxOptions::hikvision(codec)
        },
    );
    packetize(&frames, 65_400).0
}

#[tokio::test]
async fn h265_without_psm_over_tcp_with_cancelled_waits() {
    let codec = VideoCodec::H265;
    let footage = footage(codec);
    let pool = pool();
    let mut receiver = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::TcpPassive)
        .await
        .unwrap();
    let port = receiver.local_port();
    let sender = tokio::spawn(async move {
        let mut stream = TcpStream::connect((LOCALHOST, port)).await.unwrap();
        for (i, packet) in packets(codec, false).iter().enumerate() {
            stream
                .write_all(&tcp_framing::frame(packet).unwrap())
                .await
                .unwrap();
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    // Waits cut short all the time: nothing may be lost by a cancel.
    let mut units = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_micros(300), receiver.next_unit()).await {
            Ok(Ok(Some(unit))) => units.push(unit),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => continue,
        }
    }
    sender.await.unwrap();
    assert_eq!(units.len(), footage.clip.units.len());
    assert_units_match(footage, &units, codec);
}

#[tokio::test]
async fn udp_reordered_lost_and_garbage_packets() {
    let codec = VideoCodec::H264;
    let footage = footage(codec);
    let pool = pool();
    let mut receiver = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::Udp)
        .await
        .unwrap();
    let to = SocketAddr::new(LOCALHOST, receiver.local_port());
    let mut packets = packets(codec, true);
    // Swap neighbours through the first GOP; lose one packet in the second
    // GOP; garbage datagrams in between.
    for i in (1..200).step_by(7) {
        packets.swap(i, i + 1);
    }
    let second_gop = packets.len() / 2;
    packets.remove(second_gop);
    let sender = tokio::spawn(async move {
        let socket = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        for (i, packet) in packets.iter().enumerate() {
            socket.send_to(packet, to).await.unwrap();
            if i % 40 == 0 {
                socket.send_to(b"not rtp at all", to).await.unwrap();
                socket
                    .send_to(&[0x80, 200, 0, 1, 0, 0, 0, 0], to)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let (units, _) = collect(&mut receiver, 100, Duration::from_secs(2)).await;
    sender.await.unwrap();
    let c = receiver.counters();
    assert!(
        c.get(Counter::Reordered) >= 20,
        "{}",
        c.get(Counter::Reordered)
    );
    assert_eq!(c.get(Counter::Lost), 1);
    assert!(c.get(Counter::BadRtp) > 5);
    // Units before the loss come whole; after it, from the next key frame,
    // carrying the loss.
    let resumed = units
        .iter()
        .position(|u| u.lost_packets > 0)
        .expect("a unit reports the loss");
    assert!(units[resumed].is_key);
    assert_eq!(units[resumed].lost_packets, 1);
    assert_units_match(footage, &units[..resumed], codec);
    let k = footage
        .clip
        .units
        .iter()
        .position(|u| *u == units[resumed].data)
        .unwrap();
    for (i, unit) in units[resumed..].iter().enumerate() {
        assert!(unit.data == footage.clip.units[k + i]);
    }
    assert!(units.len() < footage.clip.units.len());
}

#[tokio::test]
async fn ports_come_from_the_pool_and_go_back() {
    // Below the ephemeral ports and pool()'s: a port given back must not be
    // taken by another test's connection before it is asked for again.
    let base = 10_000 + (std::process::id() % 250) as u16 * 8;
    let pool = PortPool::new(base..=base + 3).unwrap();
    // Someone else holds the first port: it is skipped.
    let squatter = std::net::UdpSocket::bind((LOCALHOST, base)).unwrap();
    let a = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::Udp)
        .await
        .unwrap();
    assert_eq!(a.local_port(), base + 2);
    let err = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::Udp)
        .await
        .err();
    assert!(
        matches!(err, Some(MediaError::NoFreePort { .. })),
        "{err:?}"
    );
    drop(squatter);
    drop(a);
    assert_eq!(pool.available(), 2);
    let b = MediaReceiver::bind(&pool, LOCALHOST, MediaTransport::TcpPassive)
        .await
        .unwrap();
    assert_eq!(b.local_port(), base);
}
