//! sipp as the superior platform of the cascade tests
//! (crates/gb28181/tests/sipp/), as every such test runs it, and the
//! superior's media end: RTP stripped, the PS decoded by ffmpeg.

use anyhow::{Context, Result};
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xueliang_e2e::{repo, ChildGuard};

/// A scenario of crates/gb28181/tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("crates/gb28181/tests/sipp").join(name)
}

/// sipp with `args` (scenario, port, keys of its own) on loopback over UDP,
/// without stdin or screen, keyed with the superior's id `superior` (its
/// realm the first 10 digits) and ours `local_id`, taking alarms, every
/// message logged to `log`.
pub fn sipp(args: &[String], superior: &str, local_id: &str, log: &Path) -> Result<ChildGuard> {
    let child = Command::new("sipp")
        .args(args)
        .args(["-i", "127.0.0.1", "-nostdin", "-nd", "-t", "u1"])
        .args([
            "-key",
            "realm",
            &superior[..10],
            "-key",
            "local_id",
            local_id,
        ])
        .args(["-key", "superior", superior])
        .args(["-key", "refuse_alarms", "0"])
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sipp (scripts/setup.sh installs Debian's sip-tester)")?;
    Ok(ChildGuard(child))
}

/// The superior's media end over UDP: each RTP packet's arrival, its PS
/// payload (the 12-byte header stripped: our packets carry no CSRC or
/// extension) and the bytes on the wire, until [`PsReceiver::stop`].
pub struct PsReceiver {
    pub port: u16,
    got: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Each packet's arrival, the PS payloads in order, the bytes on the wire.
pub type Received = (Vec<Instant>, Vec<u8>, u64);

impl PsReceiver {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> Result<PsReceiver> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let port = socket.local_addr()?.port();
        let got: Arc<Mutex<Received>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (into, stopped) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0; 65536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    if n > 12 && buf[0] >> 6 == 2 {
                        let mut g = into.lock().unwrap_or_else(|p| p.into_inner());
                        g.0.push(Instant::now());
                        g.1.extend_from_slice(&buf[12..n]);
                        g.2 += n as u64;
                    }
                }
            }
        });
        Ok(PsReceiver {
            port,
            got,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops listening; what came.
    pub fn stop(mut self) -> Received {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.got.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// How many frames `ffmpeg -f mpeg -i - -f null -` decodes of `ps`, and
/// what it said on stderr.
pub fn decoded_frames(ps: &[u8]) -> Result<(u64, String)> {
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "mpeg",
            "-i",
            "-",
        ])
        .args(["-f", "null", "-", "-progress", "pipe:1", "-nostats"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ffmpeg")?;
    ffmpeg.stdin.take().context("stdin")?.write_all(ps)?;
    let out = ffmpeg.wait_with_output()?;
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok((frames, String::from_utf8_lossy(&out.stderr).into_owned()))
}
