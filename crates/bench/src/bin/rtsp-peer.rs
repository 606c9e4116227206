//! `xueliang-rtsp-peer`: serves one clip to any number of RTSP clients, as
//! an IP camera does, at next to no CPU: the clip is read and packetized
//! once, and each client is a task that copies the prepared packets, stamps
//! them with its own numbers and writes each frame with one call. The
//! bench's light RTSP peer for scale runs (`xueliang-bench --rtsp-peer
//! light`), where the GStreamer server (tests/rtsp-server/serve.py, one
//! pipeline per client) would take the cores it measures.

#[path = "../rtsp_peer/mod.rs"]
mod rtsp_peer;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rtsp_peer::clip::Clip;
use rtsp_peer::session::{self, Config};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(
    name = "xueliang-rtsp-peer",
    version,
    about = "A light RTSP server: one clip to any number of clients, RTP over the RTSP connection",
    long_about = "A light RTSP server for scale runs: serves one clip (MP4 or anything ffmpeg reads, \
H.264 or H.265 video) to any number of clients, as an IP camera does. The clip is read once at \
start with the ffmpeg and ffprobe commands, cut into access units and packetized into RTP once \
(RFC 6184 / RFC 7798: single NAL unit packets, fragmentation units above --max-payload, the \
marker bit on each access unit's last packet, the parameter sets in band before every key frame).\n\n\
RTSP/1.0 over TCP: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER and SET_PARAMETER (keepalives), \
TEARDOWN. Only RTP/AVP/TCP (interleaved on the RTSP connection) is offered; a SETUP asking for UDP \
gets 461 Unsupported Transport. Without --mount every non-empty path serves the clip; with \
--mount only the paths named do, others get 404.\n\n\
Each client starts at the clip's first key frame, gets the frames at their time stamps' pace, \
its own random SSRC, sequence numbers and time stamps, and (by default) the clip again and \
again with the time stamps and sequence numbers running on, plus an RTCP sender report every \
--sender-report seconds. A client that does not read fast enough (its --send-buffer full and \
256 kB more waiting) loses frames up to the next key frame: nothing is buffered for it without \
bound.\n\n\
Once listening it prints one line `READY port=<port>` to stdout; everything else goes to \
stderr. SIGTERM or SIGINT stops it (exit status 0).\n\n\
Example:\n  xueliang-rtsp-peer --clip tests/fixtures/vtest-d1-25fps.mp4 --port 8554\n  \
ffplay -rtsp_transport tcp rtsp://127.0.0.1:8554/cam1"
)]
struct Args {
    /// The clip to serve.
    #[arg(long)]
    clip: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Port to listen on; 0 = any free port (see the READY line).
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// Serve only this path (e.g. `cam001`; repeat for more). Default: every
    /// non-empty path.
    #[arg(long = "mount", value_name = "NAME")]
    mounts: Vec<String>,
    /// Play the clip once, then send RTCP BYE and close, instead of looping.
    #[arg(long)]
    no_loop: bool,
    /// Seconds between RTCP sender reports (0 = none).
    #[arg(long, default_value_t = 5.0)]
    sender_report: f64,
    /// The largest RTP payload, bytes; larger NAL units are fragmented.
    #[arg(long, default_value_t = 1400)]
    max_payload: usize,
    /// Each client connection's kernel send buffer (SO_SNDBUF), bytes; 0 =
    /// the kernel's default, which grows to net.ipv4.tcp_wmem's maximum (4
    /// MB, half a minute of a 1 Mb/s stream) before a slow client loses a
    /// frame.
    #[arg(long, default_value_t = 256 * 1024)]
    send_buffer: usize,
    /// Delay each client's first frame by a random time below this many
    /// seconds (e.g. one GOP), so that the clients' key frames are spread as
    /// real cameras' are, not all aligned; 0 = no delay.
    #[arg(long, default_value_t = 0.0)]
    stagger: f64,
    /// Worker threads; 1 runs every client on the main thread.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Log every connection (by default only trouble and slow clients).
    #[arg(long, short)]
    verbose: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = real_main(args) {
        eprintln!("xueliang-rtsp-peer: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(args: Args) -> Result<()> {
    if !(args.sender_report >= 0.0 && args.sender_report.is_finite()) {
        bail!("--sender-report must be a number of seconds >= 0");
    }
    if !(args.stagger >= 0.0 && args.stagger <= 60.0) {
        bail!("--stagger must be 0 to 60 seconds");
    }
    if !(100..=65_000).contains(&args.max_payload) {
        bail!("--max-payload must be 100 to 65000 bytes");
    }
    let mounts: Vec<String> = args
        .mounts
        .iter()
        .map(|m| m.trim_matches('/').to_owned())
        .collect();
    if mounts.iter().any(String::is_empty) {
        bail!("--mount: a name must not be empty");
    }
    let clip = Clip::read(&args.clip, args.max_payload)
        .with_context(|| format!("reading {}", args.clip.display()))?;
    let bytes: usize = clip.frames.iter().map(|f| f.len()).sum();
    eprintln!(
        "[rtsp-peer] {}: {:?}, {} frames ({} key), {:.2} s a loop, {:.1} MB of RTP",
        args.clip.display(),
        clip.codec,
        clip.frames.len(),
        clip.frames.iter().filter(|f| f.key).count(),
        clip.period as f64 / 90_000.0,
        bytes as f64 / 1e6
    );
    let config = Config {
        mounts,
        looping: !args.no_loop,
        sender_reports: (args.sender_report > 0.0)
            .then(|| Duration::from_secs_f64(args.sender_report)),
        idle_timeout: Duration::from_secs(60),
        send_buffer: (args.send_buffer > 0).then_some(args.send_buffer),
        stagger: Duration::from_secs_f64(args.stagger),
        verbose: args.verbose,
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(
        args.bind,
        args.port,
        Arc::new(clip),
        Arc::new(config),
    ))
}

async fn serve(bind: String, port: u16, clip: Arc<Clip>, config: Arc<Config>) -> Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind((bind.as_str(), port))
        .await
        .with_context(|| format!("listening on {bind}:{port}"))?;
    let port = listener.local_addr()?.port();
    println!("READY port={port}");
    eprintln!("[rtsp-peer] listening on {bind}:{port}");
    loop {
        tokio::select! {
            biased;
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(session::serve(stream, peer, clip.clone(), config.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    eprintln!("[rtsp-peer] accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    eprintln!("[rtsp-peer] stopping");
    Ok(())
}
