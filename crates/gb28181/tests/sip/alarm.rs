//! Alarms upward with sipp as the superior platform: the Notify Alarm it
//! receives (method, type, event type, the camera's catalog id, priority,
//! local time, the Chinese description in GB2312), a superior that refuses
//! alarms (500) and then takes them, no alarm while not registered, and
//! SUBSCRIBE: Alarm accepted; Catalog refused while not registered (403,
//! see catalog_subscription.rs for the accepted ones), others 489.

use crate::cascade::{cameras, link, upstream, Cameras};
use crate::common::{self, superior_subscribe, superior_taking_alarms, until, Server, SERVER_ID};
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xueliang_core::gb28181::UpstreamState;
use xueliang_core::gb_alarm::{alarm_code, AlarmSendError, GbAlarm};
use xueliang_gb28181::sip::alarm::alarm_device_id;
use xueliang_gb28181::sip::manscdp::{self, Root};
use xueliang_gb28181::sip::{charset, SipServer};

pub fn alarm(camera: &str, kind: &str, description: &str) -> Result<GbAlarm> {
    Ok(GbAlarm {
        upstream: common::SUPERIOR.into(),
        camera_id: camera.into(),
        code: alarm_code(kind).context("a GB alarm")?,
        priority: 2,
        local_time: chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
            .and_then(|d| d.and_hms_opt(21, 3, 4))
            .context("a date")?,
        description: description.into(),
    })
}

pub async fn registered(server: &Server, port: u16) -> Result<()> {
    server
        .sip
        .start_upstream(upstream(port), Arc::new(Cameras(cameras())));
    until(Duration::from_secs(10), "registered", || {
        link(&server.sip).state == UpstreamState::Registered
    })
    .await
}

/// The Notify Alarm bodies the superior received, decoded.
pub fn alarms_received(sup: &common::DeviceRun) -> Vec<String> {
    sup.bodies()
        .iter()
        .map(|b| charset::decode(b))
        .filter(|(text, cs)| {
            cs.label() == "GB2312"
                && manscdp::parse(text).is_ok_and(|c| c.is(Root::Notify, "Alarm"))
        })
        .map(|(text, _)| text)
        .collect()
}

async fn send_timed(sip: &SipServer, alarm: &GbAlarm) -> Result<Duration, AlarmSendError> {
    let t0 = Instant::now();
    sip.send_alarm(alarm).await.map(|()| t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_reach_the_superior_with_the_standards_codes() -> Result<()> {
    let server = Server::start(common::settings()).await?;
    let port = common::free_udp_port()?;
    let sup = superior_taking_alarms(port, false)?;
    sup.explain(registered(&server, port).await)?;

    let intrusion = alarm("east-gate", "intrusion", "区域入侵 · 东门口 枪机")?;
    let mut took = Vec::new();
    for _ in 0..5 {
        took.push(send_timed(&server.sip, &intrusion).await?);
    }
    took.sort();
    eprintln!(
        "alarm MESSAGE -> 200 over UDP on loopback: median {:?}, max {:?}",
        took[2], took[4]
    );
    sup.explain(
        send_timed(
            &server.sip,
            &alarm("river", "camera_offline", "摄像头离线 · 河堤（北）")?,
        )
        .await
        .map_err(anyhow::Error::from),
    )?;

    let config = upstream(port).config;
    let east = alarm_device_id(&config, &cameras(), "east-gate").context("shared")?;
    let river = alarm_device_id(&config, &cameras(), "river").context("shared")?;
    let received = alarms_received(&sup);
    let first = received
        .iter()
        .find(|t| t.contains(&format!("<DeviceID>{east}</DeviceID>")))
        .with_context(|| format!("no alarm for {east} in {received:?}"))?;
    for part in [
        "<AlarmPriority>2</AlarmPriority>",
        "<AlarmMethod>5</AlarmMethod>",
        "<AlarmTime>2026-12-06T21:03:04</AlarmTime>",
        "<AlarmDescription>区域入侵 · 东门口 枪机</AlarmDescription>",
        "<AlarmType>6</AlarmType>",
        "<EventType>1</EventType>",
    ] {
        assert!(first.contains(part), "{part} missing in {first}");
    }
    let offline = received
        .iter()
        .find(|t| t.contains(&format!("<DeviceID>{river}</DeviceID>")))
        .with_context(|| format!("no alarm for {river} in {received:?}"))?;
    assert!(
        offline.contains("<AlarmMethod>2</AlarmMethod>"),
        "{offline}"
    );
    assert!(offline.contains("<AlarmType>1</AlarmType>"), "{offline}");
    assert!(offline.contains("摄像头离线 · 河堤（北）"), "{offline}");
    let l = link(&server.sip);
    assert_eq!((l.alarms_sent, l.alarms_failed), (6, 0));

    // A camera the superior does not see, and a superior we do not know.
    let unknown = server
        .sip
        .send_alarm(&alarm("gone", "intrusion", "x")?)
        .await;
    assert!(
        matches!(unknown, Err(AlarmSendError::NotShared { .. })),
        "{unknown:?}"
    );
    let other = GbAlarm {
        upstream: "11010000002000000009".into(),
        ..intrusion
    };
    let unknown = server.sip.send_alarm(&other).await;
    assert!(
        matches!(&unknown, Err(e @ AlarmSendError::UnknownUpstream(_)) if !e.is_retriable()),
        "{unknown:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superior_refusing_alarms_gets_them_once_it_takes_them() -> Result<()> {
    let server = Server::start(common::settings()).await?;
    let port = common::free_udp_port()?;
    let intrusion = alarm("east-gate", "intrusion", "区域入侵 · 东门口 枪机")?;
    // Not registered yet: retriable, nothing sent.
    server
        .sip
        .start_upstream(upstream(port), Arc::new(Cameras(cameras())));
    let early = server.sip.send_alarm(&intrusion).await;
    assert!(
        matches!(&early, Err(e @ AlarmSendError::NotRegistered { .. }) if e.is_retriable()),
        "{early:?}"
    );
    let refusing = superior_taking_alarms(port, true)?;
    refusing.explain(
        until(Duration::from_secs(10), "registered", || {
            link(&server.sip).state == UpstreamState::Registered
        })
        .await,
    )?;
    let refused = server.sip.send_alarm(&intrusion).await;
    match &refused {
        Err(e @ AlarmSendError::Failed { reason, .. }) => {
            assert!(e.is_retriable());
            assert_eq!(reason, "500 Server Internal Error");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        alarms_received(&refusing).len(),
        1,
        "it did reach the superior"
    );
    drop(refusing);
    // The superior takes alarms again (same port; keepalives go on).
    until(
        Duration::from_secs(5),
        "the old superior's port free",
        || std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok(),
    )
    .await?;
    let accepting = superior_taking_alarms(port, false)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    accepting.explain(
        server
            .sip
            .send_alarm(&intrusion)
            .await
            .map_err(anyhow::Error::from),
    )?;
    assert_eq!(alarms_received(&accepting).len(), 1);
    let l = link(&server.sip);
    assert_eq!((l.alarms_sent, l.alarms_failed), (1, 2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_subscriptions_are_accepted_others_refused_while_not_registered() -> Result<()> {
    let server = Server::start(common::settings()).await?;
    // The superior need not be up for its SUBSCRIBE to be answered.
    server.sip.start_upstream(
        upstream(common::free_udp_port()?),
        Arc::new(Cameras(cameras())),
    );
    let alarm_sub = superior_subscribe(server.addr(), "presence", "Alarm")?;
    alarm_sub.explain(
        until(Duration::from_secs(10), "SUBSCRIBE Alarm answered", || {
            alarm_sub.saw("<Result>OK</Result>")
        })
        .await,
    )?;
    let log = String::from_utf8_lossy(&alarm_sub.message_log()).into_owned();
    assert!(log.contains("SIP/2.0 200 OK"), "{log}");
    assert!(log.contains("Expires: 600"), "{log}");
    assert!(
        log.contains(&format!("<DeviceID>{SERVER_ID}</DeviceID>")),
        "{log}"
    );
    alarm_sub.finish(Duration::from_secs(20)).await?;

    // A catalog subscription needs a registered link (NOTIFYs go in it):
    // the superior is not up, so we are not registered to it.
    let catalog_sub = superior_subscribe(server.addr(), "Catalog", "Catalog")?;
    catalog_sub.explain(
        until(Duration::from_secs(10), "SUBSCRIBE Catalog refused", || {
            catalog_sub.saw("SIP/2.0 403 Forbidden")
        })
        .await,
    )?;
    catalog_sub.finish(Duration::from_secs(20)).await?;

    let position_sub = superior_subscribe(server.addr(), "presence", "MobilePosition")?;
    position_sub.explain(
        until(
            Duration::from_secs(10),
            "SUBSCRIBE MobilePosition refused",
            || position_sub.saw("SIP/2.0 489 Bad Event"),
        )
        .await,
    )?;
    position_sub.finish(Duration::from_secs(20)).await?;
    Ok(())
}
