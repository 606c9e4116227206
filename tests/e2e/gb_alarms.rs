//! GB/T 28181 alarms upward end to end: the real `xueliang serve` watching
//! the test footage (the "campus" camera and its lawn zone, see
//! `crate::rules`), registered to sipp as the superior platform, with a
//! `gb28181` alert channel for intrusions. The lawn intrusion (about 52 s
//! into the clip) arrives at sipp as Notify Alarm, AlarmMethod 5, AlarmType
//! 6, EventType 1, from the camera's catalog channel. And when the superior
//! is down while the intrusion happens, `kill -9` of serve and a restart
//! with the superior up deliver that alarm exactly once. A superior that
//! subscribed to alarms (priorities 1-2, video alarms, this hour) gets the
//! intrusion as NOTIFY in its subscription instead.

use crate::gb_superior::{scenario, sipp};
use anyhow::{Context, Result};
use chrono::Timelike;
use std::time::{Duration, Instant};
use xueliang_e2e::{
    browser, config_header, fixture, free_port, wait_for, ChildGuard, RtspServer, Xueliang, ADMIN,
    ADMIN_PASSWORD,
};

const SERVER_ID: &str = "34020000002000000001";
const SUPERIOR: &str = "11010000002000000001";
const SUPERIOR_PASSWORD: &str = "county-pw";

/// sipp as the superior platform on `port` (superior.xml), logging every
/// message to `log`.
fn superior(port: u16, log: &std::path::Path) -> Result<ChildGuard> {
    let args: Vec<String> = [
        "-sf",
        &scenario("superior.xml").display().to_string(),
        "-p",
        &port.to_string(),
        "-timeout",
        "300s",
        "-key",
        "password",
        SUPERIOR_PASSWORD,
        "-key",
        "grant",
        "3600",
    ]
    .map(String::from)
    .to_vec();
    sipp(&args, SUPERIOR, SERVER_ID, log)
}

/// The Notify Alarm bodies in sipp's message log, decoded from GB2312.
pub(crate) fn alarms(log: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(log).unwrap_or_default();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    text.split("<?xml")
        .filter(|part| part.contains("<CmdType>Alarm</CmdType>") && part.contains("<Notify>"))
        .map(|part| part.split("</Notify>").next().unwrap_or(part).to_owned())
        .collect()
}

/// The text of `<name>` in `body`.
pub(crate) fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))?;
    Some(&body[start..start + end])
}

/// The event's start as `AlarmTime` writes it: Beijing time (the default
/// `[detection] timezone`, UTC+8 without summer time), to the second.
pub(crate) fn alarm_time(started_at: &str) -> Result<String> {
    let t = chrono::DateTime::parse_from_rfc3339(started_at)?;
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).context("offset")?;
    Ok(t.with_timezone(&beijing)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string())
}

fn config(dir: &std::path::Path, port: u16, sip_port: u16, sup_port: u16, camera: &str) -> String {
    format!(
        r#"{header}
[gb28181]
server_id = "{SERVER_ID}"
listen = "127.0.0.1:{sip_port}"
password = "device-pw"

[[gb28181.upstream]]
id = "{SUPERIOR}"
address = "127.0.0.1"
port = {sup_port}
password = "{SUPERIOR_PASSWORD}"
keepalive_s = 1

[alerts]
retry_initial_s = 0.5
retry_max_s = 1

[[alerts.channels]]
name = "county"
type = "gb28181"
upstream = "{SUPERIOR}"

[[alerts.routes]]
kinds = ["intrusion"]
notify_on_duty = false
channels = ["county"]
alarm_priority = 1
{camera}"#,
        header = config_header(dir, port, 0.5),
    )
}

fn footage() -> Result<RtspServer> {
    RtspServer::start(&[
        "--mount".into(),
        format!("cam={}", fixture("vtest-h264.mp4").display()),
    ])
}

/// The first lawn intrusion of the campus camera.
pub(crate) fn first_intrusion(x: &Xueliang) -> Result<serde_json::Value> {
    wait_for(Duration::from_secs(150), || {
        Ok(x.all_events("&camera=campus&kind=intrusion")?.pop())
    })
    .with_context(|| x.log())
}

/// The footage served, a sipp superior (its log at `sip_log`), and
/// `xueliang serve` with the campus camera, registered to it.
pub(crate) struct Registered {
    pub(crate) x: Xueliang,
    /// Our SIP port, and the superior's.
    pub(crate) sip_port: u16,
    pub(crate) sup_port: u16,
    pub(crate) _footage: RtspServer,
    pub(crate) _superior: ChildGuard,
}

pub(crate) fn registered(sip_log: &std::path::Path) -> Result<Registered> {
    let footage = footage()?;
    let dir = tempfile::tempdir()?;
    let (port, sip_port, sup_port) = (free_port(), free_port(), free_port());
    let superior = superior(sup_port, sip_log)?;
    let camera = crate::rules::campus_camera(&footage.url("cam"));
    let text = config(dir.path(), port, sip_port, sup_port, &camera);
    let x = Xueliang::start(dir, port, &text, &[])?;
    wait_for(Duration::from_secs(20), || {
        let v = x.get("/api/v1/gb28181/upstreams")?;
        Ok((v["items"][0]["state"] == "registered").then_some(()))
    })
    .with_context(|| x.log())?;
    Ok(Registered {
        x,
        sip_port,
        sup_port,
        _footage: footage,
        _superior: superior,
    })
}

#[test]
fn an_intrusion_in_the_footage_reaches_the_superior_as_a_gb_alarm() -> Result<()> {
    let logs = tempfile::tempdir()?;
    let sip_log = logs.path().join("superior.log");
    let Registered {
        x,
        sup_port,
        _footage,
        _superior,
        ..
    } = registered(&sip_log)?;

    let event = first_intrusion(&x)?;
    let started = event["started_at"].as_str().context("started_at")?;
    let want_time = alarm_time(started)?;
    let alarm = wait_for(Duration::from_secs(20), || {
        Ok(alarms(&sip_log)
            .into_iter()
            .find(|a| field(a, "AlarmTime") == Some(want_time.as_str())))
    })
    .with_context(|| x.log())?;
    let received = chrono::Utc::now();
    let event_start = chrono::DateTime::parse_from_rfc3339(started)?;
    eprintln!(
        "intrusion start -> GB alarm at the superior: {} ms (polled every 100 ms)",
        (received - event_start.with_timezone(&chrono::Utc)).num_milliseconds()
    );
    assert_eq!(field(&alarm, "AlarmMethod"), Some("5"), "{alarm}");
    assert_eq!(field(&alarm, "AlarmType"), Some("6"), "{alarm}");
    assert_eq!(field(&alarm, "EventType"), Some("1"), "{alarm}");
    assert_eq!(field(&alarm, "AlarmPriority"), Some("1"), "{alarm}");
    assert_eq!(
        field(&alarm, "AlarmDescription"),
        Some("区域入侵 · 校园步道"),
        "{alarm}"
    );
    let device = field(&alarm, "DeviceID").context("DeviceID")?;
    assert_eq!(&device[..10], &SERVER_ID[..10], "{alarm}");
    assert_eq!(&device[10..13], "131", "a camera of our catalog: {alarm}");
    let upstream = &x.get("/api/v1/gb28181/upstreams")?["items"][0];
    assert!(
        upstream["alarms_sent"].as_u64().unwrap_or(0) >= 1,
        "{upstream}"
    );
    let metrics = x.metrics()?;
    assert!(
        metrics.contains(&format!(
            "xueliang_gb28181_upstream_alarms_sent_total{{upstream=\"{SUPERIOR}\"}}"
        )),
        "{metrics}"
    );
    // The same link on the dashboard's cameras page (上级平台), in a real
    // browser: registered, its address, and the alarms it was sent.
    let sent = upstream["alarms_sent"].to_string();
    browser::run_script(
        &x,
        "gb-upstreams.mjs",
        ADMIN,
        ADMIN_PASSWORD,
        &[
            ("XUELIANG_UPSTREAM", SUPERIOR),
            (
                "XUELIANG_UPSTREAM_ADDRESS",
                &format!("127.0.0.1:{sup_port}"),
            ),
            ("XUELIANG_ALARMS_SENT", &sent),
        ],
    )?;
    Ok(())
}

#[test]
fn superior_down_at_the_event_then_kill_9_and_a_restart_deliver_the_alarm_once() -> Result<()> {
    let logs = tempfile::tempdir()?;
    let sip_log = logs.path().join("superior.log");
    let server = footage()?;
    let dir = tempfile::tempdir()?;
    let (port, sip_port, sup_port) = (free_port(), free_port(), free_port());
    // Nobody on the superior's port: registration fails, alarms wait.
    let camera = crate::rules::campus_camera(&server.url("cam"));
    let data = dir.path().to_owned();
    let x = Xueliang::start(
        dir,
        port,
        &config(&data, port, sip_port, sup_port, &camera),
        &[],
    )?;
    let event = first_intrusion(&x)?;
    let id = event["id"].as_i64().context("event id")?;
    let started = event["started_at"].as_str().context("started_at")?;
    let want_time = alarm_time(started)?;
    wait_for(Duration::from_secs(20), || {
        let v = x.get(&format!("/api/v1/events/{id}/deliveries"))?;
        let d = v["alert"]["deliveries"][0].clone();
        Ok((d["attempts"].as_i64().unwrap_or(0) >= 1).then_some(d))
    })
    .with_context(|| x.log())?;

    let dir = x.kill9();
    // The superior is back; the camera now points nowhere, so no new
    // intrusion can come from a second run of the footage.
    let _superior = superior(sup_port, &sip_log)?;
    let dead = crate::rules::campus_camera(&format!("rtsp://127.0.0.1:{}/cam", free_port()));
    // From the start of the new process (waiting for the machine's turn
    // when tests run side by side counts too: run this one alone to time it).
    let back = Instant::now();
    let x = Xueliang::restart(dir, port, &config(&data, port, sip_port, sup_port, &dead))?;
    let answering = back.elapsed();
    wait_for(Duration::from_secs(30), || {
        let v = x.get(&format!("/api/v1/events/{id}/deliveries"))?;
        let d = v["alert"]["deliveries"][0].clone();
        Ok((d["status"] == "delivered").then_some(d))
    })
    .with_context(|| x.log())?;
    eprintln!(
        "serve restarted with the superior back -> alarm delivered: {} ms (API answering after {} ms)",
        back.elapsed().as_millis(),
        answering.as_millis()
    );
    // Give a duplicate every chance to show up.
    std::thread::sleep(Duration::from_secs(3));
    let same: Vec<String> = alarms(&sip_log)
        .into_iter()
        .filter(|a| field(a, "AlarmTime") == Some(want_time.as_str()))
        .collect();
    assert_eq!(same.len(), 1, "exactly once: {same:#?}");
    assert_eq!(field(&same[0], "AlarmType"), Some("6"));
    assert_eq!(field(&same[0], "EventType"), Some("1"));
    Ok(())
}

/// sipp as the superior subscribing to alarms at our SIP port
/// (superior_subscribe_alarm.xml): priorities 1-2, video alarms, between
/// `from` and `to` (local time); the first NOTIFY taken.
fn alarm_subscriber(
    sip_port: u16,
    from: &str,
    to: &str,
    log: &std::path::Path,
) -> Result<ChildGuard> {
    let args: Vec<String> = [
        &format!("127.0.0.1:{sip_port}"),
        "-sf",
        &scenario("superior_subscribe_alarm.xml")
            .display()
            .to_string(),
        "-m",
        "1",
        "-p",
        &free_port().to_string(),
        "-timeout",
        "300s",
        "-key",
        "expires",
        "600",
        "-key",
        "notify",
        "200",
        "-key",
        "refresh",
        "0",
        "-key",
        "sn",
        "7",
        "-key",
        "from",
        from,
        "-key",
        "to",
        to,
    ]
    .map(String::from)
    .to_vec();
    sipp(&args, SUPERIOR, SERVER_ID, log)
}

#[test]
fn a_superior_subscribed_to_alarms_gets_the_intrusion_as_notify_in_its_subscription() -> Result<()>
{
    let logs = tempfile::tempdir()?;
    let (sip_log, sub_log) = (
        logs.path().join("superior.log"),
        logs.path().join("subscriber.log"),
    );
    let Registered {
        x,
        sip_port,
        _footage,
        _superior,
        ..
    } = registered(&sip_log)?;
    // This hour and the next, Beijing time (the default timezone).
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).context("offset")?;
    let hour = chrono::Utc::now()
        .with_timezone(&beijing)
        .naive_local()
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .context("the hour")?;
    let format = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let _subscriber = alarm_subscriber(
        sip_port,
        &format(hour),
        &format(hour + chrono::Duration::minutes(119)),
        &sub_log,
    )?;
    wait_for(Duration::from_secs(20), || {
        let log = std::fs::read_to_string(&sub_log).unwrap_or_default();
        Ok(log.contains("SIP/2.0 200 OK").then_some(()))
    })
    .with_context(|| x.log())?;

    let event = first_intrusion(&x)?;
    let id = event["id"].as_i64().context("event id")?;
    let want_time = alarm_time(event["started_at"].as_str().context("started_at")?)?;
    let alarm = wait_for(Duration::from_secs(20), || {
        Ok(alarms(&sub_log)
            .into_iter()
            .find(|a| field(a, "AlarmTime") == Some(want_time.as_str())))
    })
    .with_context(|| x.log())?;
    assert_eq!(field(&alarm, "AlarmType"), Some("6"), "{alarm}");
    assert_eq!(field(&alarm, "AlarmPriority"), Some("1"), "{alarm}");
    let notify = String::from_utf8_lossy(&std::fs::read(&sub_log)?).into_owned();
    assert!(
        notify.contains(&format!("NOTIFY sip:{SUPERIOR}@127.0.0.1:")),
        "{notify}"
    );
    assert!(
        notify.contains("Subscription-State: active;expires="),
        "{notify}"
    );
    wait_for(Duration::from_secs(10), || {
        let v = x.get(&format!("/api/v1/events/{id}/deliveries"))?;
        let d = v["alert"]["deliveries"][0].clone();
        Ok((d["status"] == "delivered").then_some(d))
    })
    .with_context(|| x.log())?;
    assert!(
        alarms(&sip_log).is_empty(),
        "no MESSAGE beside the NOTIFY: {:#?}",
        alarms(&sip_log)
    );
    Ok(())
}
