//! GB/T 28181 end to end: sipp (Debian's sip-tester) as a device that
//! registers with digest auth, keeps alive, answers the catalog in two
//! GBK-encoded MESSAGEs and accepts INVITEs; the test footage sent as PS over
//! RTP by the `gb28181-ps-send` tool to the ports Xueliang offers. The channel
//! becomes a camera, person events come out of the API, and when the
//! device's keepalives stop its camera goes offline with the right reason
//! and comes back when it registers again. The device list is checked on
//! the dashboard in a real browser, and the SIP and media counters in the
//! metrics.

use anyhow::{Context, Result};
use serde_json::Value;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use xueliang_e2e::{
    browser, config_header, fixture, free_port, repo, wait_for, xueliang_bin, ChildGuard, Xueliang,
    ADMIN, ADMIN_PASSWORD,
};

pub(crate) const SERVER_ID: &str = "34020000002000000001";
pub(crate) const DEVICE: &str = "34020000001320000001";
pub(crate) const CHANNEL: &str = "34020000001310000001";
pub(crate) const PASSWORD: &str = "12345678";
/// The names device_ooc.xml gives its three channels, sent in GBK.
const NAMES: [&str; 3] = ["东门口 枪机", "西门（北）球机", "镇政府大院"];

fn sipp_scenario(name: &str) -> PathBuf {
    repo().join("crates/gb28181/tests/sipp").join(name)
}

/// The `gb28181-ps-send` tool, built beside the `xueliang` binary.
fn ps_send() -> PathBuf {
    xueliang_bin().with_file_name("gb28181-ps-send")
}

/// An even port with the next few free, for `rtp_ports`.
pub(crate) fn rtp_base() -> u16 {
    let p = free_port();
    p - p % 2
}

/// sipp as the device: `keepalives` 1 s apart, then `lapse` s of silence,
/// then a second registration and as many keepalives again.
fn device(sip_port: u16, keepalives: u32, lapse: u32) -> Result<ChildGuard> {
    device_logged(sip_port, keepalives, lapse, None)
}

/// [`device`], with every message it sends and receives in `log`.
pub(crate) fn device_logged(
    sip_port: u16,
    keepalives: u32,
    lapse: u32,
    log: Option<&std::path::Path>,
) -> Result<ChildGuard> {
    let mut cmd = Command::new("sipp");
    if let Some(log) = log {
        cmd.arg("-trace_msg").arg("-message_file").arg(log);
    }
    cmd.arg(format!("127.0.0.1:{sip_port}"))
        .arg("-sf")
        .arg(sipp_scenario("device.xml"))
        .arg("-oocsf")
        .arg(sipp_scenario("device_ooc.xml"))
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-nd", "-t", "u1"])
        .args(["-p", &free_port().to_string()])
        .args(["-s", SERVER_ID, "-au", DEVICE, "-ap", PASSWORD])
        .args(["-key", "device", DEVICE, "-key", "domain", &SERVER_ID[..10]])
        .args(["-set", "keepalives", &keepalives.to_string()])
        .args([
            "-set",
            "lapse",
            &lapse.to_string(),
            "-set",
            "unregister",
            "0",
        ])
        .args(["-timeout", "300s"]);
    for (i, name) in NAMES.iter().enumerate() {
        let (gbk, _, _) = encoding_rs::GBK.encode(name);
        cmd.arg("-key")
            .arg(format!("name{}", i + 1))
            .arg(OsStr::from_bytes(&gbk));
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sipp (scripts/setup.sh installs Debian's sip-tester)")?;
    Ok(ChildGuard(child))
}

/// The footage as PS over RTP to `port`, looped; over TCP (`transport` =
/// "tcp") it connects, and connects again whenever the centre closes the
/// connection, as a device does.
pub(crate) fn media(port: u16, transport: &str) -> Result<ChildGuard> {
    let mut cmd = Command::new(ps_send());
    cmd.arg("--input")
        .arg(fixture("vtest-h264.mp4"))
        .args([
            "--to",
            &format!("127.0.0.1:{port}"),
            "--transport",
            transport,
        ])
        .arg("--loop");
    if transport == "tcp" {
        cmd.args(["--reconnect", "--connect-timeout", "300"]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting gb28181-ps-send (cargo build --release -p xueliang-gb28181)")?;
    Ok(ChildGuard(child))
}

/// A centre with `[gb28181]` (media over `transport`), the footage waiting
/// on its three media ports, and sipp as the device with `keepalives` 1 s
/// apart, then `lapse` s of silence and a second registration.
struct Setup {
    x: Xueliang,
    _media: [ChildGuard; 3],
    _device: ChildGuard,
}

fn start(transport: &str, keepalives: u32, lapse: u32) -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let sip_port = free_port();
    let rtp = rtp_base();
    // The first camera asked for video gets the pool's first port; the
    // sender starts before it is bound, as a device would resend (UDP) or
    // try to connect again (TCP).
    let media = [
        media(rtp, transport)?,
        media(rtp + 2, transport)?,
        media(rtp + 4, transport)?,
    ];
    let config = format!(
        "{}\n[health]\noffline_grace_s = 2\nsample_interval_s = 1\n\
         [gb28181]\nserver_id = \"{SERVER_ID}\"\nlisten = \"127.0.0.1:{sip_port}\"\n\
         password = \"{PASSWORD}\"\nrtp_ports = \"{rtp}-{}\"\nmedia_transport = \"{transport}\"\n\
         [[gb28181.devices]]\nid = \"{DEVICE}\"\nname = \"东门 NVR\"\n\
         [[gb28181.areas]]\nprefix = \"3402000000131\"\nvillage = \"东村\"\ngrid = \"一网格\"\n",
        config_header(dir.path(), port, 0.5),
        rtp + 5
    );
    let x = Xueliang::start(dir, port, &config, &[])?;
    let device = device(sip_port, keepalives, lapse)?;
    Ok(Setup {
        x,
        _media: media,
        _device: device,
    })
}

/// Waits for the channel's camera (made from the catalog) to be online and
/// for a person event from its footage.
fn online_with_person_events(x: &Xueliang) -> Result<()> {
    wait_for(Duration::from_secs(40), || {
        // 404 until the catalog has made the camera.
        let health = x.health(CHANNEL).ok();
        Ok(health.filter(|h| h["state"] == "online").map(|_| ()))
    })
    .with_context(|| x.log())?;
    let person = wait_for(Duration::from_secs(60), || {
        Ok(x.all_events(&format!("&camera={CHANNEL}&label=person"))?
            .pop())
    })
    .with_context(|| x.log())?;
    assert_eq!(person["kind"], "object", "{person}");
    Ok(())
}

/// A counter of the metrics (`xueliang_gb28181_<name>_total`); -1 when absent.
fn total(metrics: &str, name: &str) -> f64 {
    let prefix = format!("xueliang_gb28181_{name}_total ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn a_registered_channel_becomes_a_camera_with_events_and_keepalive_health() -> Result<()> {
    let setup = start("udp", 30, 8)?;
    let x = &setup.x;

    // Registered; the catalog's channels (GBK names) are cameras.
    let camera = wait_for(Duration::from_secs(30), || {
        let cams = x.get("/api/v1/cameras")?;
        Ok(cams["items"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == CHANNEL).cloned()))
    })?;
    assert_eq!(camera["name"], NAMES[0], "{camera}");
    assert_eq!(camera["village"], "东村");
    assert_eq!(camera["grid"], "一网格");
    assert_eq!(
        camera["url"],
        format!("gb28181://{DEVICE}/{CHANNEL}"),
        "{camera}"
    );
    let devices = x.get("/api/v1/gb28181/devices")?;
    let d = &devices["items"][0];
    assert_eq!(d["id"], DEVICE, "{devices}");
    assert_eq!(d["name"], "东门 NVR");
    assert_eq!(d["online"], true);
    assert_eq!(d["channels"].as_array().map(Vec::len), Some(3), "{d}");
    assert_eq!(d["channels"][1]["name"], NAMES[1]);
    // The same list on the dashboard's cameras page, in a real browser.
    browser::run_script(
        x,
        "gb-devices.mjs",
        ADMIN,
        ADMIN_PASSWORD,
        &[
            ("XUELIANG_DEVICE", DEVICE),
            ("XUELIANG_DEVICE_NAME", "东门 NVR"),
            ("XUELIANG_CHANNEL_NAME", NAMES[0]),
        ],
    )?;

    // Video arrives: online, and the footage's people become events.
    online_with_person_events(x)?;
    // The second channel's INVITE is refused (486): its own reason.
    wait_for(Duration::from_secs(20), || {
        let h = x.health("34020000001310000002")?;
        Ok((h["reason"] == "invite_refused").then_some(()))
    })?;
    // The SIP server's and the media receivers' counters are in the metrics
    // (the first person event may come from the first few units: wait for
    // more video to have arrived).
    let metrics = wait_for(Duration::from_secs(20), || {
        let metrics = x.metrics()?;
        Ok((total(&metrics, "media_units") > 10.0).then_some(metrics))
    })
    .or_else(|e| x.metrics().map(|m| format!("{e}: {m}")))?;
    let total = |name: &str| total(&metrics, name);
    assert!(total("sip_registrations") >= 1.0, "{metrics}");
    assert!(total("sip_keepalives") >= 1.0, "{metrics}");
    assert!(total("sip_invites_refused") >= 1.0, "{metrics}");
    assert!(total("media_packets") > 100.0, "{metrics}");
    assert!(total("media_units") > 10.0, "{metrics}");
    let devices: f64 = ["online", "offline"]
        .iter()
        .filter_map(|s| {
            let line = format!("xueliang_gb28181_devices{{state=\"{s}\"}} ");
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&line)?.parse::<f64>().ok())
        })
        .sum();
    assert_eq!(devices, 1.0, "{metrics}");

    // The device goes silent: offline (keepalive lost), a health event.
    let h = wait_for(Duration::from_secs(40), || {
        let h = x.health(CHANNEL)?;
        Ok((h["state"] == "offline").then_some(h))
    })?;
    assert_eq!(h["reason"], "keepalive_lost", "{h}");
    let offline: Value = wait_for(Duration::from_secs(20), || {
        Ok(
            x.all_events(&format!("&kind=camera_offline&camera={CHANNEL}"))?
                .pop(),
        )
    })?;
    assert_eq!(offline["camera_id"], CHANNEL, "{offline}");
    // It registers again: the camera recovers.
    wait_for(Duration::from_secs(40), || {
        Ok(
            x.all_events(&format!("&kind=camera_recovered&camera={CHANNEL}"))?
                .pop(),
        )
    })
    .with_context(|| x.log())?;
    Ok(())
}

#[test]
fn video_over_tcp_media_gives_the_same_events() -> Result<()> {
    // The device connects to the offered port (a=setup:passive, RFC 4571).
    let setup = start("tcp", 90, 1)?;
    let x = &setup.x;
    online_with_person_events(x)?;
    let metrics = x.metrics()?;
    assert!(total(&metrics, "media_packets") > 100.0, "{metrics}");
    assert_eq!(total(&metrics, "media_framing_errors"), 0.0, "{metrics}");
    assert_eq!(total(&metrics, "media_bad_rtp_packets"), 0.0, "{metrics}");
    Ok(())
}
