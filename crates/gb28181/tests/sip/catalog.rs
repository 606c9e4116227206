//! The catalog with sipp as the device: queried on registration and on
//! demand, answered in two MESSAGEs (SumNum 3, element and attribute forms)
//! with GBK-encoded Chinese names that must come out as they went in.

use crate::common::{event, Device, Server, CHANNELS, DEVICE};
use anyhow::{Context, Result};
use std::time::Duration;
use xueliang_gb28181::sip::{ChannelStatus, DeviceEvent};

fn catalog_updated(e: &DeviceEvent) -> bool {
    matches!(e, DeviceEvent::CatalogUpdated { device_id, .. } if device_id == DEVICE)
}

async fn catalog_across_two_messages(tcp: bool) -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let mut events = server.sip.subscribe();
    let device = Device {
        tcp,
        keepalives: 4,
        ..Device::new(crate::common::free_udp_port()?)
    };
    let run = device.spawn(server.addr())?;
    let updated =
        run.explain(event(&mut events, Duration::from_secs(10), catalog_updated).await)?;
    assert_eq!(
        updated,
        DeviceEvent::CatalogUpdated {
            device_id: DEVICE.into(),
            channels: 3
        }
    );
    let info = server.sip.device(DEVICE).context("device listed")?;
    assert_eq!(info.charset, "GB2312");
    assert!(info.catalog_at.is_some());
    let names: Vec<(&str, &str)> = info
        .channels
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(names, CHANNELS, "names decoded from GBK");
    let first = &info.channels[0];
    assert_eq!(first.manufacturer.as_deref(), Some("Hikvision"));
    assert_eq!(first.model.as_deref(), Some("DS-2CD3T46"));
    assert_eq!(first.status, ChannelStatus::On);
    assert_eq!(first.parent_id.as_deref(), Some(DEVICE));
    assert_eq!(first.civil_code.as_deref(), Some("340200"));
    assert_eq!(
        (first.longitude, first.latitude),
        (Some(117.283), Some(31.8612))
    );
    assert_eq!(info.channels[1].status, ChannelStatus::Off);
    assert_eq!(
        info.channels[2].manufacturer.as_deref(),
        Some("Uniview"),
        "attribute form"
    );
    assert_eq!(server.counter("catalog_items"), 3);

    // On demand: the device answers again, the channels stay three.
    server.sip.query_catalog(DEVICE).await?;
    let again = run.explain(event(&mut events, Duration::from_secs(10), catalog_updated).await)?;
    assert!(matches!(
        again,
        DeviceEvent::CatalogUpdated { channels: 3, .. }
    ));
    assert_eq!(server.counter("catalog_items"), 6);
    assert_eq!(server.counter("catalog_incomplete"), 0);
    run.finish(Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_in_two_gbk_messages_over_udp() -> Result<()> {
    catalog_across_two_messages(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_in_two_gbk_messages_over_tcp() -> Result<()> {
    catalog_across_two_messages(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_query_to_an_unregistered_device_fails_at_once() -> Result<()> {
    let server = Server::start(crate::common::settings()).await?;
    let error = server
        .sip
        .query_catalog(DEVICE)
        .await
        .expect_err("no such device");
    assert!(error.to_string().contains("not registered"), "{error}");
    Ok(())
}
