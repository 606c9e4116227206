//! The cameras' side of a run: an RTSP server serving the clip once per
//! camera (the GStreamer one, or the light `xueliang-rtsp-peer`), or one
//! GB/T 28181 device per camera (sipp registering, keeping alive and
//! answering the INVITE, as in the e2e tests, and `gb28181-ps-send` sending
//! the clip as PS over RTP to the port offered).

use crate::run::{camera_id, free_port, Guard, RunSpec};
use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// How the cameras reach xueliang.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// xueliang pulls RTSP (over TCP) from the GStreamer RTSP server.
    #[default]
    Rtsp,
    /// The cameras are GB/T 28181 devices: PS over RTP/UDP after an INVITE.
    Gb28181,
}

/// Which RTSP server serves the cameras of `--source rtsp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RtspPeer {
    /// tests/rtsp-server/serve.py: GStreamer, one pipeline per client
    /// (what the figures so far were measured with).
    #[default]
    Gstreamer,
    /// `xueliang-rtsp-peer` next to the bench: the clip read and packetized
    /// once, a task per client; next to no CPU, for scale runs.
    Light,
}

const SERVER_ID: &str = "34020000002000000001";
const PASSWORD: &str = "bench-12345678";
/// The channel of every device that answers the INVITE with 200
/// (crates/gb28181/tests/sipp/device_ooc.xml).
const CHANNEL: &str = "34020000001310000001";

fn device_id(i: usize) -> String {
    format!("3402000000132{:07}", i + 1)
}

/// The running peers and what the config needs to reach them.
pub struct Peers {
    guards: Vec<Guard>,
    /// `[[cameras]]` tables (and `[gb28181]`) for the config.
    pub config: String,
    /// GB/T 28181: the SIP port devices register to, once xueliang runs.
    sip_port: Option<u16>,
}

impl Peers {
    /// Starts what serves the video; GB devices register later
    /// ([`Peers::register_devices`]), once xueliang listens.
    pub fn start(spec: &RunSpec, dir: &Path) -> Result<Peers> {
        match spec.source {
            Source::Rtsp => rtsp(spec, &dir.join("rtsp-server.log")),
            Source::Gb28181 => gb28181(spec),
        }
    }

    /// Every peer process, for their CPU.
    pub fn pids(&self) -> Vec<u32> {
        self.guards.iter().map(Guard::pid).collect()
    }

    /// GB/T 28181: one sipp device per camera registers and keeps alive.
    pub fn register_devices(&mut self, spec: &RunSpec, dir: &Path) -> Result<()> {
        let Some(sip_port) = self.sip_port else {
            return Ok(());
        };
        let scenarios = spec.repo.join("crates/gb28181/tests/sipp");
        for i in 0..spec.cameras {
            let device = device_id(i);
            let log = std::fs::File::create(dir.join(format!("sipp-{}.log", camera_id(i))))?;
            let mut cmd = Command::new("sipp");
            cmd.arg(format!("127.0.0.1:{sip_port}"))
                .arg("-sf")
                .arg(scenarios.join("device.xml"))
                .arg("-oocsf")
                .arg(scenarios.join("device_ooc.xml"))
                .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-nd", "-t", "u1"])
                .args(["-p", &free_port()?.to_string()])
                .args(["-s", SERVER_ID, "-au", &device, "-ap", PASSWORD])
                .args([
                    "-key",
                    "device",
                    &device,
                    "-key",
                    "domain",
                    &SERVER_ID[..10],
                ])
                .args(["-set", "keepalives", "1000000", "-set", "lapse", "1"])
                .args(["-set", "unregister", "0", "-timeout", "86400s"]);
            for k in 1..=3 {
                cmd.args(["-key", &format!("name{k}"), &format!("bench {k}")]);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting sipp (scripts/setup.sh installs Debian's sip-tester)")?;
            self.guards.push(Guard::new(child, "a sipp device"));
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        for g in &mut self.guards {
            let _ = g.stop(std::time::Duration::from_secs(5));
        }
    }
}

fn rtsp(spec: &RunSpec, log: &Path) -> Result<Peers> {
    let (mut cmd, starting) = match spec.rtsp_peer {
        RtspPeer::Gstreamer => {
            let mut cmd = Command::new("/usr/bin/python3");
            cmd.arg(spec.repo.join("tests/rtsp-server/serve.py"))
                .args(["--port", "0", "--loop"]);
            for i in 0..spec.cameras {
                cmd.arg("--mount")
                    .arg(format!("{}={}", camera_id(i), spec.clip.display()));
            }
            (
                cmd,
                "starting /usr/bin/python3 tests/rtsp-server/serve.py (scripts/setup.sh installs GStreamer)".to_owned(),
            )
        }
        RtspPeer::Light => {
            // Every path serves the clip: the cameras' paths need no mounts.
            let exe = light_peer_exe()?;
            let mut cmd = Command::new(&exe);
            // Each camera's first frame within one GOP of the bench's clips
            // (2 s): their key frames spread as real cameras' do instead of
            // all arriving together.
            cmd.arg("--clip").arg(&spec.clip).args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--stagger",
                "2",
            ]);
            (cmd, format!("starting {}", exe.display()))
        }
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context(starting)?;
    let stdout = child.stdout.take().context("the RTSP server's stdout")?;
    let guard = Guard::new(child, "the RTSP server");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port: u16 = line
        .trim()
        .strip_prefix("READY port=")
        .and_then(|p| p.parse().ok())
        .with_context(|| {
            format!(
                "the RTSP server did not start (said {line:?}); its log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })?;
    Ok(Peers {
        guards: vec![guard],
        config: rtsp_cameras(spec.cameras, port),
        sip_port: None,
    })
}

/// `xueliang-rtsp-peer` in the bench's own directory (target/release).
fn light_peer_exe() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?
        .parent()
        .context("the bench's directory")?
        .join("xueliang-rtsp-peer");
    if !exe.is_file() {
        anyhow::bail!(
            "{} is missing: build it with `cargo build --release -p xueliang-bench`",
            exe.display()
        );
    }
    Ok(exe)
}

/// `n` cameras on the RTSP server's `port`.
pub fn rtsp_cameras(n: usize, port: u16) -> String {
    (0..n)
        .map(|i| {
            let id = camera_id(i);
            format!("\n[[cameras]]\nid = \"{id}\"\nname = \"bench {id}\"\nurl = \"rtsp://127.0.0.1:{port}/{id}\"\n")
        })
        .collect()
}

/// `[gb28181]` on `sip_port` with a media port pair per camera from `rtp`,
/// and `n` cameras, each the answering channel of its own device.
pub fn gb28181_cameras(n: usize, sip_port: u16, rtp: u16) -> String {
    let last = rtp as usize + 2 * n.max(1) - 1;
    let mut config = format!(
        "\n[gb28181]\nserver_id = \"{SERVER_ID}\"\nlisten = \"127.0.0.1:{sip_port}\"\n\
         password = \"{PASSWORD}\"\nrtp_ports = \"{rtp}-{last}\"\naccept = \"any\"\n\
         auto_cameras = false\n"
    );
    for i in 0..n {
        let id = camera_id(i);
        config.push_str(&format!(
            "\n[[cameras]]\nid = \"{id}\"\nname = \"bench {id}\"\nurl = \"gb28181://{}/{CHANNEL}\"\n",
            device_id(i)
        ));
    }
    config
}

fn gb28181(spec: &RunSpec) -> Result<Peers> {
    let sip_port = free_port()?;
    let base = free_port()?;
    let rtp = base - base % 2;
    let ps_send = spec.xueliang.with_file_name("gb28181-ps-send");
    let mut guards = Vec::new();
    // One sender per media port of the pool, started before the INVITEs (a
    // device resends over UDP until the platform listens); whichever camera
    // gets a port receives the same clip.
    for i in 0..spec.cameras {
        let port = rtp as usize + 2 * i;
        let child = Command::new(&ps_send)
            .arg("--input")
            .arg(&spec.clip)
            .args([
                "--to",
                &format!("127.0.0.1:{port}"),
                "--transport",
                "udp",
                "--loop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (cargo build --release -p xueliang-gb28181)",
                    ps_send.display()
                )
            })?;
        guards.push(Guard::new(child, "gb28181-ps-send"));
    }
    Ok(Peers {
        guards,
        config: gb28181_cameras(spec.cameras, sip_port, rtp),
        sip_port: Some(sip_port),
    })
}
