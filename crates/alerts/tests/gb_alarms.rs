//! `gb28181` alert channels: the alarm the dispatcher hands the SIP side
//! (code, priority, local time, description, camera), retries while the
//! superior is down or refuses, and the delivery kept in the outbox of a
//! real SQLite file across a dispatcher restart (the store reopened), sent
//! exactly once after. The SIP side is the seam's other end
//! ([`UpstreamAlarms`]); its wire form is tested against sipp in the
//! gb28181 crate and end to end in tests/e2e.

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use xueliang_alerts::{AlertSetup, Dispatcher};
use xueliang_core::gb_alarm::{AlarmSendError, GbAlarm, UpstreamAlarms};
use xueliang_core::{Config, EventKind, ManualClock, NewEvent};
use xueliang_store::testing::{TestBackend, TestStore};
use xueliang_store::Store;

const SUPERIOR: &str = "11010000002000000001";

const CONFIG: &str = r#"
[gb28181]
server_id = "34020000002000000001"
media_ip = "192.0.2.10"
password = "pw"

[[gb28181.upstream]]
id = "11010000002000000001"
address = "127.0.0.1"
password = "county-pw"

[organisation]
township = "青山镇"

[[organisation.villages]]
name = "东村"

[alerts]
retry_initial_s = 2
retry_max_s = 60

[[alerts.channels]]
name = "county"
type = "gb28181"
upstream = "11010000002000000001"

[[alerts.routes]]
kinds = ["intrusion", "camera_offline"]
notify_on_duty = false
channels = ["county"]
alarm_priority = 2

[[cameras]]
id = "school-gate"
name = "中心小学大门"
url = "rtsp://127.0.0.1:1/a"
village = "东村"
"#;

/// The superior as the dispatcher sees it: records what it accepts; while
/// `refusing`, answers as a superior that is down.
#[derive(Default)]
struct Superior {
    accepted: Mutex<Vec<GbAlarm>>,
    refused: Mutex<usize>,
    refusing: Mutex<bool>,
}

impl UpstreamAlarms for Superior {
    fn send_alarm<'a>(&'a self, alarm: &'a GbAlarm) -> BoxFuture<'a, Result<(), AlarmSendError>> {
        Box::pin(async move {
            if *self.refusing.lock().expect("lock") {
                *self.refused.lock().expect("lock") += 1;
                return Err(AlarmSendError::Failed {
                    upstream: alarm.upstream.clone(),
                    reason: "500 Server Internal Error".into(),
                });
            }
            self.accepted.lock().expect("lock").push(alarm.clone());
            Ok(())
        })
    }
}

impl Superior {
    fn accepted(&self) -> Vec<GbAlarm> {
        self.accepted.lock().expect("lock").clone()
    }
}

fn t0() -> DateTime<Utc> {
    // 2024-05-01 13:00:05 UTC = 21:00:05 Beijing time.
    Utc.with_ymd_and_hms(2024, 5, 1, 13, 0, 5).unwrap()
}

fn dispatcher(
    store: Arc<dyn Store>,
    config: &Config,
    clock: Arc<ManualClock>,
    superior: Arc<Superior>,
) -> Result<Arc<Dispatcher<dyn Store>>> {
    let setup = AlertSetup::from_config(config)?;
    Ok(Arc::new(
        Dispatcher::new(store, setup, &config.cameras, clock).with_upstream_alarms(superior),
    ))
}

fn intrusion(config: &Config) -> Result<NewEvent> {
    let cam = config.cameras.first().context("a camera")?;
    Ok(NewEvent {
        camera_id: cam.id.clone(),
        village: cam.village.clone(),
        kind: EventKind::Intrusion,
        label: "person".into(),
        score: 0.9,
        started_at: t0(),
        ..NewEvent::default()
    })
}

#[tokio::test]
async fn an_intrusion_goes_as_a_gb_alarm_with_the_routes_priority_in_local_time() -> Result<()> {
    let config = Config::parse(CONFIG).map_err(anyhow::Error::msg)?;
    let test_store = TestStore::from_env().await;
    let clock = Arc::new(ManualClock::new(t0()));
    let superior = Arc::new(Superior::default());
    let d = dispatcher(
        test_store.store.clone(),
        &config,
        clock.clone(),
        superior.clone(),
    )?;
    test_store.store.insert_event(intrusion(&config)?).await?;
    let report = d.tick().await?;
    assert_eq!(report.delivered, 1, "{report:?}");
    let got = superior.accepted();
    assert_eq!(got.len(), 1);
    let a = &got[0];
    assert_eq!(a.upstream, SUPERIOR);
    assert_eq!(a.camera_id, "school-gate");
    assert_eq!(
        (a.code.method, a.code.alarm_type, a.code.event_type),
        (5, 6, Some(1))
    );
    assert_eq!(a.priority, 2);
    assert_eq!(a.local_time.to_string(), "2024-05-01 21:00:05");
    assert_eq!(a.description, "区域入侵 · 中心小学大门");
    Ok(())
}

#[tokio::test]
async fn a_refused_alarm_is_retried_kept_across_a_restart_and_sent_once() -> Result<()> {
    // A real SQLite file, opened again for the second dispatcher.
    let test_store = TestStore::new(TestBackend::Sqlite).await;
    let config = Config::parse(CONFIG).map_err(anyhow::Error::msg)?;
    let clock = Arc::new(ManualClock::new(t0()));
    let superior = Arc::new(Superior::default());
    *superior.refusing.lock().expect("lock") = true;
    let first = dispatcher(
        test_store.store.clone(),
        &config,
        clock.clone(),
        superior.clone(),
    )?;
    test_store.store.insert_event(intrusion(&config)?).await?;
    let report = first.tick().await?;
    assert_eq!((report.delivered, report.retrying), (0, 1), "{report:?}");
    // The retry waits its backoff (2 s, a quarter random).
    clock.advance(chrono::Duration::seconds(3));
    let report = first.tick().await?;
    assert_eq!(report.retrying, 1, "retried after the backoff: {report:?}");
    assert_eq!(*superior.refused.lock().expect("lock"), 2);
    drop(first);

    // The process goes; the superior comes back; a new process opens the file.
    *superior.refusing.lock().expect("lock") = false;
    let reopened = xueliang_store::open(&test_store.url).await?;
    let second = dispatcher(reopened.clone(), &config, clock.clone(), superior.clone())?;
    clock.advance(chrono::Duration::seconds(10));
    let report = second.tick().await?;
    assert_eq!(report.delivered, 1, "{report:?}");
    for _ in 0..3 {
        clock.advance(chrono::Duration::minutes(5));
        let report = second.tick().await?;
        assert_eq!(report.started, 0, "nothing more to send: {report:?}");
    }
    assert_eq!(superior.accepted().len(), 1, "exactly once");
    Ok(())
}

#[test]
fn mistakes_in_gb28181_channels_and_routes_are_named() {
    let setup = |text: &str| {
        Config::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|c| AlertSetup::from_config(&c).map_err(|e| e.to_string()))
    };
    assert!(setup(CONFIG).is_ok(), "{:?}", setup(CONFIG).err());
    let e = setup(&CONFIG.replace(
        "upstream = \"11010000002000000001\"",
        "upstream = \"11010000002000000009\"",
    ))
    .unwrap_err();
    assert!(
        e.contains("`county`") && e.contains("11010000002000000009") && e.contains("upstream"),
        "{e}"
    );
    let e = setup(&CONFIG.replace("alarm_priority = 2", "alarm_priority = 5")).unwrap_err();
    assert!(e.contains("alarm_priority") && e.contains("#1"), "{e}");
    let e = setup(&CONFIG.replace("\"camera_offline\"]", "\"camera_recovered\"]")).unwrap_err();
    assert!(
        e.contains("camera_recovered") && e.contains("county") && e.contains("kinds"),
        "{e}"
    );
    let e = setup(&CONFIG.replace("[\"intrusion\", \"camera_offline\"]", "[\"*\"]")).unwrap_err();
    assert!(e.contains("\"*\"") && e.contains("county"), "{e}");
    let e = setup(&CONFIG.replace("upstream = \"11010000002000000001\"\n", "")).unwrap_err();
    assert!(e.contains("`upstream` is required"), "{e}");
    let e = setup(&CONFIG.replace(
        "upstream = \"11010000002000000001\"\n",
        "upstream = \"11010000002000000001\"\nurl = \"http://x\"\n",
    ))
    .unwrap_err();
    assert!(e.contains("`url`") && e.contains("gb28181"), "{e}");
}
