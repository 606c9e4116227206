//! Alarm subscriptions (报警事件订阅) with sipp as the superior platform:
//! one sipp holds our registration and takes MESSAGEs (superior.xml),
//! another, with the superior's id, subscribes to alarms asking for
//! priorities 1-2 of video alarms on one day (superior_subscribe_alarm.xml).
//! An alarm its conditions take reaches it as NOTIFY in the subscription's
//! dialog with the Notify Alarm body; one they leave out reaches no one;
//! a refresh with new conditions replaces them; a NOTIFY refused for now
//! is a retriable failure (the alert outbox sends it again) and the retry
//! goes in the subscription; after `Expires: 0`, a 481 to the NOTIFY, or
//! when its time ran out, alarms go as MESSAGE again.

use crate::alarm::{alarm, alarms_received, registered};
use crate::cascade::{cameras, link, upstream};
use crate::common::{
    self, superior_alarm_subscription, superior_taking_alarms, until, AlarmNotify, DeviceRun,
    Server, SERVER_ID, SUPERIOR,
};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};
use xueliang_core::gb_alarm::{AlarmSendError, GbAlarm};
use xueliang_gb28181::sip::alarm::alarm_device_id;

/// Sends `alarm`, an error (for the peer's `explain`) unless it went.
async fn send(server: &Server, alarm: &GbAlarm) -> Result<()> {
    server
        .sip
        .send_alarm(alarm)
        .await
        .map_err(anyhow::Error::from)
}

/// An intrusion at the east gate (a video alarm, 5/6) of `priority`.
fn intrusion(priority: u8) -> Result<GbAlarm> {
    Ok(GbAlarm {
        priority,
        ..alarm("east-gate", "intrusion", "区域入侵 · 东门口 枪机")?
    })
}

/// The river camera offline (a device alarm, 2/1) of `priority`.
fn offline(priority: u8) -> Result<GbAlarm> {
    Ok(GbAlarm {
        priority,
        ..alarm("river", "camera_offline", "摄像头离线 · 河堤（北）")?
    })
}

/// Sends `alarm`; an error unless the superior's subscription left it out.
async fn left_out(server: &Server, alarm: &GbAlarm, why: &str) -> Result<()> {
    match server.sip.send_alarm(alarm).await {
        Err(e @ AlarmSendError::NotSubscribed { .. }) if !e.is_retriable() => {
            let text = e.to_string();
            if !text.contains(why) {
                bail!("left out for another reason than `{why}`: {text}");
            }
            Ok(())
        }
        other => bail!("expected the subscription to leave it out, got {other:?}"),
    }
}

/// A server registered to a sipp superior (taking alarm MESSAGEs), and
/// another sipp holding an alarm subscription of `expires` seconds that
/// does `then`, subscribed.
async fn subscribed(expires: u32, then: AlarmNotify) -> Result<(Server, DeviceRun, DeviceRun)> {
    let server = Server::start(common::settings()).await?;
    let port = common::free_udp_port()?;
    let sup = superior_taking_alarms(port, false)?;
    sup.explain(registered(&server, port).await)?;
    let sub = superior_alarm_subscription(server.addr(), expires, then)?;
    sub.explain(
        until(Duration::from_secs(10), "subscribed", || {
            sub.saw("SIP/2.0 200 OK")
        })
        .await,
    )?;
    Ok((server, sup, sub))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_the_subscription_asks_for_go_in_it_until_it_ends() -> Result<()> {
    let (server, sup, sub) = subscribed(600, AlarmNotify::TakenThenRefreshedAndEnded).await?;
    let ok = String::from_utf8_lossy(&sub.message_log()).into_owned();
    assert!(ok.contains("Expires: 600"), "{ok}");

    // Outside its conditions: priority 4, a device alarm, another day.
    left_out(&server, &intrusion(4)?, "AlarmPriority 4 is not in 1-2").await?;
    left_out(&server, &offline(1)?, "AlarmMethod 2 was not asked for").await?;
    let yesterday = GbAlarm {
        local_time: intrusion(1)?.local_time - chrono::Duration::days(1),
        ..intrusion(1)?
    };
    left_out(&server, &yesterday, "outside the time asked for").await?;

    // Within: a priority 2 intrusion, as NOTIFY in the dialog.
    let sent = Instant::now();
    sub.explain(send(&server, &intrusion(2)?).await)?;
    eprintln!(
        "alarm NOTIFY -> 200 over UDP on loopback: {:?}",
        sent.elapsed()
    );
    let east = alarm_device_id(&upstream(5060).config, &cameras(), "east-gate").context("east")?;
    let notified = alarms_received(&sub);
    assert_eq!(notified.len(), 1, "{notified:?}");
    for part in [
        format!("<DeviceID>{east}</DeviceID>"),
        "<AlarmPriority>2</AlarmPriority>".into(),
        "<AlarmMethod>5</AlarmMethod>".into(),
        "<AlarmType>6</AlarmType>".into(),
        "<AlarmTime>2026-12-06T21:03:04</AlarmTime>".into(),
        "<AlarmDescription>区域入侵 · 东门口 枪机</AlarmDescription>".into(),
    ] {
        assert!(
            notified[0].contains(&part),
            "{part} missing: {}",
            notified[0]
        );
    }
    let log = String::from_utf8_lossy(&sub.message_log()).into_owned();
    // In the dialog: to the superior's Contact, its From (tag and all) as
    // our To, our To-tagged identity as From, its Event echoed.
    for part in [
        format!("NOTIFY sip:{SUPERIOR}@127.0.0.1:"),
        format!("To: <sip:{SUPERIOR}@{}>;tag=", common::SUPERIOR_REALM),
        format!(
            "From: <sip:{SERVER_ID}@127.0.0.1:{}>;tag=",
            server.addr().port()
        ),
        "Event: presence".into(),
        "Content-Type: Application/MANSCDP+xml".into(),
    ] {
        assert!(log.contains(&part), "{part} missing:\n{log}");
    }
    assert!(
        log.contains("Subscription-State: active;expires=600")
            || log.contains("Subscription-State: active;expires=599"),
        "{log}"
    );
    assert!(
        alarms_received(&sup).is_empty(),
        "nothing went as MESSAGE while subscribed"
    );

    // sipp refreshes, now asking for device alarms of any priority: the
    // offline camera goes in the subscription, the intrusion nowhere.
    sub.explain(
        until(Duration::from_secs(10), "refreshed", || {
            sub.count("CSeq: 2 SUBSCRIBE") >= 2
        })
        .await,
    )?;
    left_out(&server, &intrusion(1)?, "AlarmMethod 5 was not asked for").await?;
    sub.explain(send(&server, &offline(4)?).await)?;
    let notified = alarms_received(&sub);
    assert_eq!(notified.len(), 2, "{notified:?}");
    assert!(notified[1].contains("<AlarmMethod>2</AlarmMethod>"));
    assert!(
        sub.count("Subscription-State: active;expires=300") >= 1
            || sub.count("Subscription-State: active;expires=299") >= 1,
        "the refresh's time"
    );
    assert!(sub.count("CSeq: 2 NOTIFY") >= 1, "CSeq goes up");

    // sipp ends it (Expires: 0): alarms go as MESSAGE to the superior
    // again, whatever their priority; sipp fails on a NOTIFY within 4 s.
    sub.explain(
        until(Duration::from_secs(10), "unsubscribed", || {
            sub.count("CSeq: 3 SUBSCRIBE") >= 2
        })
        .await,
    )?;
    sup.explain(send(&server, &intrusion(4)?).await)?;
    let messages = alarms_received(&sup);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("<AlarmPriority>4</AlarmPriority>"));
    assert_eq!(alarms_received(&sub).len(), 2);
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!(
        (l.alarms_sent, l.alarms_failed),
        (3, 0),
        "the ones left out are not failures"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_481_to_the_notify_sends_the_alarm_as_message_and_ends_the_subscription() -> Result<()> {
    let (server, sup, sub) = subscribed(600, AlarmNotify::Gone).await?;
    sup.explain(send(&server, &intrusion(2)?).await)?;
    assert!(sub.saw("SIP/2.0 481"), "the NOTIFY went first");
    assert_eq!(alarms_received(&sup).len(), 1, "then the MESSAGE");
    // No subscription any more: one it would have left out goes too.
    sup.explain(send(&server, &intrusion(4)?).await)?;
    assert_eq!(alarms_received(&sup).len(), 2);
    assert_eq!(alarms_received(&sub).len(), 1, "only the one answered 481");
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!((l.alarms_sent, l.alarms_failed), (2, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_notify_is_a_retriable_failure_and_the_retry_goes_in_the_subscription(
) -> Result<()> {
    let (server, sup, sub) = subscribed(600, AlarmNotify::FailingOnce).await?;
    // The alert outbox retries what fails retriably: as it would, again.
    let alarm = intrusion(1)?;
    match server.sip.send_alarm(&alarm).await {
        Err(e @ AlarmSendError::Failed { .. }) if e.is_retriable() => {
            assert!(e.to_string().contains("500 Server Internal Error"), "{e}");
        }
        other => bail!("expected a retriable failure, got {other:?}"),
    }
    sub.explain(send(&server, &alarm).await)?;
    assert_eq!(alarms_received(&sub).len(), 2, "the same alarm twice");
    assert!(sub.count("CSeq: 2 NOTIFY") >= 1, "the second in the dialog");
    assert!(alarms_received(&sup).is_empty(), "no MESSAGE");
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!((l.alarms_sent, l.alarms_failed), (1, 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_subscription_ends_when_its_time_runs_out() -> Result<()> {
    let (server, sup, sub) = subscribed(2, AlarmNotify::None).await?;
    let subscribed = Instant::now();
    left_out(&server, &intrusion(4)?, "AlarmPriority 4").await?;
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(subscribed.elapsed())).await;
    sup.explain(send(&server, &intrusion(4)?).await)?;
    assert_eq!(alarms_received(&sup).len(), 1, "as MESSAGE");
    assert!(alarms_received(&sub).is_empty());
    sub.finish(Duration::from_secs(20)).await?;
    Ok(())
}
