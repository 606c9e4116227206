//! GB/T 28181 cascade, live video upward from a GB/T 28181 camera, end to
//! end: a real `xueliang serve` takes a camera by device access (sipp as
//! the device, `gb28181-ps-send` streaming the footage as PS over RTP) and
//! registers to sipp as the superior platform. The superior finds the
//! channel in our catalog under its own id, INVITEs it, and gets the
//! camera's own H.264 as PS over RTP, re-muxed from the units ingest
//! already has, which ffmpeg decodes; the device sees no second INVITE.
//! A channel whose camera has no video (its device refuses the INVITE) is
//! refused with 480 at once instead of a 200 with no media behind it.

use crate::gb28181::{device_logged, media, rtp_base, CHANNEL, DEVICE, PASSWORD, SERVER_ID};
use crate::gb_superior::{
    county_upstream, decoded_frames, finished, query_catalog, read_log as read, start_county,
    wait_registered, Invite, PsReceiver,
};
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::time::Duration;
use xueliang_e2e::{config_header, free_port, wait_for, ChildGuard, Xueliang};
/// The device refuses INVITEs for this channel (486): its camera runs
/// without video.
const REFUSED_CHANNEL: &str = "34020000001310000002";

/// How many INVITEs for `channel` the device got (its message log has
/// what it sent and received; only a request line starts so).
fn invites_for(device_log: &Path, channel: &str) -> usize {
    read(device_log)
        .lines()
        .filter(|l| l.starts_with(&format!("INVITE sip:{channel}@")))
        .count()
}

/// The superior INVITEs `channel` with `scenario`, media to `rtp_port`
/// over UDP, holding the stream `hold_ms` (a scenario that takes it).
fn invite(
    sip_port: u16,
    scenario: &str,
    channel: &str,
    rtp_port: u16,
    hold_ms: Option<u64>,
    log: &Path,
) -> Result<ChildGuard> {
    let call = Invite {
        scenario,
        channel,
        rtp_port,
        ssrc: "0100000011",
        hold_ms,
    };
    crate::gb_superior::invite(sip_port, SERVER_ID, &call, log)
}

#[test]
fn a_superior_invites_a_gb_camera_and_decodes_its_own_h264() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = tempfile::tempdir()?;
    let port = free_port();
    let sip_port = free_port();
    let sup_port = free_port();
    let rtp = rtp_base();
    // Whichever channel is asked for video first gets the pool's first
    // port: the footage waits on each of the three.
    let _media = [
        media(rtp, "udp")?,
        media(rtp + 2, "udp")?,
        media(rtp + 4, "udp")?,
    ];
    let config = format!(
        r#"{header}
[health]
offline_grace_s = 2
sample_interval_s = 1

[gb28181]
server_id = "{SERVER_ID}"
listen = "127.0.0.1:{sip_port}"
password = "{PASSWORD}"
rtp_ports = "{rtp}-{rtp_end}"

[[gb28181.devices]]
id = "{DEVICE}"
name = "东门 NVR"

[[gb28181.areas]]
prefix = "3402000000131"
village = "东村"
grid = "一网格"

{upstream}"#,
        upstream = county_upstream(sup_port),
        header = config_header(dir.path(), port, 0.5),
        rtp_end = rtp + 5,
    );
    let superior_log = logs.path().join("superior.log");
    let _superior = start_county(sup_port, SERVER_ID, &superior_log)?;
    let x = Xueliang::start(dir, port, &config, &[])?;
    let device_log = logs.path().join("device.log");
    let _device = device_logged(sip_port, 300, 0, Some(&device_log))?;
    wait_for(Duration::from_secs(40), || {
        // 404 until the device's catalog has made the camera.
        let health = x.health(CHANNEL).ok();
        Ok(health.filter(|h| h["state"] == "online").map(|_| ()))
    })
    .with_context(|| format!("the GB camera did not come online: {}", x.log()))?;
    wait_registered(&x)?;

    // The superior's catalog has the camera under its own channel id.
    query_catalog(sip_port, SERVER_ID, &logs.path().join("query.log"))?;
    wait_for(Duration::from_secs(10), || {
        let log = read(&superior_log);
        Ok(log
            .split("<Item>")
            .any(|item| {
                item.contains(&format!("<DeviceID>{CHANNEL}</DeviceID>"))
                    && item.contains("<Status>ON</Status>")
            })
            .then_some(()))
    })
    .with_context(|| format!("{CHANNEL} not ON in the catalog: {}", read(&superior_log)))?;

    // The superior INVITEs it; the camera's stream is already open.
    let invites_before = invites_for(&device_log, CHANNEL);
    ensure!(
        invites_before >= 1,
        "the device got no INVITE for {CHANNEL}"
    );
    let receiver = PsReceiver::start()?;
    let invite_log = logs.path().join("invite.log");
    let mut call = invite(
        sip_port,
        "superior_invite.xml",
        CHANNEL,
        receiver.port,
        Some(6000),
        &invite_log,
    )?;
    wait_for(Duration::from_secs(10), || {
        let up = x.get("/api/v1/gb28181/upstreams")?;
        Ok((up["items"][0]["streams"] == 1).then_some(()))
    })
    .with_context(|| format!("no upward stream: {}", read(&invite_log)))?;
    finished(&mut call, Duration::from_secs(30)).with_context(|| read(&invite_log))?;
    std::thread::sleep(Duration::from_millis(500));
    let (arrivals, ps, wire) = receiver.stop();
    ensure!(!arrivals.is_empty(), "no RTP arrived: {}", x.log());
    let (frames, ffmpeg_said) = decoded_frames(&ps)?;
    ensure!(
        frames >= 25,
        "ffmpeg decoded {frames} frames of {} PS bytes: {ffmpeg_said}",
        ps.len()
    );
    let answer = read(&invite_log);
    ensure!(
        answer.contains("y=0100000011"),
        "the SSRC the superior gave: {answer}"
    );
    // Our media port (in our 200, after the superior's offer in the log)
    // is one of rtp_ports (the range a firewall opens).
    let ours = answer.split("SIP/2.0 200").nth(1).unwrap_or_default();
    let port: Option<u16> = ours
        .lines()
        .find_map(|l| l.strip_prefix("m=video "))
        .and_then(|rest| rest.split(' ').next()?.parse().ok());
    ensure!(
        port.is_some_and(|p| (rtp..=rtp + 5).contains(&p)),
        "our answer's media port {port:?} is not in rtp_ports {rtp}-{}: {answer}",
        rtp + 5
    );
    ensure!(
        invites_for(&device_log, CHANNEL) == invites_before,
        "the device was INVITEd again for the upward stream: {}",
        read(&device_log)
    );
    let up = x.get("/api/v1/gb28181/upstreams")?;
    ensure!(
        up["items"][0]["streams"] == 0,
        "the stream outlived the BYE: {up}"
    );
    ensure!(up["items"][0]["stream_bytes"].as_u64().unwrap_or(0) >= wire);

    // The second channel's camera has no video (its device answers 486):
    // the superior's INVITE for it is refused at once with 480.
    wait_for(Duration::from_secs(20), || {
        let h = x.health(REFUSED_CHANNEL)?;
        Ok((h["reason"] == "invite_refused").then_some(()))
    })?;
    let refused_log = logs.path().join("refused.log");
    let mut refused = invite(
        sip_port,
        "superior_invite_refused.xml",
        REFUSED_CHANNEL,
        free_port(),
        None,
        &refused_log,
    )?;
    finished(&mut refused, Duration::from_secs(20)).with_context(|| read(&refused_log))?;
    let log = read(&refused_log);
    ensure!(
        log.contains("SIP/2.0 480 Temporarily Unavailable"),
        "480 expected for a camera without video: {log}"
    );
    eprintln!(
        "upward e2e (GB camera): {frames} frames decoded from {} RTP packets, {wire} bytes on the wire",
        arrivals.len()
    );
    Ok(())
}
