//! Cascade upward with sipp as the superior platform (上级平台): digest
//! registration checked by sipp's verifyauth, refresh, keepalives, the
//! catalog in chunks with GB2312 names, DeviceInfo, unregistration at
//! shutdown; and a superior that is down, then refuses, then accepts.

use crate::common::{
    self, superior, superior_query, until, Server, SERVER_ID, SUPERIOR, SUPERIOR_PASSWORD,
};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use xueliang_core::config::gb28181::{Gb28181Upstream, UpstreamCharset, UpstreamTransport};
use xueliang_core::gb28181::{CascadeCamera, CascadeCameras, GbUpstream, UpstreamState};
use xueliang_core::Secret;
use xueliang_gb28181::sip::manscdp::{self, Root};
use xueliang_gb28181::sip::{charset, SipServer, UpstreamSettings};

pub struct Cameras(pub Vec<CascadeCamera>);

impl CascadeCameras for Cameras {
    fn cameras(&self) -> Vec<CascadeCamera> {
        self.0.clone()
    }
}

fn camera(id: &str, name: &str, village: Option<&str>, grid: Option<&str>) -> CascadeCamera {
    CascadeCamera {
        id: id.into(),
        name: name.into(),
        village: village.map(Into::into),
        grid: grid.map(Into::into),
        online: true,
        trouble: None,
        gb_channel: None,
    }
}

pub fn cameras() -> Vec<CascadeCamera> {
    vec![
        camera("east-gate", "东门口 枪机", Some("东村"), Some("一网格")),
        camera("school", "小学操场", Some("东村"), Some("二网格")),
        CascadeCamera {
            online: false,
            ..camera("river", "河堤（北）", Some("西村"), None)
        },
        camera("market", "集市", None, None),
        CascadeCamera {
            gb_channel: Some("34020000001310000001".into()),
            ..camera(
                "34020000001310000001",
                "镇政府大院",
                Some("西村"),
                Some("三网格"),
            )
        },
    ]
}

pub fn upstream(port: u16) -> UpstreamSettings {
    let mut s = UpstreamSettings::new(Gb28181Upstream {
        id: SUPERIOR.into(),
        domain: common::SUPERIOR_REALM.into(),
        address: "127.0.0.1".into(),
        port,
        transport: UpstreamTransport::Udp,
        password: Secret::new(SUPERIOR_PASSWORD),
        local_id: SERVER_ID.into(),
        register_expires_s: 3600,
        keepalive_s: 1,
        keepalive_misses: 3,
        charset: UpstreamCharset::Gb2312,
        group_name: "雪亮工程 镇".into(),
        villages: vec![],
        cameras: vec![],
        max_upstream_streams: 16,
    });
    s.backoff_min = Duration::from_millis(200);
    s.backoff_max = Duration::from_secs(1);
    s.catalog_chunk = 3;
    s
}

pub fn link(sip: &SipServer) -> GbUpstream {
    sip.upstreams().pop().expect("one upstream")
}

async fn registers_keeps_alive_and_answers(tcp: bool) -> Result<()> {
    let server = Server::start(common::settings()).await?;
    let port = common::free_udp_port()?;
    // The superior grants 3 s: the refresh comes at 2.4 s.
    let sup = superior(port, SUPERIOR_PASSWORD, 3, tcp)?;
    let mut settings = upstream(port);
    if tcp {
        settings.config.transport = UpstreamTransport::Tcp;
    }
    let task = server
        .sip
        .start_upstream(settings, Arc::new(Cameras(cameras())));
    sup.explain(
        until(Duration::from_secs(10), "registered", || {
            link(&server.sip).state == UpstreamState::Registered
        })
        .await,
    )?;
    let first = link(&server.sip);
    assert!(first.registered_until.is_some());
    assert_eq!(first.transport, if tcp { "tcp" } else { "udp" });
    // sipp's verifyauth accepted the digest answer (else it answers 403).
    assert!(sup.saw("Authorization: Digest username=\"34020000002000000001\""));
    assert!(sup.saw("qop=auth"));
    sup.explain(
        until(Duration::from_secs(10), "refreshed and kept alive", || {
            let l = link(&server.sip);
            l.registrations >= 2 && l.last_keepalive.is_some()
        })
        .await,
    )?;
    assert!(sup.saw("<CmdType>Keepalive</CmdType>"));

    let query = superior_query(server.addr(), "Catalog", 77)?;
    query.finish(Duration::from_secs(20)).await?;
    sup.explain(
        until(Duration::from_secs(10), "catalog answered", || {
            link(&server.sip).catalog_queries == 1
        })
        .await,
    )?;
    let query = superior_query(server.addr(), "DeviceInfo", 78)?;
    query.finish(Duration::from_secs(20)).await?;
    sup.explain(
        until(Duration::from_secs(10), "device info answered", || {
            sup.saw("<CmdType>DeviceInfo</CmdType>")
        })
        .await,
    )?;

    let query = superior_query(server.addr(), "DeviceStatus", 79)?;
    query.finish(Duration::from_secs(20)).await?;
    sup.explain(
        until(Duration::from_secs(10), "device status answered", || {
            sup.saw("<CmdType>DeviceStatus</CmdType>")
        })
        .await,
    )?;
    assert!(sup.saw("<Online>ONLINE</Online>"));

    // The catalog: parse every Response Catalog the superior received.
    let mut chunks = 0;
    let mut items: HashMap<String, manscdp::Channel> = HashMap::new();
    let mut sum_num = None;
    let mut device_info = None;
    for body in sup.bodies() {
        let (text, cs) = charset::decode(&body);
        let Ok(command) = manscdp::parse(&text) else {
            continue;
        };
        if command.is(Root::Response, "DeviceInfo") {
            device_info = Some(text.clone());
        }
        let Some(part) = command.catalog else {
            continue;
        };
        assert_eq!(cs.label(), "GB2312");
        assert_eq!(command.sn, Some(77));
        assert_eq!(command.device_id.as_deref(), Some(SERVER_ID));
        assert!(part.items.len() <= 3, "chunks of 3");
        chunks += 1;
        sum_num = part.sum_num;
        for item in part.items {
            items.insert(item.id.clone(), item);
        }
    }
    // group + 2 villages + 3 grids + 5 cameras
    assert_eq!(sum_num, Some(11), "SumNum");
    assert_eq!(items.len(), 11, "every item once: {items:?}");
    assert!(chunks >= 4, "in 4 chunks (UDP may repeat one): {chunks}");
    let names: HashSet<&str> = items.values().map(|i| i.name.as_str()).collect();
    for c in cameras() {
        assert!(
            names.contains(c.name.as_str()),
            "{} missing: {names:?}",
            c.name
        );
    }
    for org in ["雪亮工程 镇", "东村", "西村", "一网格", "二网格", "三网格"] {
        assert!(names.contains(org), "{org} missing");
    }
    let by_name = |n: &str| items.values().find(|i| i.name == n).expect(n);
    assert_eq!(&by_name("雪亮工程 镇").id[10..13], "215");
    assert_eq!(&by_name("东村").id[10..13], "216");
    let grid = by_name("一网格");
    assert_eq!(grid.parent_id.as_deref(), Some(by_name("东村").id.as_str()));
    let east = by_name("东门口 枪机");
    assert_eq!(&east.id[10..13], "131");
    assert_eq!(east.parent_id.as_deref(), Some(grid.id.as_str()));
    assert_eq!(east.status, xueliang_gb28181::sip::ChannelStatus::On);
    assert_eq!(
        by_name("河堤（北）").status,
        xueliang_gb28181::sip::ChannelStatus::Off
    );
    assert_eq!(by_name("镇政府大院").id, "34020000001310000001");
    let info = device_info.context("DeviceInfo response")?;
    assert!(info.contains("<Channel>5</Channel>"), "{info}");

    // Shutdown unregisters.
    server.stop();
    tokio::time::timeout(Duration::from_secs(5), task).await??;
    sup.explain(
        until(Duration::from_secs(5), "unregistered", || {
            sup.saw("Expires: 0")
        })
        .await,
    )?;
    assert_eq!(link(&server.sip).state, UpstreamState::Stopped);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_keeps_alive_and_answers_the_catalog_over_udp() -> Result<()> {
    registers_keeps_alive_and_answers(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_keeps_alive_and_answers_the_catalog_over_tcp() -> Result<()> {
    registers_keeps_alive_and_answers(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superior_down_then_refusing_then_accepting() -> Result<()> {
    let mut settings = common::settings();
    settings.t1 = Duration::from_millis(50); // no answer after 3.2 s
    let server = Server::start(settings).await?;
    let port = common::free_udp_port()?;
    let _task = server
        .sip
        .start_upstream(upstream(port), Arc::new(Cameras(cameras())));
    // Nobody on the port.
    until(Duration::from_secs(10), "failed: no answer", || {
        let l = link(&server.sip);
        l.state == UpstreamState::Failed && l.last_error.as_deref() == Some("no answer")
    })
    .await?;
    // A superior that does not take our password.
    let refusing = superior(port, "not-our-password", 60, false)?;
    refusing.explain(
        until(Duration::from_secs(15), "failed: 403", || {
            let l = link(&server.sip);
            l.state != UpstreamState::Registered && l.last_error.as_deref() == Some("403 Forbidden")
        })
        .await,
    )?;
    let failures = link(&server.sip).failures;
    assert!(failures >= 2, "retried: {failures}");
    drop(refusing);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // It takes it now.
    let accepting = superior(port, SUPERIOR_PASSWORD, 60, false)?;
    accepting.explain(
        until(Duration::from_secs(15), "registered", || {
            link(&server.sip).state == UpstreamState::Registered
        })
        .await,
    )?;
    let l = link(&server.sip);
    assert_eq!(
        l.last_error.as_deref(),
        Some("403 Forbidden"),
        "kept after recovery"
    );
    assert!(l.registered_until.is_some());
    // The superior goes silent: keepalives go unanswered, then we register again.
    drop(accepting);
    until(Duration::from_secs(25), "failed: keepalives lost", || {
        let l = link(&server.sip);
        l.state != UpstreamState::Registered
            && l.last_error.as_deref() == Some("3 keepalives unanswered")
    })
    .await?;
    Ok(())
}
