//! A village node feeding the township centre through the national
//! standard: two real `xueliang serve` processes. The village node watches
//! an RTSP camera (the footage) and registers upward to the township node
//! as a lower platform (`[[gb28181.upstream]]`); the township node, whose
//! `[gb28181]` access knows the village platform as a device, asks its
//! catalog, makes the shared camera one of its own cameras, INVITEs it, and
//! receives the camera's own H.264 as PS over RTP, decodes it and detects
//! the footage's people on it: events at the township for a camera it has
//! never connected to.

use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use xueliang_e2e::{config_header, fixture, free_port, wait_for, RtspServer, Xueliang};

/// The township centre's SIP id (a platform, type 200) and the password its
/// lower platforms register with.
const TOWNSHIP: &str = "34010000002000000001";
const TOWNSHIP_PASSWORD: &str = "township-pw";
/// The village node's SIP id towards the township.
const VILLAGE: &str = "34010200002000000001";

#[test]
fn a_village_node_shares_its_camera_with_the_township_node_which_detects_on_it() -> Result<()> {
    let rtsp = RtspServer::start(&[
        "--mount".into(),
        format!("walkway={}", fixture("vtest-h264.mp4").display()),
        "--loop".into(),
    ])?;
    let (t_port, t_sip) = (free_port(), free_port());
    let rtp = free_port();
    let rtp = rtp - rtp % 2;
    let township_dir = tempfile::tempdir()?;
    let township_config = format!(
        r#"{header}
[gb28181]
server_id = "{TOWNSHIP}"
listen = "127.0.0.1:{t_sip}"
password = "{TOWNSHIP_PASSWORD}"
rtp_ports = "{rtp}-{rtp_end}"

[[gb28181.devices]]
id = "{VILLAGE}"
name = "东村 村级平台"

[[gb28181.areas]]
prefix = "{village_prefix}"
village = "东村"
"#,
        header = config_header(township_dir.path(), t_port, 0.5),
        rtp_end = rtp + 5,
        village_prefix = &VILLAGE[..10],
    );
    let township = Xueliang::start(township_dir, t_port, &township_config, &[])?;

    let (v_port, v_sip) = (free_port(), free_port());
    let village_dir = tempfile::tempdir()?;
    let village_config = format!(
        r#"{header}
[gb28181]
server_id = "{VILLAGE}"
listen = "127.0.0.1:{v_sip}"
password = "village-device-pw"

[[gb28181.upstream]]
id = "{TOWNSHIP}"
address = "127.0.0.1"
port = {t_sip}
password = "{TOWNSHIP_PASSWORD}"
keepalive_s = 5

[[cameras]]
id = "walkway"
name = "村口步道"
url = "{url}"
village = "东村"
detection = {{ fps = 1, labels = ["person"], min_score = 0.5 }}
"#,
        header = config_header(village_dir.path(), v_port, 0.5),
        url = rtsp.url("walkway"),
    );
    let started = Instant::now();
    let village = Xueliang::start(village_dir, v_port, &village_config, &[])?;

    // The village registers up; the township sees it as an online device
    // whose catalog holds the camera (type 131) under the organisation nodes.
    wait_for(Duration::from_secs(30), || {
        let v = village.get("/api/v1/gb28181/upstreams")?;
        Ok((v["items"][0]["state"] == "registered").then_some(()))
    })
    .with_context(|| format!("{}\n--- township ---\n{}", village.log(), township.log()))?;
    let channel = wait_for(Duration::from_secs(30), || {
        let devices = township.get("/api/v1/gb28181/devices")?;
        let device = devices["items"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["id"] == VILLAGE).cloned());
        Ok(device.and_then(|d| {
            d["channels"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| c["id"].as_str().is_some_and(|id| &id[10..13] == "131"))
                    .cloned()
            })
        }))
    })
    .with_context(|| format!("{}\n--- village ---\n{}", township.log(), village.log()))?;
    let camera_id = channel["id"].as_str().context("channel id")?.to_owned();
    assert_eq!(channel["name"], "村口步道", "{channel}");

    // The channel became a township camera, in the village the areas give,
    // with the village's video: online, then the footage's people as events.
    let camera = wait_for(Duration::from_secs(30), || {
        Ok(township.get(&format!("/api/v1/cameras/{camera_id}")).ok())
    })
    .with_context(|| township.log())?;
    assert_eq!(camera["village"], "东村", "{camera}");
    assert_eq!(
        camera["url"],
        format!("gb28181://{VILLAGE}/{camera_id}"),
        "{camera}"
    );
    wait_for(Duration::from_secs(40), || {
        let h = township.health(&camera_id).ok();
        Ok(h.filter(|h| h["state"] == "online").map(|_| ()))
    })
    .with_context(|| format!("{}\n--- village ---\n{}", township.log(), village.log()))?;
    let online_after = started.elapsed();
    let person = wait_for(Duration::from_secs(60), || {
        Ok(township
            .all_events(&format!("&camera={camera_id}&label=person"))?
            .pop())
    })
    .with_context(|| township.log())?;
    eprintln!(
        "village node start -> its camera online at the township: {:.1} s; first person event at the township: {:.1} s",
        online_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(person["kind"], "object", "{person}");
    // The village sends one stream up, from the packets it already has.
    let up = &village.get("/api/v1/gb28181/upstreams")?["items"][0];
    assert_eq!(up["streams"], 1, "{up}");
    assert!(up["stream_bytes"].as_u64().unwrap_or(0) > 100_000, "{up}");
    Ok(())
}
