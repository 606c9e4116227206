//! The light RTSP peer (`xueliang-rtsp-peer`) against real clients: ffmpeg's
//! RTSP client and decoder (the frames must decode without an error, at the
//! clip's pace, and on past the end of a looping clip), and a plain RTSP
//! client here that checks the RTP itself (real-time pacing, sequence
//! numbers and time stamps running on across loops, an SSRC per client,
//! sender reports) and what garbage gets. Every child process and socket
//! read has a time limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PEER: &str = env!("CARGO_BIN_EXE_xueliang-rtsp-peer");

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/make-fixtures.sh",
        p.display()
    );
    p
}

/// The 25 fps D1 H.264 clip, 2 s GOP.
fn d1() -> PathBuf {
    fixture("vtest-d1-25fps.mp4")
}

/// A running peer, killed on drop.
struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    fn start(clip: &Path, extra: &[&str]) -> Peer {
        let mut child = Command::new(PEER)
            .arg("--clip")
            .arg(clip)
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting xueliang-rtsp-peer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the peer did not print READY within 60 s");
            }
        };
        let mut peer = Peer { child, port: 0 };
        peer.port = line
            .trim()
            .strip_prefix("READY port=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the peer said {line:?}, not READY port=<port>"));
        peer
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.port)
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end, killing it (and failing) after `limit`; returns
/// its output and how long it took.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?} (scripts/setup.sh installs ffmpeg): {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => (output.unwrap(), started.elapsed()),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{cmd:?} ran over {limit:?}");
        }
    }
}

/// ffmpeg reading `url` over TCP and decoding `seconds` of it: (frames
/// decoded, ffmpeg's error output, wall time). Fails unless ffmpeg ends well.
fn ffmpeg_decode(url: &str, seconds: u32) -> (usize, String, Duration) {
    let (out, took) = run_with_timeout(
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                url,
            ])
            .args(["-t", &seconds.to_string(), "-map", "0:v:0"])
            .args(["-f", "framecrc", "-"]),
        Duration::from_secs(seconds as u64 + 30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}: {stderr}",
        out.status
    );
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    (frames, stderr, took)
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug)]
struct Packet {
    channel: u8,
    marker: bool,
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    /// The first payload byte (the NAL unit or FU indicator's header).
    first_byte: u8,
    second_byte: u8,
}

impl Packet {
    /// The H.264 NAL unit type of a single NAL unit packet or of a FU-A's unit.
    fn h264_nal_type(&self) -> u8 {
        match self.first_byte & 0x1f {
            28 => self.second_byte & 0x1f,
            t => t,
        }
    }
}

/// A plain RTSP client over std's blocking sockets.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
}

/// What SETUP and PLAY said.
struct Playing {
    ssrc: u32,
    seq: u16,
    rtptime: u32,
}

impl Client {
    fn connect(port: u16) -> Client {
        Client::connect_with(port, None)
    }

    /// With `receive_buffer` bytes for the socket's receive buffer (set
    /// before connecting, so the window stays that small).
    fn connect_with(port: u16, receive_buffer: Option<usize>) -> Client {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes).unwrap();
        }
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        socket.connect(&addr.into()).unwrap();
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
            cseq: 0,
        }
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                0
            }
            Err(e) => panic!("reading from the peer: {e}"),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next response (no interleaved data may come before it).
    fn response(&mut self) -> Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut lines = head.lines();
                let status_line = lines.next().unwrap_or("");
                let status = status_line
                    .strip_prefix("RTSP/1.0 ")
                    .and_then(|s| s.get(..3))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("not an RTSP response: {head:?}"));
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                while self.buf.len() < end + 4 + len {
                    assert!(Instant::now() < deadline, "no whole body within 10 s");
                    self.fill();
                }
                let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                self.buf.drain(..end + 4 + len);
                return Response {
                    status,
                    headers,
                    body,
                };
            }
            assert!(Instant::now() < deadline, "no response within 10 s");
            if self.fill() == 0 && self.buf.is_empty() {
                // A read timeout or the peer closed: try until the deadline.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn request(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> Response {
        self.cseq += 1;
        let mut text = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (n, v) in headers {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str("\r\n");
        self.send_raw(text.as_bytes());
        let r = self.response();
        assert_eq!(
            r.header("CSeq"),
            Some(self.cseq.to_string().as_str()),
            "{method}: CSeq"
        );
        r
    }

    /// OPTIONS, DESCRIBE, SETUP (TCP) and PLAY, as retina and ffmpeg do.
    fn play(port: u16, path: &str) -> (Client, Playing) {
        Client::play_with(port, path, None)
    }

    fn play_with(port: u16, path: &str, receive_buffer: Option<usize>) -> (Client, Playing) {
        let mut c = Client::connect_with(port, receive_buffer);
        let url = format!("rtsp://127.0.0.1:{port}/{path}");
        assert_eq!(c.request("OPTIONS", &url, &[]).status, 200);
        let d = c.request("DESCRIBE", &url, &[("Accept", "application/sdp")]);
        assert_eq!(d.status, 200);
        assert!(d.body.contains("m=video 0 RTP/AVP 96"), "{}", d.body);
        let base = d.header("Content-Base").unwrap().to_owned();
        let control = d
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("a=control:"))
            .next_back()
            .unwrap()
            .to_owned();
        let setup_url = format!("{base}{control}");
        let s = c.request(
            "SETUP",
            &setup_url,
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        );
        assert_eq!(s.status, 200);
        let transport = s.header("Transport").unwrap();
        let ssrc = transport
            .split(';')
            .find_map(|p| p.strip_prefix("ssrc="))
            .map(|v| u32::from_str_radix(v, 16).unwrap())
            .unwrap();
        let session = s
            .header("Session")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let p = c.request(
            "PLAY",
            &base,
            &[("Session", &session), ("Range", "npt=0.000-")],
        );
        assert_eq!(p.status, 200);
        let info = p.header("RTP-Info").unwrap();
        let field = |name: &str| {
            info.split(';')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .unwrap()
                .to_owned()
        };
        let playing = Playing {
            ssrc,
            seq: field("seq").parse().unwrap(),
            rtptime: field("rtptime").parse().unwrap(),
        };
        (c, playing)
    }

    /// The next response, skipping the interleaved packets before it.
    fn response_between_packets(&mut self) -> Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while self.buf.len() >= 4 && self.buf[0] == b'$' {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
            }
            if self.buf.first().is_some_and(|&b| b != b'$') {
                return self.response();
            }
            assert!(Instant::now() < deadline, "no response within 10 s");
            self.fill();
        }
    }

    /// The interleaved packets that arrive within `d`.
    fn packets_for(&mut self, d: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + d;
        let mut packets = Vec::new();
        loop {
            while self.buf.len() >= 4 {
                assert_eq!(self.buf[0], b'$', "interleaved data expected");
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                let p = &self.buf[4..4 + len];
                assert!(len >= 8 && p[0] >> 6 == 2, "an RTP/RTCP version 2 packet");
                let word = |at: usize| u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
                packets.push(if self.buf[1].is_multiple_of(2) {
                    assert!(len > 12);
                    Packet {
                        channel: self.buf[1],
                        marker: p[1] & 0x80 != 0,
                        payload_type: p[1] & 0x7f,
                        seq: u16::from_be_bytes([p[2], p[3]]),
                        timestamp: word(4),
                        ssrc: word(8),
                        first_byte: p[12],
                        second_byte: p[13],
                    }
                } else {
                    // RTCP: the packet type and the sender's SSRC.
                    Packet {
                        channel: self.buf[1],
                        marker: false,
                        payload_type: p[1],
                        seq: 0,
                        timestamp: 0,
                        ssrc: word(4),
                        first_byte: 0,
                        second_byte: 0,
                    }
                });
                self.buf.drain(..4 + len);
            }
            let now = Instant::now();
            if now >= deadline {
                return packets;
            }
            self.stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
                .unwrap();
            self.fill();
        }
    }
}

/// RTP packets of channel 0; the frames are those with the marker bit.
fn rtp(packets: &[Packet]) -> Vec<Packet> {
    packets.iter().copied().filter(|p| p.channel == 0).collect()
}

fn frames(packets: &[Packet]) -> Vec<Packet> {
    packets.iter().copied().filter(|p| p.marker).collect()
}

/// Sequence numbers without a gap, one SSRC, the payload type.
fn assert_continuous_seq(packets: &[Packet], ssrc: u32) {
    for w in packets.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "a gap in sequence numbers"
        );
    }
    assert!(packets
        .iter()
        .all(|p| p.ssrc == ssrc && p.payload_type == 96));
}

/// [`assert_continuous_seq`], and frame time stamps `step` apart: the RTP
/// of one client's stream.
fn assert_continuous(packets: &[Packet], ssrc: u32, step: u32) {
    assert_continuous_seq(packets, ssrc);
    let f = frames(packets);
    for w in f.windows(2) {
        assert_eq!(
            w[1].timestamp.wrapping_sub(w[0].timestamp),
            step,
            "frame time stamps must run on by one frame"
        );
    }
}

#[test]
fn ffmpeg_decodes_the_d1_clip_without_errors_at_its_pace() {
    let peer = Peer::start(&d1(), &[]);
    let (frames, errors, took) = ffmpeg_decode(&peer.url("cam001"), 4);
    assert_eq!(errors, "", "ffmpeg reported errors");
    assert!(
        (95..=105).contains(&frames),
        "{frames} frames in 4 s of video"
    );
    // Sent in real time, not as fast as the connection goes: 4 s of video
    // take at least about 4 s.
    assert!(
        took >= Duration::from_millis(3700) && took < Duration::from_secs(20),
        "4 s of video took {took:?}"
    );
}

#[test]
fn rtp_arrives_in_real_time_from_a_key_frame_with_sender_reports() {
    let peer = Peer::start(&d1(), &[]);
    let (mut c, playing) = Client::play(peer.port, "cam001");
    let packets = c.packets_for(Duration::from_secs(4));
    let video = rtp(&packets);
    let frames = frames(&video).len();
    assert!(
        (85..=115).contains(&frames),
        "{frames} frames in 4 s at 25 fps (100 +- 15)"
    );
    assert_eq!(
        video[0].seq, playing.seq,
        "the first packet has RTP-Info's seq"
    );
    assert_eq!(video[0].timestamp, playing.rtptime, "and its rtptime");
    // The first frame is a key frame with its parameter sets.
    let end = video.iter().position(|p| p.marker).unwrap();
    let types: Vec<u8> = video[..=end].iter().map(Packet::h264_nal_type).collect();
    for t in [7, 8, 5] {
        assert!(
            types.contains(&t),
            "NAL unit types of the first frame: {types:?}"
        );
    }
    assert_continuous(&video, playing.ssrc, 3600);
    let reports: Vec<&Packet> = packets.iter().filter(|p| p.channel == 1).collect();
    assert!(
        reports
            .iter()
            .any(|p| p.payload_type == 200 && p.ssrc == playing.ssrc),
        "an RTCP sender report on channel 1"
    );
    // Keepalives are answered while playing (after the frame being written).
    c.send_raw(b"GET_PARAMETER * RTSP/1.0\r\nCSeq: 9\r\n\r\n");
    let r = c.response_between_packets();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("CSeq"), Some("9"));
}

#[test]
fn two_clients_at_once_each_get_their_own_stream() {
    let peer = Peer::start(&d1(), &[]);
    let port = peer.port;
    let clients: Vec<_> = ["cam001", "cam002"]
        .into_iter()
        .map(|path| {
            std::thread::spawn(move || {
                let (mut c, playing) = Client::play(port, path);
                let video = rtp(&c.packets_for(Duration::from_secs(3)));
                assert_continuous(&video, playing.ssrc, 3600);
                (frames(&video).len(), playing.ssrc)
            })
        })
        .collect();
    let results: Vec<(usize, u32)> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    for (frames, _) in &results {
        assert!(
            (63..=87).contains(frames),
            "{frames} frames in 3 s at 25 fps"
        );
    }
    assert_ne!(results[0].1, results[1].1, "an SSRC per client");
}

#[test]
fn a_client_that_stops_reading_resumes_at_a_key_frame() {
    // 64 kB asked, 128 kB granted, + 256 kB of the peer's backlog: about
    // 3 s of this clip.
    let peer = Peer::start(&d1(), &["--send-buffer", "65536"]);
    // A small receive window, so that the kernel's buffers do not take
    // all of what is not read.
    let (mut c, playing) = Client::play_with(peer.port, "cam001", Some(16 * 1024));
    // Not reading: the socket buffers fill, then the peer's backlog; from
    // then on it drops frames instead of buffering them.
    // (Not a whole number of 2 s GOPs: the frame due when it reads again
    // is not a key frame.)
    std::thread::sleep(Duration::from_millis(10_900));
    let video = rtp(&c.packets_for(Duration::from_secs(4)));
    // Dropped frames are never sent: no gap in sequence numbers.
    assert_continuous_seq(&video, playing.ssrc);
    let frames = frames(&video);
    assert!(
        frames.len() < 15 * 25 - 25,
        "{} frames of 15 s at 25 fps: nothing was dropped",
        frames.len()
    );
    // Where frames were dropped the time stamps jump, and the frame after
    // the jump is a key frame.
    let mut jumps = 0;
    let mut frame_start = 0;
    let mut last_ts: Option<u32> = None;
    for (i, p) in video.iter().enumerate() {
        if !p.marker {
            continue;
        }
        if let Some(prev) = last_ts {
            if p.timestamp.wrapping_sub(prev) > 3600 {
                jumps += 1;
                let types: Vec<u8> = video[frame_start..=i]
                    .iter()
                    .map(Packet::h264_nal_type)
                    .collect();
                assert!(
                    types.contains(&5),
                    "after a drop, a frame of NAL units {types:?}, not a key frame"
                );
            }
        }
        last_ts = Some(p.timestamp);
        frame_start = i + 1;
    }
    assert!(jumps >= 1, "no frames were dropped");
}

#[test]
fn garbage_gets_an_error_and_the_peer_keeps_serving() {
    let mut peer = Peer::start(&d1(), &["--mount", "cam001", "--mount", "cam002"]);
    let port = peer.port;
    let mut c = Client::connect(port);
    c.send_raw(b"GARBAGE\r\n\r\n");
    assert_eq!(c.response().status, 400);
    c.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    assert_eq!(c.response().status, 400);
    let base = format!("rtsp://127.0.0.1:{port}");
    // No path, an unknown one, something not RTSP.
    assert_eq!(c.request("DESCRIBE", &base, &[]).status, 404);
    assert_eq!(
        c.request("DESCRIBE", &format!("{base}/cam003"), &[]).status,
        404
    );
    assert_eq!(
        c.request("DESCRIBE", "http://example/cam001", &[]).status,
        400
    );
    assert_eq!(
        c.request("FROBNICATE", &format!("{base}/cam001"), &[])
            .status,
        501
    );
    // PLAY before SETUP; SETUP over UDP.
    assert_eq!(
        c.request("PLAY", &format!("{base}/cam001"), &[]).status,
        455
    );
    let udp = c.request(
        "SETUP",
        &format!("{base}/cam001/trackID=0"),
        &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
    );
    assert_eq!(udp.status, 461);
    // The same connection still works.
    let d = c.request("DESCRIBE", &format!("{base}/cam002"), &[]);
    assert_eq!(d.status, 200);
    assert!(d.body.contains("sprop-parameter-sets="));
    // An endless header is cut off.
    let mut junk = Client::connect(port);
    junk.send_raw(&vec![b'A'; 20_000]);
    assert_eq!(junk.response().status, 400);
    drop((c, junk));

    assert!(peer.still_running());
    let (mut c, _) = Client::play(port, "cam002");
    let frames = frames(&rtp(&c.packets_for(Duration::from_secs(1)))).len();
    assert!(frames >= 20, "{frames} frames in 1 s after the garbage");
}

#[test]
fn a_short_clip_loops_with_time_stamps_running_on() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("2s.mp4");
    let (out, _) = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(d1())
            .args(["-t", "2", "-c", "copy", "-y"])
            .arg(&short),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer = Peer::start(&short, &[]);
    let port = peer.port;
    // Our client and ffmpeg at the same time, each over more than two loops.
    let ours = std::thread::spawn(move || {
        let (mut c, playing) = Client::play(port, "loop");
        let video = rtp(&c.packets_for(Duration::from_millis(5500)));
        assert_continuous(&video, playing.ssrc, 3600);
        frames(&video).len()
    });
    let (decoded, errors, took) = ffmpeg_decode(&peer.url("loop"), 5);
    assert_eq!(errors, "", "ffmpeg reported errors");
    assert!(
        (120..=130).contains(&decoded),
        "{decoded} frames decoded from 5 s of a looping 2 s clip"
    );
    assert!(
        took >= Duration::from_millis(4700),
        "5 s of video took {took:?}"
    );
    let ours = ours.join().unwrap();
    assert!((122..=152).contains(&ours), "{ours} frames in 5.5 s");
}

#[test]
fn h265_clip_decodes_without_errors() {
    let peer = Peer::start(&fixture("vtest-h265.mp4"), &[]);
    let (mut c, playing) = Client::play(peer.port, "h265");
    let video = rtp(&c.packets_for(Duration::from_secs(2)));
    // 10 fps: 9000 ticks a frame; a VPS (type 32) first.
    assert_continuous(&video, playing.ssrc, 9000);
    assert_eq!((video[0].first_byte >> 1) & 0x3f, 32);
    drop(c);
    let (frames, errors, _) = ffmpeg_decode(&peer.url("h265"), 3);
    assert_eq!(errors, "", "ffmpeg reported errors");
    assert!(
        (28..=32).contains(&frames),
        "{frames} frames in 3 s at 10 fps"
    );
}

#[test]
fn sigterm_stops_it_with_status_zero() {
    let mut peer = Peer::start(&d1(), &[]);
    let (mut c, _) = Client::play(peer.port, "cam001");
    assert!(!c.packets_for(Duration::from_millis(300)).is_empty());
    let pid = peer.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = peer.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn a_clip_without_h264_or_h265_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mjpeg = dir.path().join("mjpeg.avi");
    let (out, _) = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
            .args([
                "testsrc=size=64x64:rate=5",
                "-t",
                "1",
                "-c:v",
                "mjpeg",
                "-y",
            ])
            .arg(&mjpeg),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = run_with_timeout(
        Command::new(PEER)
            .arg("--clip")
            .arg(&mjpeg)
            .args(["--port", "0"]),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no READY line");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("only H.264 and H.265"), "{stderr}");
}

#[test]
fn stagger_spreads_the_clients_first_frames_over_the_window() {
    // Eight clients at once, each first frame delayed by a random time
    // below 2 s: in their first 3 s they get 25-75 frames, and not all the
    // same count (without the stagger every one gets ~75).
    let peer = Peer::start(&d1(), &["--stagger", "2"]);
    let port = peer.port;
    let clients: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let (mut c, _) = Client::play(port, &format!("cam{i:03}"));
                frames(&rtp(&c.packets_for(Duration::from_secs(3)))).len()
            })
        })
        .collect();
    let counts: Vec<usize> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(
        *min >= 18,
        "a client waited more than the 2 s window: {counts:?}"
    );
    assert!(max - min >= 10, "first frames not spread: {counts:?}");
}
