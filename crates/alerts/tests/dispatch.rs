//! The dispatcher against real peers: a real SQLite file, local HTTP
//! receivers speaking the webhook, WeCom, DingTalk and SMS protocols (they
//! check format and signatures), and the machine's Mosquitto broker. Time is
//! simulated with `ManualClock`; every step is an explicit `tick()`.

use anyhow::{Context, Result};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xueliang_alerts::sign::{dingtalk_sign, hmac_sha256, verify_ack};
use xueliang_alerts::{AlertSetup, Dispatcher};
use xueliang_core::{Clock, Config, EventKind, ManualClock, NewEvent};
use xueliang_store::testing::TestStore;
use xueliang_store::Store;

#[derive(Clone, Debug)]
struct Received {
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: serde_json::Value,
    raw: Vec<u8>,
    at: std::time::Instant,
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// HTTP status to answer with.
    status: Arc<AtomicU16>,
    /// Body to answer with (robots answer `{"errcode":0}`).
    answer: Arc<Mutex<String>>,
    /// How long to wait before answering (a request is in `got` at once).
    delay: Arc<Mutex<Duration>>,
    port: u16,
}

impl Receiver {
    async fn start(port: u16) -> Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let r = Receiver {
            got: Default::default(),
            status: Arc::new(AtomicU16::new(200)),
            answer: Arc::new(Mutex::new(r#"{"errcode":0,"errmsg":"ok"}"#.into())),
            delay: Default::default(),
            port: listener.local_addr()?.port(),
        };
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(r)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// A receiver that takes each request and answers only after `delay`.
    async fn slow(delay: Duration) -> Result<Receiver> {
        let r = Receiver::start(0).await?;
        *r.delay.lock().unwrap() = delay;
        Ok(r)
    }

    /// The requests about `event_id`.
    fn got_event(&self, event_id: i64) -> usize {
        self.got()
            .iter()
            .filter(|g| g.body["event_id"] == event_id)
            .count()
    }
}

async fn receive(
    State(r): State<Receiver>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
    r.got.lock().unwrap().push(Received {
        query,
        headers,
        body,
        raw: raw.to_vec(),
        at: std::time::Instant::now(),
    });
    let delay = *r.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let status = axum::http::StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap();
    (status, r.answer.lock().unwrap().clone())
}

const CAMERAS: &str = r#"
[[cameras]]
id = "school-gate"
name = "中心小学大门"
url = "rtsp://127.0.0.1:1/a"
village = "东村"
grid = "东村一网格"
location = "中心小学正门"

[[cameras]]
id = "river"
name = "河堤"
url = "rtsp://127.0.0.1:1/b"
village = "西村"
"#;

fn organisation() -> &'static str {
    r#"
[organisation]
township = "青山镇"

[[organisation.villages]]
name = "东村"
grids = ["东村一网格", "东村二网格"]

[[organisation.villages]]
name = "西村"

[[organisation.officers]]
id = "li"
name = "李明"
phone = "13800000001"
channels = ["hook"]

[[organisation.officers]]
id = "wang"
name = "王强"
phone = "13800000002"
channels = ["leader-hook"]

[[organisation.roster]]
officer = "li"
grids = ["东村一网格"]

[[organisation.duty_leaders]]
officer = "wang"
"#
}

struct Rig {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    dispatcher: Arc<Dispatcher<dyn Store>>,
    setup: AlertSetup,
    cameras: Vec<xueliang_core::CameraConfig>,
    _store: TestStore,
}

impl Rig {
    /// Stores one event of each camera-health kind for `camera`.
    async fn insert_health_kinds(&self, camera: &str) -> Result<()> {
        for kind in [
            EventKind::CameraOffline,
            EventKind::VideoFrozen,
            EventKind::VideoBlocked,
            EventKind::SceneChanged,
        ] {
            self.store.insert_event(event(camera, kind)).await?;
        }
        Ok(())
    }
}

fn t0() -> DateTime<Utc> {
    // 2024-05-01 13:00 UTC = 21:00 Beijing time.
    Utc.with_ymd_and_hms(2024, 5, 1, 13, 0, 0).unwrap()
}

async fn rig(alerts: &str) -> Result<Rig> {
    let text = format!("{}\n{alerts}\n{CAMERAS}", organisation());
    let config = Config::parse(&text).map_err(anyhow::Error::msg)?;
    let setup = AlertSetup::from_config(&config)?;
    let test_store = TestStore::from_env().await;
    let store = test_store.store.clone();
    let clock = Arc::new(ManualClock::new(t0()));
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        setup.clone(),
        &config.cameras,
        clock.clone(),
    ));
    Ok(Rig {
        store,
        clock,
        dispatcher,
        setup,
        cameras: config.cameras,
        _store: test_store,
    })
}

/// A health event of a test camera (its village and grid come from the camera).
fn event(camera: &str, kind: EventKind) -> NewEvent {
    let config = Config::parse(CAMERAS).expect("test cameras parse");
    let cam = config
        .cameras
        .iter()
        .find(|c| c.id == camera)
        .expect("test camera");
    let mut e = NewEvent::health(cam, kind, t0(), "connection refused".into());
    e.snapshot = Some(vec![0xff, 0xd8, 0xff, 0xd9]);
    e
}

fn webhook_channels(hook: &str, leader: &str) -> String {
    format!(
        r#"
[[alerts.channels]]
name = "hook"
type = "webhook"
url = "{hook}"
secret = "webhook-secret-1234"

[[alerts.channels]]
name = "leader-hook"
type = "webhook"
url = "{leader}"
secret = "webhook-secret-1234"
"#
    )
}

#[tokio::test]
async fn webhook_is_signed_keyed_and_in_chinese() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\npublic_url = \"http://centre.example:8080\"\nack_key = \"ack-key-0123456789\"\n\
         [[alerts.routes]]\nkinds = [\"camera_offline\"]\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    );
    let r = rig(&alerts).await?;
    let id = r
        .store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    // A kind without a route makes no alert.
    r.store
        .insert_event(event("school-gate", EventKind::VideoFrozen))
        .await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!(
        (report.routed, report.opened, report.delivered),
        (2, 1, 1),
        "{report:?}"
    );

    let got = rx.got();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    let ts: i64 = m.headers["x-xueliang-timestamp"].parse()?;
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&m.raw);
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(b"webhook-secret-1234", &signed))
    );
    assert_eq!(m.headers["x-xueliang-signature"], expected);
    assert_eq!(
        m.headers["idempotency-key"],
        m.body["idempotency_key"].as_str().unwrap()
    );
    assert_eq!(m.headers["content-type"], "application/json");
    let b = &m.body;
    assert_eq!(b["event_id"], id);
    assert_eq!(b["kind"], "camera_offline");
    assert_eq!(b["kind_zh"], "摄像头离线");
    assert_eq!(b["camera"]["name"], "中心小学大门");
    assert_eq!(b["officer"]["id"], "li");
    assert_eq!(b["local_time"], "2024-05-01 21:00:00");
    assert_eq!(
        b["event_url"],
        format!("http://centre.example:8080/api/v1/events/{id}")
    );
    assert_eq!(
        b["snapshot_url"],
        format!("http://centre.example:8080/api/v1/events/{id}/snapshot.jpg")
    );
    let text = b["text"].as_str().unwrap();
    for part in [
        "【雪亮告警】摄像头离线",
        "中心小学大门",
        "东村",
        "2024-05-01 21:00:00",
        "snapshot.jpg",
        "确认收到",
    ] {
        assert!(text.contains(part), "{part} missing in {text}");
    }
    // The ack link is signed for this alert and officer, and expires 7
    // days (the default `ack_link_days`) after it was sent.
    let ack = url::Url::parse(b["ack_url"].as_str().unwrap())?;
    let q: HashMap<_, _> = ack.query_pairs().into_owned().collect();
    let alert_id = b["alert_id"].as_i64().unwrap();
    let expires: i64 = q["exp"].parse()?;
    assert_eq!(
        expires,
        (r.clock.now() + chrono::Duration::days(7)).timestamp()
    );
    assert!(verify_ack(
        "ack-key-0123456789",
        alert_id,
        &q["officer"],
        expires,
        &q["sig"]
    ));

    // Recorded: delivered after one ok attempt.
    let deliveries = r.store.deliveries(alert_id).await?;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].0.status.as_str(), "delivered");
    assert_eq!(deliveries[0].1.len(), 1);
    // A second tick sends nothing more.
    assert_eq!(r.dispatcher.tick().await?.delivered, 0);
    assert_eq!(rx.got().len(), 1);
    Ok(())
}

#[tokio::test]
async fn wecom_and_dingtalk_robots_get_their_own_formats_and_signatures() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        r#"
[alerts]
ack_key = "ack-key-0123456789"
[[alerts.routes]]
kinds = ["*"]
notify_on_duty = false
channels = ["wecom", "ding"]

[[alerts.channels]]
name = "wecom"
type = "wecom"
url = "{}"
key = "wecom-key-abc"

[[alerts.channels]]
name = "ding"
type = "dingtalk"
url = "{}"
access_token = "ding-token-xyz"
secret = "SECdingsecret"
{}
"#,
        rx.url("cgi-bin/webhook/send"),
        rx.url("robot/send"),
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    );
    let r = rig(&alerts).await?;
    r.store
        .insert_event(event("river", EventKind::VideoBlocked))
        .await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!(report.delivered, 2, "{report:?}");
    let got = rx.got();
    let wecom = got
        .iter()
        .find(|g| g.query.contains_key("key"))
        .context("no WeCom request")?;
    assert_eq!(wecom.query["key"], "wecom-key-abc");
    assert_eq!(wecom.body["msgtype"], "text");
    assert!(wecom.body["text"]["content"]
        .as_str()
        .unwrap()
        .contains("画面遮挡"));
    assert!(wecom.body["text"]["mentioned_mobile_list"].is_array());

    let ding = got
        .iter()
        .find(|g| g.query.contains_key("access_token"))
        .context("no DingTalk request")?;
    assert_eq!(ding.query["access_token"], "ding-token-xyz");
    let ts: i64 = ding.query["timestamp"].parse()?;
    assert!(
        (Utc::now().timestamp_millis() - ts).abs() < 60_000,
        "timestamp is ms now"
    );
    // The receiver checks the signature as DingTalk does.
    let mac = hmac_sha256(b"SECdingsecret", format!("{ts}\nSECdingsecret").as_bytes());
    assert_eq!(
        ding.query["sign"],
        base64::engine::general_purpose::STANDARD.encode(mac)
    );
    assert_eq!(ding.query["sign"], dingtalk_sign("SECdingsecret", ts));
    assert_eq!(ding.body["msgtype"], "markdown");
    assert!(ding.body["markdown"]["title"]
        .as_str()
        .unwrap()
        .contains("画面遮挡"));
    assert!(ding.body["markdown"]["text"]
        .as_str()
        .unwrap()
        .contains("河堤"));
    assert_eq!(ding.body["at"]["isAtAll"], false);

    // A robot that refuses (invalid key) is a permanent failure: no retry.
    *rx.answer.lock().unwrap() = r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#.into();
    r.store
        .insert_event(event("river", EventKind::SceneChanged))
        .await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!((report.failed, report.retrying), (2, 0), "{report:?}");
    Ok(())
}

#[tokio::test]
async fn sms_gateway_template_gets_phone_text_and_key() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        r#"
[alerts]
[[alerts.routes]]
kinds = ["camera_offline"]

[[alerts.channels]]
name = "hook"
type = "sms"
url = "{}"
headers = {{ "X-Api-Key" = "{{api_key}}" }}
body = '{{"to": "{{phone}}", "content": "{{text}}"}}'
api_key = "sms-key-999"

[[alerts.channels]]
name = "leader-hook"
type = "webhook"
url = "{}"
"#,
        rx.url("sms"),
        rx.url("leader")
    );
    let r = rig(&alerts).await?;
    r.store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    assert_eq!(r.dispatcher.tick().await?.delivered, 1);
    let got = rx.got();
    assert_eq!(got[0].headers["x-api-key"], "sms-key-999");
    assert_eq!(got[0].body["to"], "13800000001");
    let text = got[0].body["content"].as_str().unwrap();
    assert!(
        text.starts_with("【雪亮】摄像头离线：中心小学大门"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn mqtt_alerts_reach_the_real_broker_with_qos1_per_village_and_camera() -> Result<()> {
    let prefix = format!("xueliang-test-{}", std::process::id());
    let sub = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-q",
            "1",
            "-v",
            "-C",
            "1",
            "-W",
            "20",
        ])
        .args(["-t", &format!("{prefix}/#")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("mosquitto_sub (scripts/setup.sh installs and starts Mosquitto)")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alerts = format!(
        r#"
[alerts]
[[alerts.routes]]
kinds = ["camera_offline"]
notify_on_duty = false
channels = ["broker"]

[[alerts.channels]]
name = "broker"
type = "mqtt"
host = "127.0.0.1"
port = 1883
topic_prefix = "{prefix}"
{}
"#,
        webhook_channels("http://127.0.0.1:9/x", "http://127.0.0.1:9/y")
    );
    let r = rig(&alerts).await?;
    let id = r
        .store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!(report.delivered, 1, "{report:?}");
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output()).await??;
    let line = String::from_utf8(out.stdout)?;
    let (topic, payload) = line
        .trim()
        .split_once(' ')
        .context("no message from the broker")?;
    assert_eq!(topic, format!("{prefix}/东村/school-gate"));
    let v: serde_json::Value = serde_json::from_str(payload)?;
    assert_eq!(v["event_id"], id);
    assert_eq!(v["kind_zh"], "摄像头离线");
    Ok(())
}

#[tokio::test]
async fn a_receiver_that_is_down_and_comes_back_gets_everything_once() -> Result<()> {
    // A port with nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let alerts = format!(
        "[alerts]\nretry_initial_s = 1\nretry_max_s = 8\n[[alerts.routes]]\nkinds = [\"*\"]\nflood_window_min = 0\n{}",
        webhook_channels(&url, &url)
    );
    let r = rig(&alerts).await?;
    r.insert_health_kinds("school-gate").await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!(
        (report.opened, report.retrying, report.delivered),
        (4, 4, 0),
        "{report:?}"
    );
    // Backoff: nothing is due before the first delay.
    assert_eq!(r.dispatcher.tick().await?.retrying, 0);
    r.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(r.dispatcher.tick().await?.retrying, 4);
    // The second delay doubles: 1.5 s is not enough (>= 0.75 * 2 s).
    r.clock.advance(chrono::Duration::milliseconds(1400));
    assert_eq!(r.dispatcher.tick().await?.retrying, 0);

    let rx = Receiver::start(port).await?;
    r.clock.advance(chrono::Duration::seconds(10));
    let report = r.dispatcher.tick().await?;
    assert_eq!(report.delivered, 4, "{report:?}");
    r.clock.advance(chrono::Duration::seconds(60));
    r.dispatcher.tick().await?;
    let got = rx.got();
    let mut keys: Vec<&str> = got
        .iter()
        .map(|g| g.headers["idempotency-key"].as_str())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!((got.len(), keys.len()), (4, 4));
    // Every attempt was recorded: two retriable failures, then ok.
    let alert = r
        .store
        .alert_of_event(1)
        .await?
        .context("alert of event 1")?;
    let (d, attempts) = &r.store.deliveries(alert.id).await?[0];
    assert_eq!(d.attempts, 3);
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retriable", "retriable", "ok"]);
    assert!(attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("cannot reach"));
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\nflood_window_min = 0\n[[alerts.routes]]\nkinds = [\"*\"]\nflood_window_min = 0\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    )
    .replace("[alerts]\nflood_window_min = 0\n", "[alerts]\n");
    let r = rig(&alerts).await?;
    let counted = || {
        xueliang_core::telemetry::telemetry()
            .deliveries()
            .get("hook")
            .copied()
            .unwrap_or_default()
    };
    let before = counted();
    rx.status.store(503, Ordering::SeqCst);
    r.store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    assert_eq!(r.dispatcher.tick().await?.retrying, 1);
    rx.status.store(400, Ordering::SeqCst);
    r.clock.advance(chrono::Duration::seconds(10));
    assert_eq!(r.dispatcher.tick().await?.failed, 1);
    // The metrics count both, by channel (other tests use "hook" too).
    let after = counted();
    assert!(after.retried > before.retried && after.failed > before.failed);
    r.clock.advance(chrono::Duration::hours(1));
    let report = r.dispatcher.tick().await?;
    assert_eq!(
        (report.retrying, report.failed, report.delivered),
        (0, 0, 0)
    );
    assert_eq!(rx.got().len(), 2);
    Ok(())
}

#[tokio::test]
async fn flood_control_merges_the_same_camera_and_rule_within_the_window() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\n[[alerts.routes]]\nkinds = [\"*\"]\nflood_window_min = 5\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    );
    let r = rig(&alerts).await?;
    let gate = |k| event("school-gate", k);
    let first = r.store.insert_event(gate(EventKind::CameraOffline)).await?;
    r.dispatcher.tick().await?;
    for _ in 0..2 {
        r.clock.advance(chrono::Duration::minutes(2));
        r.store.insert_event(gate(EventKind::CameraOffline)).await?;
        let report = r.dispatcher.tick().await?;
        assert_eq!((report.merged, report.delivered), (1, 0), "{report:?}");
    }
    // Another rule on the same camera is its own alert.
    r.store.insert_event(gate(EventKind::VideoBlocked)).await?;
    assert_eq!(r.dispatcher.tick().await?.opened, 1);
    let alert = r.store.alert_of_event(first).await?.context("alert")?;
    assert_eq!(alert.count, 3);
    assert_eq!(
        r.store.alert_of_event(first + 2).await?.map(|a| a.id),
        Some(alert.id)
    );
    // Quiet for longer than the window: a new alert.
    r.clock.advance(chrono::Duration::minutes(6));
    r.store.insert_event(gate(EventKind::CameraOffline)).await?;
    assert_eq!(r.dispatcher.tick().await?.opened, 1);
    assert_eq!(rx.got().len(), 3);
    Ok(())
}

#[tokio::test]
async fn unacknowledged_alerts_escalate_to_the_duty_leader_in_simulated_time() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\n[[alerts.routes]]\nkinds = [\"*\"]\nescalate_after_min = 10\nflood_window_min = 0\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    );
    let r = rig(&alerts).await?;
    let a = r
        .store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    let b = r
        .store
        .insert_event(event("school-gate", EventKind::VideoBlocked))
        .await?;
    r.dispatcher.tick().await?;
    let alert_b = r.store.alert_of_event(b).await?.context("alert b")?;
    // Officer li acknowledges b; a stays unacknowledged.
    r.store
        .ack_alert(alert_b.id, "li".into(), "link".into(), r.clock.now())
        .await?;
    r.clock.advance(chrono::Duration::minutes(9));
    assert_eq!(r.dispatcher.tick().await?.escalated, 0);
    r.clock.advance(chrono::Duration::minutes(2));
    let report = r.dispatcher.tick().await?;
    assert_eq!((report.escalated, report.delivered), (1, 1), "{report:?}");
    let got = rx.got();
    let leader: Vec<_> = got
        .iter()
        .filter(|g| g.body["level"] == "escalation")
        .collect();
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0].body["officer"]["id"], "wang");
    assert_eq!(leader[0].body["event_id"], a);
    assert!(leader[0].body["text"]
        .as_str()
        .unwrap()
        .contains("已升级至带班领导"));
    // Escalation happens once.
    r.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(r.dispatcher.tick().await?.escalated, 0);
    Ok(())
}

#[tokio::test]
async fn channel_rate_limits_defer_without_losing() -> Result<()> {
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\n[[alerts.routes]]\nkinds = [\"*\"]\nflood_window_min = 0\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    )
    .replace("secret = \"webhook-secret-1234\"\n\n[[alerts.channels]]\nname = \"leader-hook\"", "secret = \"webhook-secret-1234\"\nrate_per_min = 2\n\n[[alerts.channels]]\nname = \"leader-hook\"");
    let r = rig(&alerts).await?;
    r.insert_health_kinds("school-gate").await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!(
        (report.delivered, report.rate_limited),
        (2, 2),
        "{report:?}"
    );
    r.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(r.dispatcher.tick().await?.delivered, 2);
    assert_eq!(rx.got().len(), 4);
    Ok(())
}

#[tokio::test]
async fn kill_between_store_and_delivery_is_delivered_by_the_next_dispatcher() -> Result<()> {
    // The outbox row is durable with the event: a dispatcher that never ran
    // (the process died) leaves it for the next one.
    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\n[[alerts.routes]]\nkinds = [\"*\"]\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    );
    let r = rig(&alerts).await?;
    r.store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    assert_eq!(r.store.waiting_outbox(10).await?.len(), 1);
    let second = Arc::new(Dispatcher::new(
        r.store.clone(),
        r.setup.clone(),
        &r.cameras,
        r.clock.clone(),
    ));
    assert_eq!(second.tick().await?.delivered, 1);
    assert_eq!(r.dispatcher.tick().await?.delivered, 0);
    assert_eq!(rx.got().len(), 1);
    Ok(())
}

#[tokio::test]
async fn secrets_do_not_show_in_debug_output() -> Result<()> {
    let alerts = format!(
        "[alerts]\nack_key = \"ack-key-0123456789\"\n[[alerts.routes]]\nkinds = [\"*\"]\n{}\n\
         [[alerts.channels]]\nname = \"ding\"\ntype = \"dingtalk\"\naccess_token = \"tok-SECRET-1\"\nsecret = \"SEC-SECRET-2\"\n\
         [[alerts.channels]]\nname = \"wc\"\ntype = \"wecom\"\nkey = \"key-SECRET-3\"\n",
        webhook_channels("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    );
    let r = rig(&alerts).await?;
    let dbg = format!("{:?}", r.setup);
    for s in [
        "ack-key-0123456789",
        "webhook-secret-1234",
        "tok-SECRET-1",
        "SEC-SECRET-2",
        "key-SECRET-3",
    ] {
        assert!(!dbg.contains(s), "{s} leaked in Debug");
    }
    Ok(())
}

/// Polls `check` every 20 ms until it holds; fails after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = std::time::Instant::now();
    while !check().await? {
        anyhow::ensure!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Every event goes to two webhooks: `slow` (timing out after `slow_timeout_s`)
/// and `fast`. `settings` go into `[alerts]`.
fn slow_and_fast(slow: &Receiver, slow_timeout_s: f64, fast: &Receiver, settings: &str) -> String {
    format!(
        r#"
[alerts]
retry_initial_s = 1
{settings}
[[alerts.routes]]
kinds = ["*"]
notify_on_duty = false
flood_window_min = 0
channels = ["slow", "fast"]

[[alerts.channels]]
name = "slow"
type = "webhook"
url = "{}"
timeout_s = {slow_timeout_s}

[[alerts.channels]]
name = "fast"
type = "webhook"
url = "{}"
{}
"#,
        slow.url("slow"),
        fast.url("fast"),
        webhook_channels(&fast.url("hook"), &fast.url("leader"))
    )
}

impl Rig {
    /// The delivery of `event_id`'s alert on `channel`, with its attempts.
    async fn delivery(
        &self,
        event_id: i64,
        channel: &str,
    ) -> Result<xueliang_store::alerts::DeliveryLog> {
        let alert = self
            .store
            .alert_of_event(event_id)
            .await?
            .context("no alert")?;
        self.store
            .deliveries(alert.id)
            .await?
            .into_iter()
            .find(|(d, _)| d.channel == channel)
            .with_context(|| format!("no delivery on {channel}"))
    }
}

#[tokio::test]
async fn a_hanging_receiver_holds_up_no_other_channel() -> Result<()> {
    // `slow` takes every request and never answers; its timeout is 3 s.
    let slow = Receiver::slow(Duration::from_secs(600)).await?;
    let fast = Receiver::start(0).await?;
    let r = rig(&slow_and_fast(&slow, 3.0, &fast, "")).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(r.dispatcher.clone().run(shutdown.clone()));

    let first = r
        .store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    eventually(
        Duration::from_secs(2),
        "first event sent on both",
        || async { Ok(slow.got_event(first) == 1 && fast.got_event(first) == 1) },
    )
    .await?;
    // A new alert while `slow` hangs reaches `fast` at once.
    let second = r
        .store
        .insert_event(event("school-gate", EventKind::VideoBlocked))
        .await?;
    eventually(Duration::from_secs(1), "second event on fast", || async {
        Ok(fast.got_event(second) == 1)
    })
    .await?;
    let (d, attempts) = r.delivery(first, "fast").await?;
    assert_eq!((d.status.as_str(), attempts.len()), ("delivered", 1));
    let (d, attempts) = r.delivery(first, "slow").await?;
    assert!(attempts.is_empty(), "slow has not answered yet: {d:?}");
    assert_eq!(d.status.as_str(), "pending");
    // Meanwhile the dispatcher went round several times (two events, two
    // answers from `fast`); the hanging delivery was sent once.
    assert_eq!(slow.got_event(first), 1);

    // The hanging attempt ends as a timeout, recorded and retried.
    eventually(Duration::from_secs(6), "slow attempt recorded", || async {
        Ok(!r.delivery(first, "slow").await?.1.is_empty())
    })
    .await?;
    let (d, attempts) = r.delivery(first, "slow").await?;
    assert_eq!(d.status.as_str(), "pending");
    assert_eq!(attempts[0].outcome.as_str(), "retriable");
    let error = attempts[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("no answer within 3s"), "{error}");
    assert_eq!(slow.got_event(first), 1, "no retry before the backoff");
    r.clock.advance(chrono::Duration::seconds(10));
    eventually(Duration::from_secs(3), "slow retried", || async {
        Ok(slow.got_event(first) == 2)
    })
    .await?;
    shutdown.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn a_delivery_in_flight_is_not_sent_again() -> Result<()> {
    let slow = Receiver::slow(Duration::from_secs(600)).await?;
    let fast = Receiver::start(0).await?;
    let r = rig(&slow_and_fast(&slow, 1.5, &fast, "")).await?;
    let id = r
        .store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    // A second round while the first still waits for `slow`: the delivery
    // is pending and due, but in flight.
    let (first, second) = tokio::join!(r.dispatcher.tick(), async {
        eventually(Duration::from_secs(1), "slow got it", || async {
            Ok(slow.got_event(id) == 1 && fast.got_event(id) == 1)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        r.dispatcher.tick().await.map_err(anyhow::Error::from)
    });
    let (first, second) = (first?, second?);
    assert_eq!(
        (first.started, first.delivered, first.retrying),
        (2, 1, 1),
        "{first:?}"
    );
    assert_eq!(second.started, 0, "{second:?}");
    assert_eq!((slow.got_event(id), fast.got_event(id)), (1, 1));
    assert_eq!(r.delivery(id, "slow").await?.1.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_channel_sends_at_most_concurrency_messages_at_once() -> Result<()> {
    let slow = Receiver::slow(Duration::from_secs(600)).await?;
    let fast = Receiver::start(0).await?;
    let r = rig(&slow_and_fast(&slow, 0.5, &fast, "concurrency = 1")).await?;
    r.insert_health_kinds("school-gate").await?;
    let report = r.dispatcher.tick().await?;
    assert_eq!(
        (report.started, report.delivered, report.retrying),
        (8, 4, 4),
        "{report:?}"
    );
    // `slow` got its four one after the other, each after the previous timed out.
    let slow_got = slow.got();
    let mut events: Vec<i64> = slow_got
        .iter()
        .filter_map(|g| g.body["event_id"].as_i64())
        .collect();
    events.dedup();
    assert_eq!(events.len(), 4, "{events:?}");
    for pair in slow_got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(450), "{gap:?}");
    }
    // `fast` did not wait for them.
    let fast_got = fast.got();
    assert_eq!(fast_got.len(), 4);
    assert!(fast_got.iter().all(|g| g.at < slow_got[1].at));
    Ok(())
}

#[tokio::test]
async fn shutdown_lets_quick_sends_finish_and_leaves_the_rest_due() -> Result<()> {
    let slow = Receiver::slow(Duration::from_secs(600)).await?;
    let fast = Receiver::slow(Duration::from_millis(500)).await?;
    let r = rig(&slow_and_fast(&slow, 30.0, &fast, "")).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(r.dispatcher.clone().run(shutdown.clone()));
    let id = r
        .store
        .insert_event(event("school-gate", EventKind::CameraOffline))
        .await?;
    eventually(Duration::from_secs(2), "both sending", || async {
        Ok(slow.got_event(id) == 1 && fast.got_event(id) == 1)
    })
    .await?;
    shutdown.cancel();
    let stopping = std::time::Instant::now();
    task.await?;
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "{:?}",
        stopping.elapsed()
    );
    // `fast` answered within the grace: recorded.
    let (d, attempts) = r.delivery(id, "fast").await?;
    assert_eq!((d.status.as_str(), attempts.len()), ("delivered", 1));
    // `slow` never answered: no attempt recorded, still due for the next start.
    let (d, attempts) = r.delivery(id, "slow").await?;
    assert_eq!((d.status.as_str(), attempts.len()), ("pending", 0));
    let due = r
        .store
        .due_deliveries(r.clock.now(), 10, &Default::default())
        .await?;
    assert_eq!(due.iter().map(|x| x.id).collect::<Vec<_>>(), [d.id]);
    Ok(())
}

/// Several nodes on one PostgreSQL database (whatever
/// `XUELIANG_TEST_BACKEND` says): each runs a dispatcher, as `serve` does;
/// every delivery reaches the receiver once, and when the leading node goes,
/// the other sends what comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_nodes_send_each_delivery_once_and_one_takes_over() -> Result<()> {
    use tokio_util::sync::CancellationToken;
    use xueliang_store::testing::TestDatabase;
    use xueliang_store::{AlertStore, EventStore, PgStore};

    let rx = Receiver::start(0).await?;
    let alerts = format!(
        "[alerts]\n[[alerts.routes]]\nkinds = [\"*\"]\nflood_window_min = 0\n{}",
        webhook_channels(&rx.url("hook"), &rx.url("leader"))
    );
    let config = Config::parse(&format!("{}\n{alerts}\n{CAMERAS}", organisation()))
        .map_err(anyhow::Error::msg)?;
    let setup = AlertSetup::from_config(&config)?;
    let clock = Arc::new(ManualClock::new(t0()));
    let db = TestDatabase::create().await;
    let start = |store: Arc<PgStore>| {
        let dispatcher = Arc::new(Dispatcher::new(
            store,
            setup.clone(),
            &config.cameras,
            clock.clone(),
        ));
        let stop = CancellationToken::new();
        (stop.clone(), tokio::spawn(dispatcher.run(stop)))
    };
    let a = Arc::new(PgStore::open(&db.url).await?);
    let b = Arc::new(PgStore::open(&db.url).await?);
    let nodes = [(a.clone(), start(a.clone())), (b.clone(), start(b.clone()))];

    // Events on both nodes; each one's alert goes to `hook` once.
    let mut ids = Vec::new();
    for i in 0..10 {
        let (store, _) = &nodes[i % 2];
        ids.push(
            store
                .insert_event(event("school-gate", EventKind::CameraOffline))
                .await?,
        );
    }
    eventually(Duration::from_secs(10), "every event sent", || async {
        Ok(ids.iter().all(|&id| rx.got_event(id) > 0))
    })
    .await?;
    // Time for a second node's copy to arrive, were there one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let once = |ids: &[i64]| {
        let got = rx.got();
        let mut keys: Vec<&str> = got
            .iter()
            .map(|g| g.headers["idempotency-key"].as_str())
            .collect();
        keys.sort();
        let all = keys.len();
        keys.dedup();
        let per_event: Vec<usize> = ids.iter().map(|&id| rx.got_event(id)).collect();
        (all, keys.len(), per_event)
    };
    assert_eq!(once(&ids), (10, 10, vec![1; 10]));

    // One node leads.
    let leads: Vec<bool> = nodes
        .iter()
        .map(|(s, _)| s.leadership().leads_now())
        .collect();
    assert!(
        leads == [true, false] || leads == [false, true],
        "{leads:?}"
    );
    let [first, second] = nodes;
    let ((leader, (stop, task)), (survivor, _running)) = if leads[0] {
        (first, second)
    } else {
        (second, first)
    };
    // The leader's node stops: its dispatcher, then its store.
    stop.cancel();
    task.await?;
    leader.close().await;
    drop(leader);
    drop((a, b));

    let gone = std::time::Instant::now();
    let more: Vec<i64> = {
        let mut more = Vec::new();
        for _ in 0..4 {
            more.push(
                survivor
                    .insert_event(event("school-gate", EventKind::VideoBlocked))
                    .await?,
            );
        }
        more
    };
    eventually(
        Duration::from_secs(15),
        "the other node sends what comes next",
        || async { Ok(more.iter().all(|&id| rx.got_event(id) > 0)) },
    )
    .await?;
    assert!(survivor.leadership().leads_now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all: Vec<i64> = ids.iter().chain(&more).copied().collect();
    assert_eq!(
        once(&all),
        (14, 14, vec![1; 14]),
        "after {:?}",
        gone.elapsed()
    );
    Ok(())
}
