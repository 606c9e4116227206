//! What the SIP tests share: a SipServer on free ports with short timers,
//! and sipp (Debian's sip-tester) run as a GB/T 28181 device against it
//! with the scenarios of tests/sipp/.

#![allow(dead_code)] // each test file uses its part

pub mod relay;

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use xueliang_core::Secret;
use xueliang_gb28181::sip::{DeviceEvent, SipServer, SipSettings};

pub const SERVER_ID: &str = "34020000002000000001";
pub const DOMAIN: &str = "3402000000";
pub const DEVICE: &str = "34020000001320000001";
pub const PASSWORD: &str = "12345678";
/// The channels of the device's catalog (device_ooc.xml) and their names,
/// sent GBK-encoded.
pub const CHANNELS: [(&str, &str); 3] = [
    ("34020000001310000001", "东门口 枪机"),
    ("34020000001310000002", "西门（北）球机"),
    ("34020000001310000003", "镇政府大院"),
];

/// Test settings: free ports on loopback, 1 s keepalives, quick timers.
pub fn settings() -> SipSettings {
    let mut s = SipSettings::new(
        SERVER_ID,
        "127.0.0.1:0".parse().expect("address"),
        "127.0.0.1".parse().expect("address"),
    );
    s.password = Some(Secret::new(PASSWORD));
    s.accept = xueliang_gb28181::sip::Accept::Any;
    s.keepalive_interval = Duration::from_secs(1);
    s.keepalive_misses = 3;
    s.sweep_interval = Duration::from_millis(100);
    s.t1 = Duration::from_millis(100);
    s.invite_timeout = Duration::from_secs(5);
    s.catalog_timeout = Duration::from_secs(5);
    s
}

/// A running server; stops when dropped.
pub struct Server {
    pub sip: SipServer,
    stop: CancellationToken,
}

impl Server {
    pub async fn start(settings: SipSettings) -> Result<Server> {
        let stop = CancellationToken::new();
        let sip = SipServer::start(settings, stop.clone()).await?;
        Ok(Server { sip, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.sip.local_addr()
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.sip
            .counters()
            .snapshot()
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0, |(_, _, v)| v)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Waits for the first event that `pick` accepts (others are skipped).
pub async fn event(
    events: &mut broadcast::Receiver<DeviceEvent>,
    within: Duration,
    pick: impl Fn(&DeviceEvent) -> bool,
) -> Result<DeviceEvent> {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Ok(e) if pick(&e) => return Ok(e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => bail!("event channel closed"),
            }
        }
    })
    .await
    .with_context(|| format!("no such device event within {within:?}"))?
}

/// Waits until `check` holds, polling.
pub async fn until(within: Duration, what: &str, check: impl Fn() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn sipp() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("sipp"))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => path,
        None => {
            panic!("sipp is not installed: run scripts/setup.sh (it installs Debian's sip-tester)")
        }
    }
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A free UDP port on loopback for sipp to use.
pub fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A sipp device and how it is run.
pub struct Device {
    pub id: String,
    pub password: String,
    pub scenario: &'static str,
    pub tcp: bool,
    pub port: u16,
    pub keepalives: u32,
    pub lapse_secs: u32,
    pub unregister: bool,
}

impl Device {
    /// The device of device.xml with the right password, over UDP.
    pub fn new(port: u16) -> Device {
        Device {
            id: DEVICE.to_owned(),
            password: PASSWORD.to_owned(),
            scenario: "device.xml",
            tcp: false,
            port,
            keepalives: 3,
            lapse_secs: 0,
            unregister: false,
        }
    }

    pub fn spawn(&self, server: SocketAddr) -> Result<DeviceRun> {
        self.spawn_from("127.0.0.1", server)
    }

    /// Runs sipp from another loopback address (the throttle is per address).
    pub fn spawn_from(&self, ip: &str, server: SocketAddr) -> Result<DeviceRun> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(sipp());
        cmd.arg(server.to_string())
            .arg("-sf")
            .arg(scenario(self.scenario))
            .arg("-oocsf")
            .arg(scenario("device_ooc.xml"))
            .args(["-m", "1", "-i", ip, "-nostdin", "-nd"])
            .args(["-t", if self.tcp { "t1" } else { "u1" }])
            .args(["-p", &self.port.to_string()])
            .args(["-s", SERVER_ID, "-au", &self.id, "-ap", &self.password])
            .args(["-key", "device", &self.id, "-key", "domain", DOMAIN])
            .args(["-timeout", "60s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.path().join("errors.log"))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.path().join("messages.log"));
        for (i, (_, name)) in CHANNELS.iter().enumerate() {
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(name);
            assert!(!unmappable, "{name} is not GBK");
            cmd.arg("-key")
                .arg(format!("name{}", i + 1))
                .arg(OsStr::from_bytes(&gbk));
        }
        if self.scenario == "device.xml" {
            cmd.args(["-set", "keepalives", &self.keepalives.to_string()])
                .args(["-set", "lapse", &self.lapse_secs.to_string()])
                .args([
                    "-set",
                    "unregister",
                    if self.unregister { "1" } else { "0" },
                ]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting sipp")?;
        Ok(DeviceRun { child, dir })
    }
}

/// A running sipp; killed when dropped.
pub struct DeviceRun {
    child: Child,
    dir: tempfile::TempDir,
}

impl DeviceRun {
    /// Adds sipp's logs to an error, to see what the device saw.
    pub fn explain<T>(&self, result: Result<T>) -> Result<T> {
        result.with_context(|| self.logs())
    }

    /// Whether sipp's message log has this text (what it sent and received).
    pub fn saw(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.message_log()).contains(text)
    }

    /// How often `text` is in sipp's message log.
    pub fn count(&self, text: &str) -> usize {
        String::from_utf8_lossy(&self.message_log())
            .matches(text)
            .count()
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- sipp errors ---\n{}\n--- sipp messages ---\n{}",
            String::from_utf8_lossy(&read("errors.log")),
            String::from_utf8_lossy(&read("messages.log"))
        )
    }

    /// Waits for sipp to end its scenario; an error (with its logs) unless
    /// every call of it succeeded.
    pub async fn finish(mut self, within: Duration) -> Result<()> {
        self.wait(within).await
    }

    async fn wait(&mut self, within: Duration) -> Result<()> {
        let status = match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => bail!("sipp still running after {within:?}\n{}", self.logs()),
        };
        if !status.success() {
            let mut stderr = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut stderr).await;
            }
            bail!("sipp failed ({status}): {stderr}\n{}", self.logs());
        }
        Ok(())
    }
}

/// The superior platform of the cascade tests (上级平台).
pub const SUPERIOR: &str = "11010000002000000001";
pub const SUPERIOR_REALM: &str = "1101000000";
pub const SUPERIOR_PASSWORD: &str = "county-pw";

/// sipp as a superior platform (superior.xml) on `port`, checking our
/// digest answer against `password` and granting `grant` seconds.
pub fn superior(port: u16, password: &str, grant: u32, tcp: bool) -> Result<DeviceRun> {
    superior_with("superior.xml", port, password, grant, tcp, false)
}

/// sipp as a superior (UDP, our password, 60 s) that takes alarms, or
/// refuses them with 500.
pub fn superior_taking_alarms(port: u16, refuse: bool) -> Result<DeviceRun> {
    superior_with("superior.xml", port, SUPERIOR_PASSWORD, 60, false, refuse)
}

/// sipp as a superior (UDP, our password, 60 s) that sends SUBSCRIBE
/// Catalog right behind its 200 to our REGISTER
/// (superior_subscribes_at_once.xml).
pub fn superior_subscribing_at_once(port: u16) -> Result<DeviceRun> {
    superior_with(
        "superior_subscribes_at_once.xml",
        port,
        SUPERIOR_PASSWORD,
        60,
        false,
        false,
    )
}

fn superior_with(
    scenario_name: &str,
    port: u16,
    password: &str,
    grant: u32,
    tcp: bool,
    refuse_alarms: bool,
) -> Result<DeviceRun> {
    let dir = tempfile::tempdir()?;
    let child = Command::new(sipp())
        .arg("-sf")
        .arg(scenario(scenario_name))
        .args(["-key", "superior", SUPERIOR])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-nostdin",
            "-nd",
        ])
        .args(["-t", if tcp { "t1" } else { "u1" }])
        .args([
            "-key",
            "realm",
            SUPERIOR_REALM,
            "-key",
            "local_id",
            SERVER_ID,
        ])
        .args([
            "-key",
            "password",
            password,
            "-key",
            "grant",
            &grant.to_string(),
        ])
        .args([
            "-key",
            "refuse_alarms",
            if refuse_alarms { "1" } else { "0" },
        ])
        .args(["-timeout", "120s"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(dir.path().join("errors.log"))
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(dir.path().join("messages.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting sipp")?;
    Ok(DeviceRun { child, dir })
}

/// sipp as the superior asking us `cmd` (superior_query.xml) with `sn`.
pub fn superior_query(server: SocketAddr, cmd: &str, sn: u32) -> Result<DeviceRun> {
    superior_request(server, "superior_query.xml", SUPERIOR, cmd, sn, &[])
}

/// sipp as the superior searching `channel`'s recordings from `start` to
/// `end` (local time) of `kind` (superior_record_query.xml) with `sn`.
pub fn superior_record_query(
    server: SocketAddr,
    channel: &str,
    (start, end): (&str, &str),
    kind: &str,
    sn: u32,
) -> Result<DeviceRun> {
    let keys = [
        ("channel", channel),
        ("start", start),
        ("end", end),
        ("type", kind),
    ];
    superior_request(
        server,
        "superior_record_query.xml",
        SUPERIOR,
        "RecordInfo",
        sn,
        &keys,
    )
}

/// sipp as the superior subscribing with `Event: event` and a `Query cmd`
/// body (superior_subscribe.xml); 200, 403 and 489 all end it well.
pub fn superior_subscribe(server: SocketAddr, event: &str, cmd: &str) -> Result<DeviceRun> {
    superior_subscribe_from(server, SUPERIOR, event, cmd)
}

/// [`superior_subscribe`] from the SIP id `from` (another platform).
pub fn superior_subscribe_from(
    server: SocketAddr,
    from: &str,
    event: &str,
    cmd: &str,
) -> Result<DeviceRun> {
    superior_request(
        server,
        "superior_subscribe.xml",
        from,
        cmd,
        5,
        &[("event", event)],
    )
}

/// sipp as the superior holding a catalog subscription
/// (superior_subscribe_catalog.xml) of `expires` seconds: one NOTIFY
/// taken (with `refuse_first`, answered 500 and taken when it comes
/// again); with `unsubscribe`, then a refresh, a second NOTIFY and
/// `Expires: 0`; at the end no NOTIFY may come for 4 s.
pub fn superior_catalog_subscription(
    server: SocketAddr,
    expires: u32,
    unsubscribe: bool,
    refuse_first: bool,
) -> Result<DeviceRun> {
    let expires = expires.to_string();
    superior_request(
        server,
        "superior_subscribe_catalog.xml",
        SUPERIOR,
        "Catalog",
        6,
        &[
            ("expires", &expires),
            ("unsubscribe", if unsubscribe { "1" } else { "0" }),
            ("refuse_first", if refuse_first { "1" } else { "0" }),
        ],
    )
}

/// What the superior of [`superior_alarm_subscription`] does with the
/// first NOTIFY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmNotify {
    /// None may come (the subscription runs out first).
    None,
    /// Taken (200).
    Taken,
    /// Taken, then a refresh asking for device alarms only, a second
    /// NOTIFY taken and `Expires: 0`.
    TakenThenRefreshedAndEnded,
    /// Answered 481: it forgot the subscription.
    Gone,
    /// Answered 500, then taken when it comes again.
    FailingOnce,
}

/// sipp as the superior holding an alarm subscription
/// (superior_subscribe_alarm.xml) of `expires` seconds, asking for
/// priorities 1-2 of video alarms (method 5) on 2026-12-06, doing `then`
/// with the NOTIFYs; at the end no NOTIFY may come for 4 s.
pub fn superior_alarm_subscription(
    server: SocketAddr,
    expires: u32,
    then: AlarmNotify,
) -> Result<DeviceRun> {
    let expires = expires.to_string();
    let (notify, refresh) = match then {
        AlarmNotify::None => ("0", "0"),
        AlarmNotify::Taken => ("200", "0"),
        AlarmNotify::TakenThenRefreshedAndEnded => ("200", "1"),
        AlarmNotify::Gone => ("481", "0"),
        AlarmNotify::FailingOnce => ("500", "0"),
    };
    superior_request(
        server,
        "superior_subscribe_alarm.xml",
        SUPERIOR,
        "Alarm",
        7,
        &[
            ("expires", &expires),
            ("notify", notify),
            ("refresh", refresh),
            ("from", "2026-12-06T00:00:00"),
            ("to", "2026-12-06T23:59:59"),
        ],
    )
}

/// sipp as the superior (SIP id `from`) sending one request of `file` to
/// us, with `cmd`, `sn` and more `-key` name, value pairs.
fn superior_request(
    server: SocketAddr,
    file: &str,
    from: &str,
    cmd: &str,
    sn: u32,
    keys: &[(&str, &str)],
) -> Result<DeviceRun> {
    let dir = tempfile::tempdir()?;
    let extra = keys.iter().flat_map(|(k, v)| ["-key", k, v]);
    let child = Command::new(sipp())
        .arg(server.to_string())
        .arg("-sf")
        .arg(scenario(file))
        .args(extra)
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-nd", "-t", "u1"])
        .args(["-p", &free_udp_port()?.to_string()])
        .args([
            "-key",
            "realm",
            SUPERIOR_REALM,
            "-key",
            "local_id",
            SERVER_ID,
        ])
        .args(["-key", "superior", from, "-key", "cmd", cmd])
        .args(["-key", "sn", &sn.to_string()])
        .args(["-timeout", "20s", "-timeout_error"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(dir.path().join("errors.log"))
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(dir.path().join("messages.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting sipp")?;
    Ok(DeviceRun { child, dir })
}

/// sipp as the superior calling us with `scenario` (a live-video INVITE),
/// with `keys` as `-key name value` (`hold_ms` as `-set`, where a
/// scenario has it).
pub fn superior_call(
    server: SocketAddr,
    scenario_name: &str,
    keys: &[(&str, String)],
) -> Result<DeviceRun> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(sipp());
    cmd.arg(server.to_string())
        .arg("-sf")
        .arg(scenario(scenario_name))
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-nd", "-t", "u1"])
        .args(["-p", &free_udp_port()?.to_string()]);
    for (name, value) in keys {
        let option = if *name == "hold_ms" { "-set" } else { "-key" };
        cmd.arg(option).arg(name).arg(value);
    }
    let child = cmd
        .args(["-timeout", "30s", "-timeout_error"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(dir.path().join("errors.log"))
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(dir.path().join("messages.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting sipp")?;
    Ok(DeviceRun { child, dir })
}

impl DeviceRun {
    /// Waits for sipp's end like [`DeviceRun::finish`]; then its message log.
    pub async fn explain_finish(mut self, within: Duration) -> Result<String> {
        self.wait(within).await?;
        Ok(String::from_utf8_lossy(&self.message_log()).into_owned())
    }

    /// The raw bytes of sipp's message log (bodies in their own charset).
    pub fn message_log(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("messages.log")).unwrap_or_default()
    }

    /// The MANSCDP bodies in the message log, as bytes, in order.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        let log = self.message_log();
        let mut bodies = Vec::new();
        let mut rest = &log[..];
        while let Some(start) = find(rest, b"<?xml") {
            let from = &rest[start..];
            let end = [&b"</Response>"[..], b"</Notify>", b"</Query>"]
                .iter()
                .filter_map(|close| find(from, close).map(|at| at + close.len()))
                .min()
                .unwrap_or(from.len());
            bodies.push(from[..end].to_vec());
            rest = &from[end..];
        }
        bodies
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
