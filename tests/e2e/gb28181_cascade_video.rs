//! GB/T 28181 cascade, live video upward, end to end: a real `xueliang
//! serve` with an RTSP camera (the footage, from the GStreamer RTSP
//! server) registers to sipp as the superior platform, answers its catalog
//! query, and answers its INVITE for the camera's channel with the
//! camera's own H.264 as PS over RTP, which ffmpeg decodes; the BYE ends
//! it. Prints the figures docs/performance.md records (INVITE to first
//! RTP, bitrate against the camera's, CPU of the service per stream).

use crate::gb_superior::{
    county_upstream, decoded_frames, finished, invite, query_catalog, read_log as read,
    start_county, wait_registered, Invite, PsReceiver, SUPERIOR,
};
use anyhow::{ensure, Context, Result};
use std::time::{Duration, Instant};
use xueliang_e2e::{config_header, fixture, free_port, wait_for, RtspServer, Xueliang};

const SERVER_ID: &str = "34020000002000000001";
/// User plus system CPU seconds of the process whose command line names `dir`.
fn cpu_seconds(dir: &std::path::Path) -> Option<f64> {
    let needle = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("serve") && cmdline.contains(&needle) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks: f64 =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            return Some(ticks / 100.0);
        }
    }
    None
}

#[test]
fn a_superior_invites_an_rtsp_camera_and_decodes_its_own_h264() -> Result<()> {
    let rtsp = RtspServer::start(&[
        "--mount".into(),
        format!("walkway={}", fixture("vtest-h264.mp4").display()),
        "--loop".into(),
    ])?;
    let dir = tempfile::tempdir()?;
    let logs = tempfile::tempdir()?;
    let port = free_port();
    let sip_port = free_port();
    let sup_port = free_port();
    let config = format!(
        r#"{header}
[gb28181]
server_id = "{SERVER_ID}"
listen = "127.0.0.1:{sip_port}"
password = "12345678"

{upstream}
[[cameras]]
id = "walkway"
name = "村口步道"
url = "{url}"
village = "东村"
detection = {{ fps = 2, labels = ["person"], min_score = 0.5, lost_after_s = 2 }}
"#,
        upstream = county_upstream(sup_port),
        header = config_header(dir.path(), port, 1.0),
        url = rtsp.url("walkway"),
    );
    let superior_log = logs.path().join("superior.log");
    let _superior = start_county(sup_port, SERVER_ID, &superior_log)?;
    let x = Xueliang::start(dir, port, &config, &[])?;
    wait_for(Duration::from_secs(30), || {
        Ok((x.health("walkway")?["state"] == "online").then_some(()))
    })
    .with_context(|| format!("camera did not come online: {}", x.log()))?;
    wait_registered(&x)?;

    // The superior asks for the catalog; the camera's channel id is in it.
    query_catalog(sip_port, SERVER_ID, &logs.path().join("query.log"))?;
    let channel = wait_for(Duration::from_secs(10), || {
        Ok(read(&superior_log)
            .split("<DeviceID>")
            .filter_map(|s| s.split("</DeviceID>").next())
            .find(|id| id.len() == 20 && &id[10..13] == "131")
            .map(str::to_owned))
    })
    .context("no camera channel in the catalog the superior got")?;

    // Its media end: UDP, strip RTP, keep the PS.
    let receiver = PsReceiver::start()?;
    let rtp_port = receiver.port;
    let hold_ms = 8000;
    // The service's CPU without an upward stream, over as long as one runs.
    let idle_from = cpu_seconds(x.dir.path());
    std::thread::sleep(Duration::from_millis(hold_ms));
    let idle_to = cpu_seconds(x.dir.path());
    let cpu_before = idle_to;
    let invited = Instant::now();
    let call = Invite {
        scenario: "superior_invite.xml",
        channel: &channel,
        rtp_port,
        ssrc: "0100000009",
        hold_ms: Some(hold_ms),
    };
    let mut invite = invite(sip_port, SERVER_ID, &call, &logs.path().join("invite.log"))?;
    wait_for(Duration::from_secs(10), || {
        let up = x.get("/api/v1/gb28181/upstreams")?;
        Ok((up["items"][0]["streams"] == 1).then_some(()))
    })
    .with_context(|| {
        format!(
            "no upward stream: {}",
            read(&logs.path().join("invite.log"))
        )
    })?;
    finished(&mut invite, Duration::from_secs(30))
        .with_context(|| read(&logs.path().join("invite.log")))?;
    let cpu_after = cpu_seconds(x.dir.path());
    let bye = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let (arrivals, ps, wire) = receiver.stop();
    let first = *arrivals.first().context("no RTP arrived")?;
    let last = *arrivals.last().context("no RTP arrived")?;
    ensure!(
        last < bye + Duration::from_millis(300),
        "RTP {:?} after the BYE",
        last - bye
    );

    let (frames, ffmpeg_said) = decoded_frames(&ps)?;
    ensure!(
        frames >= 25,
        "ffmpeg decoded {frames} frames: {ffmpeg_said}"
    );
    let up = x.get("/api/v1/gb28181/upstreams")?;
    ensure!(
        up["items"][0]["streams"] == 0,
        "the stream outlived the BYE: {up}"
    );
    ensure!(up["items"][0]["stream_bytes"].as_u64().unwrap_or(0) >= wire);
    let metrics = x.metrics()?;
    ensure!(
        metrics.contains(&format!(
            "xueliang_gb28181_upstream_streams{{upstream=\"{SUPERIOR}\"}} 0"
        )),
        "no streams gauge in the metrics"
    );
    let seconds = (last - first).as_secs_f64().max(0.001);
    let share =
        |a: Option<f64>, b: Option<f64>| Some((b? - a?) / (hold_ms as f64 / 1000.0) * 100.0);
    let cpu = match (share(idle_from, idle_to), share(cpu_before, cpu_after)) {
        (Some(idle), Some(streaming)) => format!(
            "service CPU {idle:.1} % of a core without the stream, {streaming:.1} % with it"
        ),
        _ => "service CPU not found".into(),
    };
    let log = x.log();
    let first_sent = log
        .lines()
        .find(|l| l.contains("first key frame sent"))
        .unwrap_or("no 'first key frame sent' line in the log");
    eprintln!("upward e2e, the service's own timing: {first_sent}");
    eprintln!(
        "upward e2e: INVITE (sipp start) -> first RTP {} ms; {frames} frames decoded; \
         {:.0} kb/s on the wire ({:.0} kb/s PS) over {seconds:.1} s; {cpu}",
        (first - invited).as_millis(),
        wire as f64 * 8.0 / seconds / 1000.0,
        ps.len() as f64 * 8.0 / seconds / 1000.0,
    );
    Ok(())
}
