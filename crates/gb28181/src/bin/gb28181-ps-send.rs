//! Sends a clip's video as a GB/T 28181 device would: MPEG-PS over RTP,
//! over UDP or over TCP (RFC 4571 framing; this side connects, as a device
//! does when the platform's SDP says `a=setup:passive`), paced in real time.
//! The sipp device scenarios run it after answering an INVITE.
//!
//! ```text
//! gb28181-ps-send --input clip.mp4 --to 127.0.0.1:30000 --transport tcp \
//!     --ssrc 0100000001 --loop --seconds 60
//! ```
//!
//! It needs the `ffmpeg` and `ffprobe` commands (it reads the clip with them).

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xueliang_gb28181::media::tcp_framing;
use xueliang_gb28181::media::testing::{Clip, MuxOptions, PsMuxer, RtpPacketizer};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug, Parser)]
#[command(about = "Stream a clip as MPEG-PS over RTP, like a GB/T 28181 device")]
struct Args {
    /// The clip (MP4 or anything ffmpeg reads) with H.264 or H.265 video.
    #[arg(long)]
    input: PathBuf,
    /// Where to send: the platform's media address from its SDP.
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value = "udp")]
    transport: Transport,
    /// The RTP SSRC, in decimal as in the SDP's `y=` line.
    #[arg(long, default_value_t = 100_000_001)]
    ssrc: u32,
    /// Start over at the end of the clip (time stamps keep running).
    #[arg(long = "loop")]
    looping: bool,
    /// Stop after this many seconds of video.
    #[arg(long)]
    seconds: Option<f64>,
    /// Speed relative to real time.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Leave out the PSM (some devices never send one).
    #[arg(long)]
    no_psm: bool,
    /// RTP payload type (96 is PS in GB/T 28181).
    #[arg(long, default_value_t = 96)]
    payload_type: u8,
    /// How long to keep trying to connect over TCP.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Over TCP, connect again when the platform closes the connection
    /// (each time within --connect-timeout) and go on from the next frame.
    #[arg(long)]
    reconnect: bool,
}

enum Sender {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
}

impl Sender {
    fn open(args: &Args) -> anyhow::Result<Sender> {
        let to = args
            .to
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", args.to))?
            .next()
            .with_context(|| format!("{} resolves to no address", args.to))?;
        match args.transport {
            Transport::Udp => {
                let local: SocketAddr = if to.is_ipv4() {
                    "0.0.0.0:0".parse()?
                } else {
                    "[::]:0".parse()?
                };
                Ok(Sender::Udp(UdpSocket::bind(local)?, to))
            }
            Transport::Tcp => {
                let deadline = Instant::now() + Duration::from_secs_f64(args.connect_timeout);
                loop {
                    match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                        Ok(stream) => {
                            stream.set_nodelay(true)?;
                            return Ok(Sender::Tcp(stream));
                        }
                        Err(e) if Instant::now() >= deadline => {
                            return Err(e).with_context(|| format!("connecting to {to}"))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
            }
        }
    }

    fn send(&mut self, packet: &[u8]) -> anyhow::Result<()> {
        match self {
            Sender::Udp(socket, to) => {
                socket.send_to(packet, *to)?;
            }
            Sender::Tcp(stream) => {
                let framed = tcp_framing::frame(packet).context("RTP packet over 65535 bytes")?;
                stream
                    .write_all(&framed)
                    .context("the platform closed the TCP connection")?;
            }
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number");
    }
    let clip_seconds = if args.looping { None } else { args.seconds };
    let clip = Clip::from_file(&args.input, clip_seconds)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let frames = match args.seconds {
        Some(s) => (s * clip.fps).round() as usize,
        None if args.looping => usize::MAX,
        None => clip.units.len(),
    };
    let muxer = PsMuxer::new(MuxOptions {
        psm: !args.no_psm,
        ..MuxOptions::hikvision(clip.codec)
    });
    let mut packetizer = RtpPacketizer::new(args.ssrc, rand::random());
    packetizer.payload_type = args.payload_type;
    let mut sender = Sender::open(&args)?;
    // Pacing restarts after a reconnect: (when, from which frame).
    let mut epoch = (Instant::now(), 0usize);
    let mut sent = 0usize;
    for i in 0..frames {
        let index = i % clip.units.len();
        if !args.looping && i >= clip.units.len() {
            break;
        }
        let ahead = (i - epoch.1) as f64 / clip.fps / args.rate;
        let due = epoch.0 + Duration::from_secs_f64(ahead);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let pts = clip.pts(i) & ((1 << 33) - 1);
        let ps = muxer.mux(&clip.units[index], pts, clip.is_key(index));
        for packet in packetizer.packetize(&ps, pts as u32) {
            match sender.send(&packet) {
                Ok(()) => {}
                Err(e) if args.reconnect && matches!(sender, Sender::Tcp(_)) => {
                    eprintln!("gb28181-ps-send: {e:#}; connecting again");
                    sender = Sender::open(&args)?;
                    epoch = (Instant::now(), i + 1);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        sent += 1;
    }
    eprintln!("gb28181-ps-send: {sent} frames sent");
    Ok(())
}
