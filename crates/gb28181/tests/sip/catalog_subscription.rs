//! Catalog subscriptions (目录订阅 / 目录通知) with sipp as the superior
//! platform: it subscribes, the shared catalog changes (a camera goes
//! dark, one is added, one removed) and the NOTIFYs reach it in the
//! subscription's dialog with the standard's events and the catalog ids;
//! a refresh in the dialog extends it, `Expires: 0` ends it, and it ends
//! by itself when its time runs out; a refused NOTIFY is sent again and
//! leaves the registration alone; a covered camera is told as VLOST and a
//! faulty one as DEFECT. A stranger's SUBSCRIBE is refused; a
//! superior's SUBSCRIBE sent right behind its 200 to our REGISTER is not.

use crate::cascade::{cameras, link, upstream};
use crate::common::relay::BunchingRelay;
use crate::common::{
    self, superior, superior_catalog_subscription, superior_subscribe_from,
    superior_subscribing_at_once, until, DeviceRun, Server, SERVER_ID, SUPERIOR, SUPERIOR_PASSWORD,
};
use anyhow::{Context, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xueliang_core::gb28181::{CameraTrouble, CascadeCamera, CascadeCameras, UpstreamState};
use xueliang_gb28181::sip::cascade::{catalog_items, Node};
use xueliang_gb28181::sip::charset;
use xueliang_gb28181::sip::manscdp::{self, Root};

/// Cameras the test changes while the server reads them.
struct LiveCameras(Mutex<Vec<CascadeCamera>>);

impl LiveCameras {
    fn change(&self, f: impl FnOnce(&mut Vec<CascadeCamera>)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

impl CascadeCameras for LiveCameras {
    fn cameras(&self) -> Vec<CascadeCamera> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The channel id the superior knows `camera` by, in the catalog of `cams`.
fn channel_of(cams: &[CascadeCamera], camera: &str) -> Result<String> {
    catalog_items(&upstream(5060).config, cams)
        .into_iter()
        .find(|i| matches!(&i.node, Node::Camera { camera: c, .. } if c == camera))
        .map(|i| i.id)
        .with_context(|| format!("{camera} not in the catalog"))
}

/// The Notify Catalog bodies the subscriber received, decoded, CRs gone.
fn notifications(sub: &DeviceRun) -> Vec<String> {
    sub.bodies()
        .iter()
        .map(|b| charset::decode(b))
        .filter(|(text, cs)| {
            cs.label() == "GB2312"
                && manscdp::parse(text).is_ok_and(|c| c.is(Root::Notify, "Catalog"))
        })
        .map(|(text, _)| text.replace('\r', ""))
        .collect()
}

/// Whether a notification says `event` of `channel`.
fn told(sub: &DeviceRun, channel: &str, event: &str) -> bool {
    notifications(sub).iter().any(|n| {
        n.split("<Item>").any(|item| {
            item.contains(&format!("<DeviceID>{channel}</DeviceID>"))
                && item.contains(&format!("<Event>{event}</Event>"))
        })
    })
}

/// A server registered to a sipp superior on `port`, sharing `cams`,
/// checking the catalog every 200 ms.
async fn registered(port: u16, cams: Arc<LiveCameras>) -> Result<(Server, DeviceRun)> {
    let server = Server::start(common::settings()).await?;
    let sup = superior(port, SUPERIOR_PASSWORD, 60, false)?;
    let mut settings = upstream(port);
    settings.catalog_check = Duration::from_millis(200);
    server.sip.start_upstream(settings, cams);
    sup.explain(
        until(Duration::from_secs(10), "registered", || {
            link(&server.sip).state == UpstreamState::Registered
        })
        .await,
    )?;
    Ok((server, sup))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_changes_are_notified_until_the_superior_unsubscribes() -> Result<()> {
    let cams = Arc::new(LiveCameras(Mutex::new(cameras())));
    let port = common::free_udp_port()?;
    let (server, _sup) = registered(port, cams.clone()).await?;

    // Another platform's SUBSCRIBE is refused, ours registered or not.
    let stranger =
        superior_subscribe_from(server.addr(), "11010000002000000009", "Catalog", "Catalog")?;
    stranger.explain(
        until(Duration::from_secs(10), "stranger refused", || {
            stranger.saw("SIP/2.0 403 Forbidden")
        })
        .await,
    )?;
    stranger.finish(Duration::from_secs(20)).await?;

    let sub = superior_catalog_subscription(server.addr(), 600, true, false)?;
    sub.explain(
        until(Duration::from_secs(10), "subscribed", || {
            sub.saw("SIP/2.0 200 OK")
        })
        .await,
    )?;
    let ok = String::from_utf8_lossy(&sub.message_log()).into_owned();
    assert!(ok.contains("Expires: 600"), "{ok}");
    assert!(ok.contains("<Result>OK</Result>"), "{ok}");

    // A camera goes dark.
    let east = channel_of(&cameras(), "east-gate")?;
    cams.change(|c| c[0].online = false);
    let dark = Instant::now();
    sub.explain(
        until(Duration::from_secs(10), "OFF notified", || {
            told(&sub, &east, "OFF")
        })
        .await,
    )?;
    let took = dark.elapsed();
    eprintln!("camera OFF -> NOTIFY at the superior: {took:?} (catalog checked every 200 ms)");
    let log = String::from_utf8_lossy(&sub.message_log()).into_owned();
    // In the dialog: to the superior's Contact, its From (tag and all) as
    // our To, our To-tagged identity as From.
    assert!(
        log.contains(&format!("NOTIFY sip:{SUPERIOR}@127.0.0.1:")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "To: <sip:{SUPERIOR}@{}>;tag=",
            common::SUPERIOR_REALM
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "From: <sip:{SERVER_ID}@127.0.0.1:{}>;tag=",
            server.addr().port()
        )),
        "{log}"
    );
    assert!(
        log.contains("Content-Type: Application/MANSCDP+xml"),
        "{log}"
    );
    assert!(
        log.contains("Subscription-State: active;expires=600")
            || log.contains("Subscription-State: active;expires=599"),
        "{log}"
    );

    // The superior refreshes (sipp sends it after its 200 to the NOTIFY);
    // then a camera is added and one removed, in one change.
    sub.explain(
        until(Duration::from_secs(10), "refreshed", || {
            sub.count("CSeq: 2 SUBSCRIBE") >= 2
        })
        .await,
    )?;
    let market = channel_of(&cameras(), "market")?;
    let north = CascadeCamera {
        id: "north-road".into(),
        name: "北路口".into(),
        village: Some("北村".into()),
        grid: None,
        online: true,
        trouble: None,
        gb_channel: None,
    };
    cams.change(|c| {
        c.retain(|cam| cam.id != "market");
        c.push(north.clone());
    });
    let north_id = channel_of(&cams.cameras(), "north-road")?;
    sub.explain(
        until(Duration::from_secs(10), "ADD and DEL notified", || {
            told(&sub, &north_id, "ADD") && told(&sub, &market, "DEL")
        })
        .await,
    )?;
    let added = notifications(&sub)
        .into_iter()
        .find(|n| n.contains("<Event>ADD</Event>"))
        .context("the ADD")?;
    assert!(added.contains("<Name>北路口</Name>"), "{added}");
    assert!(
        added.contains("<Name>北村</Name>"),
        "the new village too: {added}"
    );
    let log = String::from_utf8_lossy(&sub.message_log()).into_owned();
    assert!(
        log.contains("Subscription-State: active;expires=300")
            || log.contains("Subscription-State: active;expires=299"),
        "the refresh's time: {log}"
    );

    // sipp ends the subscription (Expires: 0); a change after that is not
    // notified (sipp fails on a NOTIFY within 4 s).
    sub.explain(
        until(Duration::from_secs(10), "unsubscribed", || {
            sub.count("CSeq: 3 SUBSCRIBE") >= 2
        })
        .await,
    )?;
    cams.change(|c| c[0].online = true);
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!((l.catalog_notifies_sent, l.catalog_notifies_failed), (2, 0));
    assert_eq!(l.state, UpstreamState::Registered);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_subscription_ends_when_its_time_runs_out() -> Result<()> {
    let cams = Arc::new(LiveCameras(Mutex::new(cameras())));
    let port = common::free_udp_port()?;
    let (server, _sup) = registered(port, cams.clone()).await?;
    let sub = superior_catalog_subscription(server.addr(), 2, false, false)?;
    sub.explain(
        until(Duration::from_secs(10), "subscribed", || {
            sub.saw("SIP/2.0 200 OK")
        })
        .await,
    )?;
    let subscribed = Instant::now();
    let river = channel_of(&cameras(), "river")?;
    cams.change(|c| c[2].online = true);
    sub.explain(
        until(Duration::from_secs(5), "ON notified", || {
            told(&sub, &river, "ON")
        })
        .await,
    )?;
    assert!(
        sub.count("Subscription-State: active;expires=2") >= 1
            || sub.count("Subscription-State: active;expires=1") >= 1,
        "the time left"
    );
    // Past its 2 s: another change goes nowhere (sipp fails on a NOTIFY).
    tokio::time::sleep(Duration::from_millis(2600).saturating_sub(subscribed.elapsed())).await;
    cams.change(|c| c[2].online = false);
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!((l.catalog_notifies_sent, l.catalog_notifies_failed), (1, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_notify_is_sent_again_and_the_link_stays_up() -> Result<()> {
    let cams = Arc::new(LiveCameras(Mutex::new(cameras())));
    let port = common::free_udp_port()?;
    let (server, _sup) = registered(port, cams.clone()).await?;
    let sub = superior_catalog_subscription(server.addr(), 600, false, true)?;
    sub.explain(
        until(Duration::from_secs(10), "subscribed", || {
            sub.saw("SIP/2.0 200 OK")
        })
        .await,
    )?;
    let east = channel_of(&cameras(), "east-gate")?;
    cams.change(|c| c[0].online = false);
    // sipp answers the first NOTIFY 500 and the second (the same change,
    // at the next check) 200; then no more may come.
    sub.explain(
        until(Duration::from_secs(10), "told again", || {
            sub.count("SIP/2.0 500 Server Internal Error") == 1 && sub.count("CSeq: 2 NOTIFY") >= 2
        })
        .await,
    )?;
    let offs = notifications(&sub)
        .iter()
        .filter(|n| n.contains(&format!("<DeviceID>{east}</DeviceID>\n<Event>OFF</Event>")))
        .count();
    assert_eq!(offs, 2, "the OFF, refused, then taken");
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!((l.catalog_notifies_sent, l.catalog_notifies_failed), (1, 1));
    assert_eq!(l.state, UpstreamState::Registered, "{:?}", l.last_error);
    assert_eq!(l.failures, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_covered_camera_is_told_as_vlost_and_a_faulty_one_as_defect() -> Result<()> {
    let cams = Arc::new(LiveCameras(Mutex::new(cameras())));
    let port = common::free_udp_port()?;
    let (server, _sup) = registered(port, cams.clone()).await?;
    let sub = superior_catalog_subscription(server.addr(), 600, false, false)?;
    sub.explain(
        until(Duration::from_secs(10), "subscribed", || {
            sub.saw("SIP/2.0 200 OK")
        })
        .await,
    )?;
    // east-gate's lens is covered (it still delivers); school refuses our
    // password (offline, a fault of the camera).
    let east = channel_of(&cameras(), "east-gate")?;
    let school = channel_of(&cameras(), "school")?;
    cams.change(|c| {
        c[0].trouble = Some(CameraTrouble::VideoLost);
        c[1].online = false;
        c[1].trouble = Some(CameraTrouble::Defect);
    });
    sub.explain(
        until(Duration::from_secs(10), "VLOST and DEFECT notified", || {
            told(&sub, &east, "VLOST") && told(&sub, &school, "DEFECT")
        })
        .await,
    )?;
    // One NOTIFY for both, then nothing more (sipp fails on another).
    sub.finish(Duration::from_secs(20)).await?;
    let l = link(&server.sip);
    assert_eq!((l.catalog_notifies_sent, l.catalog_notifies_failed), (1, 0));
    Ok(())
}

#[tokio::test]
async fn a_subscribe_right_behind_the_register_200_is_accepted() -> Result<()> {
    // One thread, and the 200 and the SUBSCRIBE handed to our server
    // together (the relay): the SUBSCRIBE is handled before the
    // registration task has seen its 200.
    let server = Server::start(common::settings()).await?;
    let port = common::free_udp_port()?;
    let sup = superior_subscribing_at_once(port)?;
    let relay = BunchingRelay::start(([127, 0, 0, 1], port).into()).await?;
    let mut settings = upstream(relay.addr.port());
    settings.catalog_check = Duration::from_millis(200);
    let cams = Arc::new(LiveCameras(Mutex::new(cameras())));
    server.sip.start_upstream(settings, cams.clone());
    sup.explain(
        until(Duration::from_secs(10), "SUBSCRIBE answered", || {
            sup.saw("SIP/2.0 403") || sup.saw("<Result>OK</Result>")
        })
        .await,
    )?;
    let log = String::from_utf8_lossy(&sup.message_log()).into_owned();
    assert!(
        !log.contains("SIP/2.0 403"),
        "the SUBSCRIBE sent right behind the 200 was refused:\n{log}"
    );
    assert!(log.contains("<Result>OK</Result>"), "{log}");
    let l = link(&server.sip);
    assert_eq!(l.state, UpstreamState::Registered);
    assert_eq!(l.registrations, 1, "counted once");
    Ok(())
}
