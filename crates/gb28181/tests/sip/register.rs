//! Registration with sipp as the device: digest (401 then 200 with a GB
//! `Date`), keepalives, offline after missed keepalives or at expiry,
//! unregistration, wrong passwords throttled, unknown devices refused.

use crate::common::{event, Device, Server, DEVICE};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use xueliang_gb28181::sip::{DeviceEvent, OfflineReason, SipTransport};

fn registered(e: &DeviceEvent) -> bool {
    matches!(e, DeviceEvent::Registered { device_id } if device_id == DEVICE)
}

async fn registers_and_keeps_alive(tcp: bool) -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let mut events = server.sip.subscribe();
    let port = crate::common::free_udp_port()?;
    let device = Device {
        tcp,
        keepalives: 3,
        ..Device::new(port)
    };
    let run = device.spawn(server.addr())?;
    run.explain(event(&mut events, Duration::from_secs(10), registered).await)?;
    // sipp checks the 401, the digest answer and the Date's GB form.
    run.finish(Duration::from_secs(20)).await?;
    let info = server.sip.device(DEVICE).context("device listed")?;
    assert_eq!(
        info.transport,
        if tcp {
            SipTransport::Tcp
        } else {
            SipTransport::Udp
        }
    );
    assert_eq!(info.address.ip().to_string(), "127.0.0.1");
    if !tcp {
        assert_eq!(info.address.port(), port, "replies go to the source port");
    }
    assert!(info.last_keepalive.is_some());
    assert_eq!(server.counter("keepalives"), 3);
    assert_eq!(server.counter("registrations"), 1);
    assert!(server.counter("auth_challenges") >= 1);
    assert_eq!(server.counter("auth_failures"), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_and_keeps_alive_over_udp() -> Result<()> {
    registers_and_keeps_alive(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_and_keeps_alive_over_tcp() -> Result<()> {
    registers_and_keeps_alive(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_takes_the_device_offline_and_a_new_registration_brings_it_back() -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let mut events = server.sip.subscribe();
    let device = Device {
        keepalives: 3,
        lapse_secs: 6,
        ..Device::new(crate::common::free_udp_port()?)
    };
    let run = device.spawn(server.addr())?;
    event(&mut events, Duration::from_secs(10), registered).await?;
    let offline = event(&mut events, Duration::from_secs(15), |e| {
        matches!(e, DeviceEvent::Offline { .. })
    })
    .await?;
    let silent_since = Instant::now();
    assert_eq!(
        offline,
        DeviceEvent::Offline {
            device_id: DEVICE.into(),
            reason: OfflineReason::KeepaliveLost
        }
    );
    let info = server.sip.device(DEVICE).context("device listed")?;
    assert!(!info.online);
    assert_eq!(info.offline_reason, Some(OfflineReason::KeepaliveLost));
    assert!(info.keepalive_interval >= Duration::from_millis(900));
    event(&mut events, Duration::from_secs(10), registered).await?;
    assert!(
        silent_since.elapsed() >= Duration::from_secs(1),
        "back only after the silence"
    );
    assert!(server.sip.device(DEVICE).context("listed")?.online);
    run.finish(Duration::from_secs(20)).await?;
    assert_eq!(server.counter("keepalive_lost"), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_that_runs_out_takes_the_device_offline() -> Result<()> {
    let mut settings = crate::common::settings();
    settings.expires_min = 2;
    settings.expires_max = 2;
    let server = Server::start(settings).await?;
    let mut events = server.sip.subscribe();
    let device = Device {
        keepalives: 10,
        ..Device::new(crate::common::free_udp_port()?)
    };
    let run = device.spawn(server.addr())?;
    event(&mut events, Duration::from_secs(10), registered).await?;
    let offline = event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, DeviceEvent::Offline { .. })
    })
    .await?;
    assert!(matches!(
        offline,
        DeviceEvent::Offline {
            reason: OfflineReason::Expired,
            ..
        }
    ));
    // Its next keepalive is refused (404): it must register again.
    crate::common::until(Duration::from_secs(3), "a refused keepalive", || {
        server.counter("not_registered") >= 1
    })
    .await?;
    drop(run);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistering_takes_the_device_offline() -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let mut events = server.sip.subscribe();
    let device = Device {
        keepalives: 1,
        unregister: true,
        ..Device::new(crate::common::free_udp_port()?)
    };
    let run = device.spawn(server.addr())?;
    event(&mut events, Duration::from_secs(10), registered).await?;
    event(
        &mut events,
        Duration::from_secs(10),
        |e| matches!(e, DeviceEvent::Unregistered { device_id } if device_id == DEVICE),
    )
    .await?;
    run.finish(Duration::from_secs(10)).await?;
    let info = server.sip.device(DEVICE).context("device listed")?;
    assert_eq!(info.offline_reason, Some(OfflineReason::Unregistered));
    assert_eq!(server.counter("unregistrations"), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_throttled_per_device_and_address() -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let wrong = Device {
        password: "not-the-password".into(),
        scenario: "register_refused.xml",
        ..Device::new(crate::common::free_udp_port()?)
    };
    // 401 after each wrong answer until the fifth, then 403, and 403 again.
    wrong
        .spawn(server.addr())?
        .finish(Duration::from_secs(20))
        .await?;
    assert_eq!(server.counter("auth_failures"), 5);
    assert!(server.counter("auth_blocked") >= 1);
    assert!(server.sip.device(DEVICE).is_none());
    // The address stays blocked for the period, even for the right password.
    let right = Device {
        scenario: "register_refused.xml",
        ..Device::new(crate::common::free_udp_port()?)
    };
    right
        .spawn(server.addr())?
        .finish(Duration::from_secs(20))
        .await?;
    assert!(server.sip.device(DEVICE).is_none());
    assert_eq!(server.counter("registrations"), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_known_devices_register_when_accept_is_known() -> Result<()> {
    let mut settings = crate::common::settings();
    settings.accept = xueliang_gb28181::sip::Accept::Known;
    settings.known_devices.insert(DEVICE.into());
    let server = Server::start(settings).await?;
    let stranger = Device {
        id: "34020000001320000099".into(),
        scenario: "register_refused.xml",
        ..Device::new(crate::common::free_udp_port()?)
    };
    stranger
        .spawn(server.addr())?
        .finish(Duration::from_secs(20))
        .await?;
    assert_eq!(server.counter("unknown_device"), 2);
    assert_eq!(
        server.counter("auth_challenges"),
        0,
        "refused before any challenge"
    );
    assert!(server.sip.devices().is_empty());
    let mut events = server.sip.subscribe();
    let known = Device::new(crate::common::free_udp_port()?).spawn(server.addr())?;
    event(&mut events, Duration::from_secs(10), registered).await?;
    known.finish(Duration::from_secs(20)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_device_password_overrides_the_global_one() -> Result<()> {
    let mut settings = crate::common::settings();
    settings
        .device_passwords
        .insert(DEVICE.into(), xueliang_core::Secret::new("its-own"));
    settings.auth_failures_before_block = 2;
    let server = Server::start(settings).await?;
    // Its own password is right...
    let mut events = server.sip.subscribe();
    let own = Device {
        password: "its-own".into(),
        keepalives: 1,
        ..Device::new(crate::common::free_udp_port()?)
    };
    let run = own.spawn(server.addr())?;
    run.explain(event(&mut events, Duration::from_secs(10), registered).await)?;
    run.finish(Duration::from_secs(20)).await?;
    // ...and the global one is wrong for it.
    let global = Device {
        scenario: "register_refused.xml",
        ..Device::new(crate::common::free_udp_port()?)
    };
    global
        .spawn_from("127.0.0.2", server.addr())?
        .finish(Duration::from_secs(20))
        .await?;
    assert_eq!(server.counter("auth_failures"), 2);
    assert_eq!(server.counter("registrations"), 1);
    Ok(())
}
