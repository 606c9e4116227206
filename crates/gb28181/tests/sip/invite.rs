//! INVITE with sipp as the device (device_ooc.xml answers by channel):
//! a 200 with SDP gives a Dialog carrying the device's SSRC, our BYE on
//! `bye()` and on drop; 486 is Refused{486}; silence is Timeout; the
//! device's own BYE reaches the dialog's owner; offline devices are
//! refused at once.

use crate::common::{event, Device, Server, DEVICE};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use xueliang_gb28181::sip::{DeviceEvent, DialogEnd, InviteError, MediaOffer, MediaTransport};

const ANSWERS: &str = "34020000001310000001";
const BUSY: &str = "34020000001310000002";
const SILENT: &str = "34020000001310000003";
const HANGS_UP: &str = "34020000001310000004";
/// The SSRC device_ooc.xml answers with (`y=0200009999`), not the offered one.
const DEVICE_SSRC: u32 = 200_009_999;

fn offer(transport: MediaTransport) -> MediaOffer {
    MediaOffer {
        ip: "127.0.0.1".parse().expect("ip"),
        port: 30_000,
        transport,
        ssrc: None,
    }
}

/// A server with a registered sipp device that stays for `keepalives` seconds.
async fn registered_device(
    tcp: bool,
    keepalives: u32,
) -> Result<(Server, crate::common::DeviceRun)> {
    let server = Server::start(crate::common::settings()).await?;
    let mut events = server.sip.subscribe();
    let device = Device {
        tcp,
        keepalives,
        ..Device::new(crate::common::free_udp_port()?)
    };
    let run = device.spawn(server.addr())?;
    run.explain(
        event(&mut events, Duration::from_secs(10), |e| {
            matches!(e, DeviceEvent::CatalogUpdated { .. })
        })
        .await,
    )?;
    Ok((server, run))
}

async fn answered_invite_then_bye(tcp: bool) -> Result<()> {
    let (server, run) = registered_device(tcp, 6).await?;
    let transport = if tcp {
        MediaTransport::TcpPassive
    } else {
        MediaTransport::Udp
    };
    let dialog = run.explain(
        server
            .sip
            .invite(DEVICE, ANSWERS, offer(transport))
            .await
            .context("INVITE"),
    )?;
    assert_eq!(
        dialog.offer_ssrc, 200_000_001,
        "0 + domain digits 4-8 + sequence 0001"
    );
    assert_eq!(
        dialog.answer_ssrc,
        Some(DEVICE_SSRC),
        "the device's y= wins"
    );
    assert_eq!(dialog.remote_media, Some("127.0.0.1:15060".parse()?));
    assert_eq!(dialog.remote_transport, transport);
    assert_eq!(dialog.ended(), None);
    run.explain(dialog.bye().await.context("BYE"))?;
    assert_eq!(server.counter("byes_sent"), 1);
    assert_eq!(server.counter("transaction_timeouts"), 0);

    // Dropping a dialog sends BYE too.
    let dropped = server.sip.invite(DEVICE, ANSWERS, offer(transport)).await?;
    assert_eq!(dropped.offer_ssrc, 200_000_002);
    drop(dropped);
    crate::common::until(Duration::from_secs(3), "BYE of a dropped dialog", || {
        server.counter("byes_sent") == 2
    })
    .await?;
    // sipp fails the run if a BYE went unanswered or a message was unexpected.
    run.finish(Duration::from_secs(20)).await?;
    assert_eq!(server.counter("transaction_timeouts"), 0);
    assert_eq!(server.counter("unmatched_responses"), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_over_udp_gives_a_dialog_with_the_answer_ssrc() -> Result<()> {
    answered_invite_then_bye(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_over_tcp_with_tcp_media_gives_a_dialog() -> Result<()> {
    answered_invite_then_bye(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_device_refuses_with_its_code() -> Result<()> {
    let (server, run) = registered_device(false, 3).await?;
    let refused = server
        .sip
        .invite(DEVICE, BUSY, offer(MediaTransport::Udp))
        .await
        .expect_err("486");
    assert_eq!(
        refused,
        InviteError::Refused {
            code: 486,
            reason: "Busy Here".into()
        }
    );
    assert_eq!(server.counter("invites_refused"), 1);
    // The device's scenario waits for our ACK of the 486.
    run.finish(Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_times_out() -> Result<()> {
    let mut settings = crate::common::settings();
    settings.t1 = Duration::from_millis(50); // Timer B = 64*T1 = 3.2 s
    let server = Server::start(settings).await?;
    let mut events = server.sip.subscribe();
    let run = Device {
        keepalives: 6,
        ..Device::new(crate::common::free_udp_port()?)
    }
    .spawn(server.addr())?;
    event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, DeviceEvent::CatalogUpdated { .. })
    })
    .await?;
    let started = Instant::now();
    let error = server
        .sip
        .invite(DEVICE, SILENT, offer(MediaTransport::Udp))
        .await
        .expect_err("no answer");
    assert_eq!(error, InviteError::Timeout);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(3100) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        server.counter("retransmissions_sent") >= 5,
        "INVITE retransmitted (Timer A)"
    );
    assert_eq!(server.counter("transaction_timeouts"), 1);
    drop(run);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bye_from_the_device_reaches_the_dialog_owner() -> Result<()> {
    let (server, run) = registered_device(false, 4).await?;
    let mut dialog = server
        .sip
        .invite(DEVICE, HANGS_UP, offer(MediaTransport::Udp))
        .await?;
    let end = tokio::time::timeout(Duration::from_secs(5), dialog.closed())
        .await
        .context("no BYE from the device")?;
    assert_eq!(end, DialogEnd::ByeFromDevice);
    assert_eq!(server.counter("byes_received"), 1);
    dialog.bye().await?;
    assert_eq!(server.counter("byes_sent"), 0, "no BYE after the device's");
    run.finish(Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_says_bye_to_open_dialogs() -> Result<()> {
    let (server, run) = registered_device(false, 2).await?;
    let mut dialog = server
        .sip
        .invite(DEVICE, ANSWERS, offer(MediaTransport::Udp))
        .await?;
    let call_id = dialog.call_id.clone();
    server.stop();
    let end = tokio::time::timeout(Duration::from_secs(3), dialog.closed()).await?;
    assert_eq!(end, DialogEnd::ServerShutdown);
    crate::common::until(Duration::from_secs(3), "the device got our BYE", || {
        run.saw(&format!("Call-ID: {call_id}")) && run.saw("BYE sip:34020000001310000001@")
    })
    .await?;
    assert_eq!(server.counter("byes_sent"), 1);
    drop(dialog);
    assert_eq!(server.counter("byes_sent"), 1, "no second BYE on drop");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_device_is_refused_at_once() -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let error = server
        .sip
        .invite(DEVICE, ANSWERS, offer(MediaTransport::Udp))
        .await
        .expect_err("offline");
    assert_eq!(
        error,
        InviteError::DeviceOffline {
            device_id: DEVICE.into()
        }
    );
    assert_eq!(server.counter("invites"), 0);
    Ok(())
}
