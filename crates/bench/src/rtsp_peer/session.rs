//! One client connection: RTSP requests answered in order, then, after
//! PLAY, the clip's frames at their times on the same connection
//! (interleaved), looping, until the client leaves or sends TEARDOWN.
//!
//! One task per connection, one `write` per frame: a frame's packets are
//! copied into the connection's output buffer and written with one call.
//! A client that does not read fast enough is never buffered for without
//! bound: once the kernel's send buffer (`Config::send_buffer`) is full
//! and more than [`MAX_BACKLOG`] bytes wait in ours, frames are dropped,
//! and after a drop every frame up to the next key frame is too (the
//! decoder could not use them).

use super::clip::{Clip, CLOCK_RATE};
use super::rtsp::{self, Input, Request};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bytes that may wait in our buffer for a client (on top of the kernel's
/// socket buffer) before frames are dropped.
pub const MAX_BACKLOG: usize = 256 * 1024;
/// Bytes of responses that may wait for a client that sends requests but
/// does not read: more closes the connection.
const MAX_PENDING: usize = MAX_BACKLOG + 1024 * 1024;
/// The session timeout announced in SETUP (the peer itself keeps a
/// playing session as long as the TCP connection lasts).
const SESSION_TIMEOUT_S: u32 = 60;

/// What every connection shares.
#[derive(Debug)]
pub struct Config {
    /// The paths served; empty: every non-empty path.
    pub mounts: Vec<String>,
    /// Start over at the end of the clip (otherwise: RTCP BYE, and the
    /// connection is closed).
    pub looping: bool,
    /// How often to send an RTCP sender report; None: never.
    pub sender_reports: Option<Duration>,
    /// A connection that has not started playing is closed after this long
    /// without a request.
    pub idle_timeout: Duration,
    /// SO_SNDBUF of each connection; None: the kernel's (growing) default.
    pub send_buffer: Option<usize>,
    /// Each client's first frame waits a random time below this, so that
    /// the clients' key frames do not all arrive at once (real cameras'
    /// GOPs are not aligned); zero: every client starts at once.
    pub stagger: Duration,
    /// Log every connection, not only trouble.
    pub verbose: bool,
}

impl Config {
    fn serves(&self, path: &str) -> bool {
        !path.is_empty() && (self.mounts.is_empty() || self.mounts.iter().any(|m| m == path))
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    ClientClosed,
    Teardown,
    Idle,
    ClipOver,
    /// Too many responses waiting for a client that does not read.
    NotReading,
    Io(std::io::Error),
}

/// A session set up by SETUP.
struct Setup {
    id: String,
    channel: u8,
    /// The URL SETUP named, for RTP-Info.
    url: String,
    ssrc: u32,
    seq: u16,
    /// The RTP time stamp of the first frame.
    timestamp: u32,
}

/// Where a playing session is in the clip.
struct Playing {
    start: Instant,
    index: usize,
    loops: u64,
    /// A frame was dropped: drop up to the next key frame.
    need_key: bool,
    next_report: Instant,
    packets: u32,
    octets: u32,
    frames_sent: u64,
    frames_dropped: u64,
}

struct Connection {
    stream: TcpStream,
    clip: Arc<Clip>,
    config: Arc<Config>,
    input: Vec<u8>,
    /// Bytes for the client; `out[written..]` not written yet.
    out: Vec<u8>,
    written: usize,
    setup: Option<Setup>,
    playing: Option<Playing>,
    closing: Option<End>,
}

/// Serves one client until it leaves; never panics on what it sends.
pub async fn serve(stream: TcpStream, peer: SocketAddr, clip: Arc<Clip>, config: Arc<Config>) {
    let _ = stream.set_nodelay(true);
    if let Some(bytes) = config.send_buffer {
        if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(bytes) {
            eprintln!("[rtsp-peer] {peer}: setting the send buffer: {e}");
        }
    }
    let verbose = config.verbose;
    let mut c = Connection {
        stream,
        clip,
        config,
        input: Vec::with_capacity(2048),
        out: Vec::new(),
        written: 0,
        setup: None,
        playing: None,
        closing: None,
    };
    if verbose {
        eprintln!("[rtsp-peer] {peer}: connected");
    }
    let end = c.run().await;
    let (sent, dropped) = c
        .playing
        .as_ref()
        .map_or((0, 0), |p| (p.frames_sent, p.frames_dropped));
    // A client that just goes away resets the connection: that is no trouble.
    let end = match end {
        End::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            End::ClientClosed
        }
        end => end,
    };
    let why = match &end {
        End::ClientClosed => "the client closed the connection".to_owned(),
        End::Teardown => "TEARDOWN".to_owned(),
        End::Idle => "no request for too long".to_owned(),
        End::ClipOver => "the clip is over".to_owned(),
        End::NotReading => "the client does not read its responses".to_owned(),
        End::Io(e) => format!("connection error: {e}"),
    };
    if verbose || dropped > 0 || matches!(end, End::Io(_) | End::NotReading) {
        eprintln!(
            "[rtsp-peer] {peer}: {why}; {sent} frames sent, {dropped} dropped (client too slow)"
        );
    }
}

impl Connection {
    async fn run(&mut self) -> End {
        let mut idle_until = Instant::now() + self.config.idle_timeout;
        let mut buf = [0u8; 4096];
        loop {
            self.handle_requests();
            if let Err(e) = self.flush() {
                return End::Io(e);
            }
            if self.pending() == 0 {
                if let Some(end) = self.closing.take() {
                    return end;
                }
            } else if self.pending() > MAX_PENDING {
                return End::NotReading;
            }
            let due = match (&self.playing, &self.closing) {
                (Some(p), None) => Some(self.due(p)),
                _ => None,
            };
            tokio::select! {
                biased;
                ready = self.stream.readable() => {
                    if let Err(e) = ready {
                        return End::Io(e);
                    }
                    match self.stream.try_read(&mut buf) {
                        Ok(0) => return End::ClientClosed,
                        Ok(n) => {
                            self.input.extend_from_slice(&buf[..n]);
                            idle_until = Instant::now() + self.config.idle_timeout;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return End::Io(e),
                    }
                }
                ready = self.stream.writable(), if self.pending() > 0 => {
                    if let Err(e) = ready {
                        return End::Io(e);
                    }
                }
                () = sleep_until(due), if due.is_some() => self.next_frame(),
                () = tokio::time::sleep_until(idle_until),
                    if self.playing.is_none() || self.closing.is_some() => {
                    return self.closing.take().unwrap_or(End::Idle);
                }
            }
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes what it can without waiting.
    fn flush(&mut self) -> std::io::Result<()> {
        while self.written < self.out.len() {
            match self.stream.try_write(&self.out[self.written..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Makes room at the end of `out` (drops what was written).
    fn compact(&mut self) {
        if self.written > 0 {
            self.out.drain(..self.written);
            self.written = 0;
        }
    }

    fn handle_requests(&mut self) {
        let mut at = 0;
        while self.closing.is_none() {
            match rtsp::parse(&self.input[at..]) {
                Input::Incomplete => break,
                Input::Skip(n) => at += n,
                Input::Bad(n) => {
                    at += n;
                    self.compact();
                    rtsp::respond(&mut self.out, 400, None, &[], "");
                }
                Input::Request(request, n) => {
                    at += n;
                    self.compact();
                    self.handle(&request);
                }
            }
        }
        self.input.drain(..at.min(self.input.len()));
    }

    fn handle(&mut self, r: &Request) {
        let mut out = Vec::new();
        self.answer(r, &mut out);
        self.out.extend_from_slice(&out);
    }

    /// Writes the response to `r` into `out`.
    fn answer(&mut self, r: &Request, out: &mut Vec<u8>) {
        let cseq = r.header("CSeq");
        if r.version != "RTSP/1.0" {
            return rtsp::respond(out, 505, cseq, &[], "");
        }
        let Some(path) = rtsp::uri_path(&r.uri) else {
            return rtsp::respond(out, 400, cseq, &[], "");
        };
        let session = self.setup.as_ref().map(|s| s.id.as_str());
        // The session a request names, when it names one, must be ours.
        let named = r
            .header("Session")
            .map(|s| s.split(';').next().unwrap_or("").trim());
        let session_ok = named.is_none_or(|n| Some(n) == session);
        match r.method.as_str() {
            "OPTIONS" => rtsp::respond(
                out,
                200,
                cseq,
                &[(
                    "Public",
                    "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER",
                )],
                "",
            ),
            "DESCRIBE" if !self.config.serves(path) => rtsp::respond(out, 404, cseq, &[], ""),
            "DESCRIBE" => {
                let base = format!("{}/", r.uri.trim_end_matches('/'));
                let sdp = self.sdp();
                rtsp::respond(
                    out,
                    200,
                    cseq,
                    &[("Content-Type", "application/sdp"), ("Content-Base", &base)],
                    &sdp,
                );
            }
            "SETUP" => {
                let mount = path
                    .strip_suffix("trackID=0")
                    .unwrap_or(path)
                    .trim_end_matches('/');
                if !self.config.serves(mount) {
                    return rtsp::respond(out, 404, cseq, &[], "");
                }
                if self.playing.is_some() {
                    return rtsp::respond(out, 455, cseq, &[], "");
                }
                if !session_ok {
                    return rtsp::respond(out, 454, cseq, &[], "");
                }
                let Some(channel) = r.header("Transport").and_then(rtsp::tcp_channel) else {
                    // UDP (or no transport): only TCP is served.
                    return rtsp::respond(out, 461, cseq, &[], "");
                };
                let setup = Setup {
                    id: self.setup.as_ref().map_or_else(
                        || format!("{:016X}", rand::random::<u64>()),
                        |s| s.id.clone(),
                    ),
                    channel,
                    url: r.uri.clone(),
                    ssrc: rand::random(),
                    seq: rand::random(),
                    timestamp: rand::random(),
                };
                let transport = format!(
                    "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={:08X};mode=\"PLAY\"",
                    channel,
                    channel + 1,
                    setup.ssrc
                );
                let session = format!("{};timeout={SESSION_TIMEOUT_S}", setup.id);
                rtsp::respond(
                    out,
                    200,
                    cseq,
                    &[("Transport", &transport), ("Session", &session)],
                    "",
                );
                self.setup = Some(setup);
            }
            "PLAY" => {
                let Some(s) = &self.setup else {
                    return rtsp::respond(out, 455, cseq, &[], "");
                };
                if named.is_none() || !session_ok {
                    return rtsp::respond(out, 454, cseq, &[], "");
                }
                let first = &self.clip.frames[0];
                let info = format!(
                    "url={};seq={};rtptime={}",
                    s.url,
                    s.seq,
                    s.timestamp.wrapping_add(first.pts as u32)
                );
                rtsp::respond(
                    out,
                    200,
                    cseq,
                    &[
                        ("Session", &s.id),
                        ("Range", "npt=0.000-"),
                        ("RTP-Info", &info),
                    ],
                    "",
                );
                if self.playing.is_none() {
                    let now = Instant::now();
                    let delay = self.config.stagger.mul_f64(rand::random::<f64>());
                    self.playing = Some(Playing {
                        start: now + delay,
                        index: 0,
                        loops: 0,
                        need_key: false,
                        next_report: now,
                        packets: 0,
                        octets: 0,
                        frames_sent: 0,
                        frames_dropped: 0,
                    });
                }
            }
            "GET_PARAMETER" | "SET_PARAMETER" if !session_ok => {
                rtsp::respond(out, 454, cseq, &[], "")
            }
            "GET_PARAMETER" | "SET_PARAMETER" => match session {
                Some(id) => rtsp::respond(out, 200, cseq, &[("Session", id)], ""),
                None => rtsp::respond(out, 200, cseq, &[], ""),
            },
            "TEARDOWN" if !session_ok => rtsp::respond(out, 454, cseq, &[], ""),
            "TEARDOWN" => {
                rtsp::respond(out, 200, cseq, &[], "");
                self.closing = Some(End::Teardown);
            }
            _ => rtsp::respond(out, 501, cseq, &[], ""),
        }
    }

    fn sdp(&self) -> String {
        let local = self
            .stream
            .local_addr()
            .map_or_else(|_| "127.0.0.1".to_owned(), |a| a.ip().to_string());
        let family = if local.contains(':') { "IP6" } else { "IP4" };
        format!(
            "v=0\r\n\
             o=- {id} 1 IN {family} {local}\r\n\
             s=xueliang-rtsp-peer\r\n\
             c=IN {family} {any}\r\n\
             t=0 0\r\n\
             a=control:*\r\n\
             m=video 0 RTP/AVP {pt}\r\n\
             a=rtpmap:{pt} {rtpmap}\r\n\
             a=fmtp:{pt} {fmtp}\r\n\
             a=control:trackID=0\r\n",
            id = rand::random::<u32>(),
            any = if family == "IP6" { "::" } else { "0.0.0.0" },
            pt = super::clip::PAYLOAD_TYPE,
            rtpmap = self.clip.rtpmap(),
            fmtp = self.clip.fmtp(),
        )
    }

    /// When the next frame is due.
    fn due(&self, p: &Playing) -> Instant {
        let ticks = p.loops * self.clip.period + self.clip.frames[p.index].send_at;
        p.start + ticks_to_duration(ticks)
    }

    /// Sends (or drops) the frame that is due, and moves on.
    fn next_frame(&mut self) {
        let (Some(p), Some(s)) = (self.playing.as_mut(), self.setup.as_mut()) else {
            return;
        };
        let frame = &self.clip.frames[p.index];
        let backlog = self.out.len() - self.written;
        if backlog > MAX_BACKLOG || (p.need_key && !frame.key) {
            p.need_key = true;
            p.frames_dropped += 1;
        } else {
            p.need_key = false;
            if self.written > 0 {
                self.out.drain(..self.written);
                self.written = 0;
            }
            let now = Instant::now();
            if let Some(every) = self.config.sender_reports {
                if now >= p.next_report {
                    let elapsed = now.saturating_duration_since(p.start);
                    let rtp = s.timestamp.wrapping_add(duration_to_ticks(elapsed) as u32);
                    sender_report(
                        &mut self.out,
                        s.channel + 1,
                        s.ssrc,
                        rtp,
                        p.packets,
                        p.octets,
                    );
                    p.next_report = now + every;
                }
            }
            let ticks = p.loops * self.clip.period + frame.pts;
            let timestamp = s.timestamp.wrapping_add(ticks as u32);
            let octets = frame.write_to(&mut self.out, s.channel, &mut s.seq, timestamp, s.ssrc);
            p.octets = p.octets.wrapping_add(octets as u32);
            p.packets = p.packets.wrapping_add(frame.packet_count() as u32);
            p.frames_sent += 1;
        }
        p.index += 1;
        if p.index == self.clip.frames.len() {
            p.index = 0;
            p.loops += 1;
            if !self.config.looping {
                bye(&mut self.out, s.channel + 1, s.ssrc);
                self.closing = Some(End::ClipOver);
            }
        }
    }
}

/// `sleep_until(due)` for a select branch that is disabled when `due` is None.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_nanos((ticks as u128 * 1_000_000_000 / CLOCK_RATE as u128) as u64)
}

fn duration_to_ticks(d: Duration) -> u64 {
    (d.as_nanos() * CLOCK_RATE as u128 / 1_000_000_000) as u64
}

/// An RTCP sender report (RFC 3550 6.4.1) on `channel`, for `ssrc`, with
/// the wall clock as NTP time and `rtp` as the matching RTP time stamp.
fn sender_report(out: &mut Vec<u8>, channel: u8, ssrc: u32, rtp: u32, packets: u32, octets: u32) {
    // Seconds from 1900 to 1970.
    const NTP_UNIX: u64 = 2_208_988_800;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = (now.as_secs() + NTP_UNIX) as u32;
    let fraction = ((now.subsec_nanos() as u64) << 32) / 1_000_000_000;
    out.extend_from_slice(&[b'$', channel, 0, 28, 0x80, 200, 0, 6]);
    for word in [ssrc, seconds, fraction as u32, rtp, packets, octets] {
        out.extend_from_slice(&word.to_be_bytes());
    }
}

/// An RTCP BYE (RFC 3550 6.6) on `channel`: the stream is over.
fn bye(out: &mut Vec<u8>, channel: u8, ssrc: u32) {
    out.extend_from_slice(&[b'$', channel, 0, 8, 0x81, 203, 0, 1]);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_packets_are_well_formed() {
        let mut out = Vec::new();
        sender_report(&mut out, 1, 7, 9000, 3, 4000);
        assert_eq!(out.len(), 4 + 28);
        assert_eq!(&out[..8], &[b'$', 1, 0, 28, 0x80, 200, 0, 6]);
        // Length in 32-bit words minus one.
        assert_eq!((u16::from_be_bytes([out[6], out[7]]) as usize + 1) * 4, 28);
        assert_eq!(&out[8..12], &7u32.to_be_bytes());
        assert_eq!(&out[20..24], &9000u32.to_be_bytes());
        assert_eq!(&out[28..32], &4000u32.to_be_bytes());
        let mut out = Vec::new();
        bye(&mut out, 3, 7);
        assert_eq!(out, [b'$', 3, 0, 8, 0x81, 203, 0, 1, 0, 0, 0, 7]);
    }

    #[test]
    fn clock_conversions() {
        assert_eq!(ticks_to_duration(90_000), Duration::from_secs(1));
        assert_eq!(ticks_to_duration(3600), Duration::from_millis(40));
        assert_eq!(duration_to_ticks(Duration::from_millis(40)), 3600);
    }
}
