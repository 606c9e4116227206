//! Live video upward with sipp as the superior platform: it INVITEs a
//! shared channel, the test receives the RTP (UDP, TCP where we connect,
//! TCP where it connects), strips it and pipes the PS to
//! `ffmpeg -f mpeg -i - -f null -`, which must decode frames; its BYE ends
//! the stream. Refusals: unknown channel (404), camera not running or
//! running without video (480), over the limit (486), INVITE from a peer
//! that is not the superior (403).
//! The camera is the footage fixture played at its frame rate through the
//! same [`LiveUnits`] seam the pipeline implements.

use crate::common::{self, superior, until, Server, SERVER_ID, SUPERIOR, SUPERIOR_PASSWORD};
use anyhow::{bail, Context, Result};
use futures::stream::BoxStream;
use futures::StreamExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use xueliang_core::config::gb28181::{Gb28181Upstream, UpstreamCharset, UpstreamTransport};
use xueliang_core::gb28181::{CascadeCamera, CascadeCameras, GbUpstream, UpstreamState};
use xueliang_core::{LiveUnit, LiveUnits, LiveUnitsError, Secret, VideoCodec};
use xueliang_gb28181::media::rtp::RtpPacket;
use xueliang_gb28181::media::tcp_framing::Rfc4571Deframer;
use xueliang_gb28181::media::testing::Clip;
use xueliang_gb28181::sip::UpstreamSettings;

/// The channel id the superior asks for: the `gb28181://` camera keeps it.
pub(crate) const CHANNEL: &str = "34020000001310000001";
/// The camera of [`CHANNEL`] and one that does not run here.
pub(crate) const RUNNING: &str = "east-gate";
pub(crate) const STOPPED: &str = "river";
/// A camera whose worker runs without video (OFF in the catalog): its
/// units would never come.
const DARK: &str = "school";
const DARK_CHANNEL: &str = "34020000001310000003";

struct Cameras;

impl CascadeCameras for Cameras {
    fn cameras(&self) -> Vec<CascadeCamera> {
        let camera = |id: &str, channel: &str| CascadeCamera {
            id: id.into(),
            name: id.into(),
            village: Some("东村".into()),
            grid: None,
            online: id != DARK,
            trouble: None,
            gb_channel: Some(channel.into()),
        };
        vec![
            camera(RUNNING, CHANNEL),
            camera(STOPPED, "34020000001310000002"),
            camera(DARK, DARK_CHANNEL),
        ]
    }
}

pub(crate) fn clip(codec: VideoCodec) -> &'static Clip {
    static H264: OnceLock<Clip> = OnceLock::new();
    static H265: OnceLock<Clip> = OnceLock::new();
    let (cell, name) = match codec {
        VideoCodec::H264 => (&H264, "vtest-h264.mp4"),
        VideoCodec::H265 => (&H265, "vtest-h265.mp4"),
    };
    cell.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name);
        Clip::from_file(&path, Some(8.0)).expect("the footage fixture (scripts/setup.sh makes it)")
    })
}

/// The footage as a running camera: its units at the clip's frame rate
/// from the first (a key frame), looping; `RUNNING` only. With a count,
/// the camera stops after that many units.
struct Footage(VideoCodec, Option<usize>);

impl LiveUnits for Footage {
    fn subscribe(&self, camera_id: &str) -> Result<BoxStream<'static, LiveUnit>, LiveUnitsError> {
        if camera_id == DARK {
            return Ok(futures::stream::pending().boxed());
        }
        if camera_id != RUNNING {
            return Err(LiveUnitsError::NotRunning(camera_id.into()));
        }
        let clip = clip(self.0);
        let stops_after = self.1.unwrap_or(usize::MAX);
        let period = Duration::from_secs_f64(1.0 / clip.fps);
        let stream = futures::stream::unfold(0usize, move |i| async move {
            tokio::time::sleep(period).await;
            let n = i % clip.units.len();
            let unit = LiveUnit {
                codec: clip.codec,
                is_key: clip.is_key(n),
                pts: (i as f64 * 90_000.0 / clip.fps).round() as i64,
                data: bytes::Bytes::copy_from_slice(&clip.units[n]),
            };
            Some((unit, i + 1))
        });
        Ok(stream.take(stops_after).boxed())
    }
}

fn upstream(port: u16, max_streams: u32) -> UpstreamSettings {
    let mut s = UpstreamSettings::new(Gb28181Upstream {
        id: SUPERIOR.into(),
        domain: common::SUPERIOR_REALM.into(),
        address: "127.0.0.1".into(),
        port,
        transport: UpstreamTransport::Udp,
        password: Secret::new(SUPERIOR_PASSWORD),
        local_id: SERVER_ID.into(),
        register_expires_s: 3600,
        keepalive_s: 5,
        keepalive_misses: 3,
        charset: UpstreamCharset::Gb2312,
        group_name: "雪亮工程".into(),
        villages: vec![],
        cameras: vec![],
        max_upstream_streams: max_streams,
    });
    s.backoff_min = Duration::from_millis(200);
    s
}

pub(crate) fn link(server: &Server) -> GbUpstream {
    server.sip.upstreams().pop().expect("one upstream")
}

/// A server registered to a sipp superior, sharing the footage.
pub(crate) async fn registered(
    codec: VideoCodec,
    max_streams: u32,
) -> Result<(Server, common::DeviceRun)> {
    registered_with(Footage(codec, None), max_streams).await
}

async fn registered_with(
    footage: Footage,
    max_streams: u32,
) -> Result<(Server, common::DeviceRun)> {
    let server = Server::start(common::settings()).await?;
    let port = common::free_udp_port()?;
    let sup = superior(port, SUPERIOR_PASSWORD, 3600, false)?;
    server.sip.share_live_video(Arc::new(footage));
    let _task = server
        .sip
        .start_upstream(upstream(port, max_streams), Arc::new(Cameras));
    sup.explain(
        until(Duration::from_secs(10), "registered", || {
            link(&server).state == UpstreamState::Registered
        })
        .await,
    )?;
    Ok((server, sup))
}

/// What the test's media end received.
#[derive(Default)]
pub(crate) struct Received {
    /// Arrival, SSRC, timestamp, marker of each packet.
    pub(crate) packets: Vec<(Instant, u32, u32, bool)>,
    pub(crate) ps: Vec<u8>,
    pub(crate) bytes: u64,
}

impl Received {
    fn take(&mut self, packet: &[u8]) {
        if let Ok(p) = RtpPacket::parse(packet) {
            self.packets
                .push((Instant::now(), p.ssrc, p.timestamp, p.marker));
            self.ps.extend_from_slice(p.payload);
            self.bytes += packet.len() as u64;
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Received>>;

pub(crate) fn received(r: &Shared) -> std::sync::MutexGuard<'_, Received> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) async fn receive_udp(socket: UdpSocket, into: Shared) {
    let mut buf = vec![0; 65536];
    while let Ok(n) = socket.recv(&mut buf).await {
        received(&into).take(&buf[..n]);
    }
}

pub(crate) async fn receive_tcp(mut stream: TcpStream, into: Shared) {
    let mut deframer = Rfc4571Deframer::new(65535);
    let mut buf = vec![0; 65536];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
        deframer.extend(&buf[..n]);
        while let Some(Ok(frame)) = deframer.next_frame() {
            received(&into).take(&frame);
        }
    }
}

/// Frames ffmpeg decodes from `ps` read as MPEG-PS.
pub(crate) async fn decoded_frames(ps: &[u8]) -> Result<u64> {
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-loglevel", "error"])
        .args([
            "-f",
            "mpeg",
            "-i",
            "-",
            "-f",
            "null",
            "-",
            "-progress",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting ffmpeg")?;
    let mut stdin = child.stdin.take().context("ffmpeg stdin")?;
    let data = ps.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&data).await;
    });
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("ffmpeg still decoding after 60 s")??;
    writer.await?;
    let progress = String::from_utf8_lossy(&out.stdout);
    let frames = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or(0);
    if !out.status.success() {
        bail!(
            "ffmpeg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(frames)
}

/// The INVITE of superior_invite.xml (or its refused variant).
struct Invite<'a> {
    scenario: &'a str,
    from: &'a str,
    channel: &'a str,
    media_port: u16,
    tcp_setup: Option<&'a str>,
    ssrc: &'a str,
    hold_ms: u32,
}

impl Invite<'_> {
    fn udp(media_port: u16) -> Invite<'static> {
        Invite {
            scenario: "superior_invite.xml",
            from: SUPERIOR,
            channel: CHANNEL,
            media_port,
            tcp_setup: None,
            ssrc: "0100000007",
            hold_ms: 4000,
        }
    }

    fn spawn(&self, server: std::net::SocketAddr) -> Result<common::DeviceRun> {
        let proto = if self.tcp_setup.is_some() {
            "TCP/RTP/AVP"
        } else {
            "RTP/AVP"
        };
        let keys = [
            ("superior", self.from.to_owned()),
            ("realm", common::SUPERIOR_REALM.to_owned()),
            ("channel", self.channel.to_owned()),
            ("rtp_port", self.media_port.to_string()),
            ("proto", proto.to_owned()),
            ("setup", self.tcp_setup.unwrap_or("passive").to_owned()),
            ("ssrc", self.ssrc.to_owned()),
        ];
        let hold = [("hold_ms", self.hold_ms.to_string())];
        let keys: Vec<_> = if self.scenario == "superior_invite.xml" {
            keys.into_iter().chain(hold).collect()
        } else {
            keys.to_vec()
        };
        common::superior_call(server, self.scenario, &keys)
    }
}

/// The checks every accepted stream gets: our SSRC, timestamps that step
/// at the frame rate, PS that ffmpeg decodes, nothing after the BYE.
async fn check_stream(
    server: &Server,
    call: common::DeviceRun,
    media: &Shared,
    ssrc: u32,
    invited: Instant,
    codec: VideoCodec,
) -> Result<()> {
    let fps = clip(codec).fps;
    call.finish(Duration::from_secs(30)).await?;
    let bye_done = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = received(media).packets.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = std::mem::take(&mut *received(media));
    assert_eq!(r.packets.len(), settled, "packets after the BYE");
    assert!(
        r.packets
            .iter()
            .all(|p| p.0 <= bye_done + Duration::from_millis(300)),
        "a packet long after the BYE"
    );
    assert!(r.packets.iter().all(|p| p.1 == ssrc), "SSRC not {ssrc}");
    let stamps: Vec<u32> = r.packets.iter().filter(|p| p.3).map(|p| p.2).collect();
    let step = (90_000.0 / fps).round() as u32;
    let steps = stamps
        .windows(2)
        .filter(|w| w[1].wrapping_sub(w[0]) == step)
        .count();
    assert!(
        steps + 1 >= stamps.len() && stamps.len() >= 25,
        "timestamps do not step by {step}: {stamps:?}"
    );
    let frames = decoded_frames(&r.ps).await?;
    assert!(frames >= 25, "ffmpeg decoded {frames} frames");
    let first = r.packets.first().map(|p| p.0).context("no RTP")?;
    let last = r.packets.last().map(|p| p.0).context("no RTP")?;
    let seconds = (last - first).as_secs_f64().max(0.001);
    let payload: usize = r.ps.len();
    let units = &clip(codec).units;
    let camera_kbps = units.iter().map(Vec::len).sum::<usize>() as f64 * 8.0
        / (units.len() as f64 / fps)
        / 1000.0;
    eprintln!(
        "upward figures ({codec:?}): INVITE (sipp start) -> first RTP {} ms; {} packets, {} frames decoded; \
         {:.0} kb/s on the wire, {:.0} kb/s of PS, the camera's {camera_kbps:.0} kb/s; {:.1} s",
        (first - invited).as_millis(),
        r.packets.len(),
        frames,
        r.bytes as f64 * 8.0 / seconds / 1000.0,
        payload as f64 * 8.0 / seconds / 1000.0,
        seconds
    );
    let view = link(server);
    assert_eq!(view.streams, 0, "the stream ended with the BYE");
    assert!(view.stream_bytes > 0);
    Ok(())
}

#[tokio::test]
async fn h264_over_udp_decodes_and_bye_ends_it() -> Result<()> {
    let (server, _sup) = registered(VideoCodec::H264, 16).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    let media: Shared = Arc::default();
    tokio::spawn(receive_udp(socket, media.clone()));
    let invited = Instant::now();
    let call = Invite::udp(port).spawn(server.addr())?;
    until(Duration::from_secs(10), "streaming", || {
        link(&server).streams == 1
    })
    .await
    .ok();
    check_stream(
        &server,
        call,
        &media,
        100_000_007,
        invited,
        VideoCodec::H264,
    )
    .await
}

#[tokio::test]
async fn h265_over_tcp_where_we_connect() -> Result<()> {
    let (server, _sup) = registered(VideoCodec::H265, 16).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let media: Shared = Arc::default();
    let into = media.clone();
    tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            receive_tcp(stream, into).await;
        }
    });
    let invited = Instant::now();
    let call = Invite {
        tcp_setup: Some("passive"),
        ..Invite::udp(port)
    }
    .spawn(server.addr())?;
    check_stream(
        &server,
        call,
        &media,
        100_000_007,
        invited,
        VideoCodec::H265,
    )
    .await
}

#[tokio::test]
async fn h264_over_tcp_where_the_superior_connects_with_our_own_ssrc() -> Result<()> {
    let (server, _sup) = registered(VideoCodec::H264, 16).await?;
    let media: Shared = Arc::default();
    let invited = Instant::now();
    let call = Invite {
        tcp_setup: Some("active"),
        // No SSRC of its own: y=0 is not one; ours comes in the answer.
        ssrc: "0",
        ..Invite::udp(9)
    }
    .spawn(server.addr())?;
    // Our answer names the port we listen on.
    let mut answer = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while answer.is_none() && Instant::now() < deadline {
        let log = String::from_utf8_lossy(&call.message_log()).into_owned();
        answer = log.split("SIP/2.0 200 OK").nth(1).and_then(|ok| {
            let port = ok
                .split("m=video ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u16>()
                .ok()?;
            let ssrc = ok
                .split("y=")
                .nth(1)?
                .lines()
                .next()?
                .trim()
                .parse::<u32>()
                .ok()?;
            Some((port, ssrc))
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (port, ssrc) = call.explain(answer.context("no 200 with an SDP answer"))?;
    assert_ne!(ssrc, 0);
    assert!(call.saw("a=setup:passive"), "we listen: setup passive");
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    tokio::spawn(receive_tcp(stream, media.clone()));
    check_stream(&server, call, &media, ssrc, invited, VideoCodec::H264).await
}

#[tokio::test]
async fn refusals_name_the_reason() -> Result<()> {
    let (server, _sup) = registered(VideoCodec::H264, 1).await?;
    let refused = |from: &'static str, channel: &'static str| Invite {
        scenario: "superior_invite_refused.xml",
        from,
        channel,
        ..Invite::udp(9)
    };
    for (from, channel, answer) in [
        (SUPERIOR, "34020000001310000099", "SIP/2.0 404 Not Found"),
        (
            SUPERIOR,
            "34020000001310000002",
            "SIP/2.0 480 Temporarily Unavailable",
        ),
        // Running without video: 480 at once, not a 200 without media.
        (
            SUPERIOR,
            DARK_CHANNEL,
            "SIP/2.0 480 Temporarily Unavailable",
        ),
        ("11010000002000000002", CHANNEL, "SIP/2.0 403 Forbidden"),
    ] {
        let call = refused(from, channel).spawn(server.addr())?;
        let log = call.explain_finish(Duration::from_secs(20)).await?;
        assert!(log.contains(answer), "{answer} expected:\n{log}");
    }
    // One stream is the limit: a second INVITE while it runs gets 486.
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let first = Invite {
        hold_ms: 3000,
        ..Invite::udp(socket.local_addr()?.port())
    }
    .spawn(server.addr())?;
    until(Duration::from_secs(10), "one stream", || {
        link(&server).streams == 1
    })
    .await?;
    let busy = refused(SUPERIOR, CHANNEL).spawn(server.addr())?;
    let log = busy.explain_finish(Duration::from_secs(20)).await?;
    assert!(log.contains("SIP/2.0 486 Busy Here"), "{log}");
    first.finish(Duration::from_secs(20)).await?;
    let view = link(&server);
    assert_eq!(
        view.streams_refused, 4,
        "404, 480 twice and 486 (the 403 came from another peer)"
    );
    assert_eq!(view.streams, 0);
    Ok(())
}

#[tokio::test]
async fn a_camera_that_stops_ends_the_call_with_our_bye() -> Result<()> {
    // The camera delivers 2 s of video, then stops.
    let (server, _sup) = registered_with(Footage(VideoCodec::H264, Some(20)), 16).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let media: Shared = Arc::default();
    let port = socket.local_addr()?.port();
    tokio::spawn(receive_udp(socket, media.clone()));
    let call = Invite {
        scenario: "superior_invite_bye_from_us.xml",
        ..Invite::udp(port)
    }
    .spawn(server.addr())?;
    // sipp succeeds only once it got our BYE and answered it.
    let log = call.explain_finish(Duration::from_secs(20)).await?;
    assert!(
        log.contains("BYE sip:11010000002000000001@127.0.0.1"),
        "{log}"
    );
    let r = std::mem::take(&mut *received(&media));
    assert_eq!(
        r.packets.iter().filter(|p| p.3).count(),
        20,
        "one marked packet per unit the camera gave"
    );
    until(Duration::from_secs(5), "stream gone", || {
        link(&server).streams == 0
    })
    .await?;
    Ok(())
}
