//! Bad input gets an answer where SIP has one, a counter always, and never
//! stops the server: odd requests from sipp, then garbage, truncated and
//! oversized datagrams and TCP streams; a device registers fine afterwards.

use crate::common::{event, Device, Server, DEVICE};
use anyhow::{Context, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use xueliang_gb28181::sip::DeviceEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_get_their_sip_answers() -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let peer = Device {
        scenario: "odd_requests.xml",
        ..Device::new(crate::common::free_udp_port()?)
    };
    // sipp checks each answer: 501, 403, 400, 404, 200.
    peer.spawn(server.addr())?
        .finish(Duration::from_secs(20))
        .await?;
    assert_eq!(
        server.counter("unknown_method"),
        1,
        "FROBNICATE; the INVITE is known"
    );
    assert_eq!(server.counter("bad_xml"), 1);
    assert_eq!(server.counter("not_registered"), 1);
    Ok(())
}

fn register(via: bool, content_length: &str, body: &str) -> Vec<u8> {
    let via = if via {
        "Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKbad\r\n"
    } else {
        ""
    };
    format!(
        "REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n{via}\
         From: <sip:{DEVICE}@3402000000>;tag=1\r\nTo: <sip:{DEVICE}@3402000000>\r\n\
         Call-ID: bad-1\r\nCSeq: 1 REGISTER\r\nContent-Length: {content_length}\r\n\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_oversized_datagrams_are_counted_and_dropped() -> Result<()> {
    let mut settings = crate::common::settings();
    settings.max_message_bytes = 2048;
    let server = Server::start(settings).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(server.addr()).await?;
    let datagrams: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xff; 300],
        b"SIP/2.0 999 Weird\r\n\r\n".to_vec(),
        register(true, "500", "short body"), // truncated
        vec![b'A'; 4000],                    // oversized
        register(false, "0", ""),            // no Via: cannot even be answered
        b"\r\n\r\n".to_vec(),                // a keepalive, not an error
    ];
    for d in &datagrams {
        socket.send(d).await?;
    }
    crate::common::until(Duration::from_secs(3), "bad datagrams counted", || {
        server.counter("malformed") == 4
            && server.counter("truncated") == 1
            && server.counter("oversized") == 1
            && server.counter("missing_headers") == 1
    })
    .await?;
    // None of them got an answer; the server still answers a good request.
    socket.send(&register(true, "0", "")).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
        .await
        .context("no answer to a good REGISTER")??;
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with("SIP/2.0 401 Unauthorized\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Call-ID: bad-1\r\n"), "{answer}");
    assert!(answer.contains(";received=127.0.0.1"), "{answer}");

    // And a real device registers.
    let mut events = server.sip.subscribe();
    let run = Device::new(crate::common::free_udp_port()?).spawn(server.addr())?;
    run.explain(
        event(&mut events, Duration::from_secs(10), |e| {
            matches!(e, DeviceEvent::Registered { .. })
        })
        .await,
    )?;
    run.finish(Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_stream_is_read_up_to_its_first_bad_frame() -> Result<()> {
    let mut settings = crate::common::settings();
    settings.max_message_bytes = 2048;
    let server = Server::start(settings).await?;

    // A good REGISTER split over two writes, then garbage: the REGISTER is
    // answered, the garbage closes the connection.
    let mut stream = TcpStream::connect(server.addr()).await?;
    let good = register(true, "0", "");
    stream.write_all(&good[..20]).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&good[20..]).await?;
    stream.write_all(b"this is not SIP\r\n\r\n").await?;
    let mut seen = Vec::new();
    let read_all =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut seen)).await;
    read_all.context("the server did not close the connection")??;
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("SIP/2.0 401 Unauthorized\r\n"), "{seen}");
    assert_eq!(server.counter("malformed"), 1);

    // A Content-Length over the limit closes the connection too.
    let mut big = TcpStream::connect(server.addr()).await?;
    big.write_all(&register(true, "100000", "")).await?;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), big.read_to_end(&mut rest))
        .await
        .context("oversized stream not closed")??;
    assert!(rest.is_empty());
    assert_eq!(server.counter("oversized"), 1);
    assert_eq!(server.counter("tcp_connections"), 2);
    Ok(())
}
