//! sipp as the superior platform of the cascade tests
//! (crates/gb28181/tests/sipp/), as every such test runs it, and the
//! superior's media end: RTP stripped, the PS decoded by ffmpeg.

use anyhow::{ensure, Context, Result};
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xueliang_e2e::{free_port, repo, wait_for, ChildGuard, Xueliang};

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

/// The county platform of the cascade-video tests, and the password it
/// expects of us.
pub const SUPERIOR: &str = "11010000002000000001";
pub const SUPERIOR_PASSWORD: &str = "county-pw";

/// The `[[gb28181.upstream]]` section that registers us to the county
/// platform started by [`start_county`] on `port` (2 streams at most).
pub fn county_upstream(port: u16) -> String {
    format!(
        r#"
[[gb28181.upstream]]
id = "{SUPERIOR}"
address = "127.0.0.1"
port = {port}
password = "{SUPERIOR_PASSWORD}"
keepalive_s = 5
max_upstream_streams = 2
"#
    )
}

/// [`sipp`] as [`SUPERIOR`] towards our `local_id`.
pub fn county(args: &[String], local_id: &str, log: &Path) -> Result<ChildGuard> {
    sipp(args, SUPERIOR, local_id, log)
}

/// The county platform on `port` (superior.xml: it challenges our REGISTER
/// and grants an hour), every message logged to `log`.
pub fn start_county(port: u16, local_id: &str, log: &Path) -> Result<ChildGuard> {
    let args = [
        "-sf".to_owned(),
        scenario("superior.xml").display().to_string(),
        "-p".into(),
        port.to_string(),
        "-key".into(),
        "password".into(),
        SUPERIOR_PASSWORD.into(),
        "-key".into(),
        "grant".into(),
        "3600".into(),
    ];
    county(&args, local_id, log)
}

/// Waits until `x`'s first upstream link is registered.
pub fn wait_registered(x: &Xueliang) -> Result<()> {
    wait_for(Duration::from_secs(20), || {
        let up = x.get("/api/v1/gb28181/upstreams")?;
        Ok((up["items"][0]["state"] == "registered").then_some(()))
    })
    .with_context(|| format!("not registered to the superior: {}", x.log()))
}

/// The county platform asks our SIP server on `sip_port` for the catalog
/// (the answer reaches the sipp started by [`start_county`]); waits for the
/// query's sipp run to end.
pub fn query_catalog(sip_port: u16, local_id: &str, log: &Path) -> Result<()> {
    let args = [
        format!("127.0.0.1:{sip_port}"),
        "-sf".into(),
        scenario("superior_query.xml").display().to_string(),
        "-m".into(),
        "1".into(),
        "-p".into(),
        free_port().to_string(),
        "-key".into(),
        "cmd".into(),
        "Catalog".into(),
        "-key".into(),
        "sn".into(),
        "5".into(),
    ];
    let mut query = county(&args, local_id, log)?;
    finished(&mut query, Duration::from_secs(20))
}

/// What the county platform asks for in an INVITE.
pub struct Invite<'a> {
    /// A scenario of crates/gb28181/tests/sipp/ that sends it.
    pub scenario: &'a str,
    pub channel: &'a str,
    /// Media to this port, RTP over UDP.
    pub rtp_port: u16,
    /// The SSRC it gives (`y=`).
    pub ssrc: &'a str,
    /// How long it holds the stream (for a scenario that takes it).
    pub hold_ms: Option<u64>,
}

/// The county platform sends `call` to our SIP server on `sip_port`; the
/// sipp run.
pub fn invite(sip_port: u16, local_id: &str, call: &Invite, log: &Path) -> Result<ChildGuard> {
    county(&invite_args(sip_port, call), local_id, log)
}

/// The county platform plays back (superior_playback.xml, `session`
/// Playback or Download) `call`'s channel from `from` to `to` (Unix
/// seconds); the sipp run.
pub fn play_back(
    sip_port: u16,
    local_id: &str,
    call: &Invite,
    (session, from, to): (&str, i64, i64),
    log: &Path,
) -> Result<ChildGuard> {
    let mut args = invite_args(sip_port, call);
    for (key, value) in [
        ("session", session.to_owned()),
        ("start", from.to_string()),
        ("stop", to.to_string()),
        ("speed", "1".to_owned()),
    ] {
        args.extend(["-key".into(), key.into(), value]);
    }
    county(&args, local_id, log)
}

/// The county platform searches `channel`'s recordings from `start` to
/// `end` (its local time) (superior_record_query.xml, SN 9); the answer
/// reaches the sipp started by [`start_county`]. Waits for the query's run.
pub fn query_records(
    sip_port: u16,
    local_id: &str,
    channel: &str,
    (start, end): (&str, &str),
    log: &Path,
) -> Result<()> {
    let mut args = vec![
        format!("127.0.0.1:{sip_port}"),
        "-sf".into(),
        scenario("superior_record_query.xml").display().to_string(),
        "-m".into(),
        "1".into(),
        "-p".into(),
        free_port().to_string(),
    ];
    for (key, value) in [
        ("cmd", "RecordInfo"),
        ("sn", "9"),
        ("channel", channel),
        ("start", start),
        ("end", end),
        ("type", "all"),
    ] {
        args.extend(["-key".into(), key.into(), value.into()]);
    }
    let mut query = county(&args, local_id, log)?;
    finished(&mut query, Duration::from_secs(20))
}

/// sipp's arguments for `call` to our SIP server on `sip_port`.
fn invite_args(sip_port: u16, call: &Invite) -> Vec<String> {
    let mut args: Vec<String> = vec![
        format!("127.0.0.1:{sip_port}"),
        "-sf".into(),
        scenario(call.scenario).display().to_string(),
        "-m".into(),
        "1".into(),
        "-p".into(),
        free_port().to_string(),
        "-key".into(),
        "channel".into(),
        call.channel.into(),
        "-key".into(),
        "rtp_port".into(),
        call.rtp_port.to_string(),
        "-key".into(),
        "proto".into(),
        "RTP/AVP".into(),
        "-key".into(),
        "setup".into(),
        "passive".into(),
        "-key".into(),
        "ssrc".into(),
        call.ssrc.into(),
    ];
    if let Some(hold_ms) = call.hold_ms {
        args.extend(["-set".into(), "hold_ms".into(), hold_ms.to_string()]);
    }
    args
}

/// A sipp message log as text (empty while it does not exist).
pub fn read_log(log: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

/// Waits for a sipp run to end; `Ok` on success.
pub fn finished(run: &mut ChildGuard, within: Duration) -> Result<()> {
    let status = wait_for(within, || Ok(run.0.try_wait()?))?;
    ensure!(status.success(), "sipp ended with {status}");
    Ok(())
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
    let frames = xueliang_e2e::progress_frames(&out.stdout);
    Ok((frames, String::from_utf8_lossy(&out.stderr).into_owned()))
}
