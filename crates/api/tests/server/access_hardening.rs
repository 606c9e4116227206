//! The access findings of issue 13, over a real port, a real SQLite file and
//! real HTTP clients: login delays instead of lock-out, the per-address
//! limit behind trusted proxies and under a burst, tokens that cannot
//! outlive their maker, password changes that revoke API tokens, the scoped
//! organisation, bounded reports, acknowledgement links that act only on
//! POST and expire, and the live feed's end on revocation and its resumption.

use crate::common::PASSWORD;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};
use xueliang_api::limiter::LoginPolicy;
use xueliang_api::{AppState, FixedCameras};
use xueliang_core::{Config, EventKind, ManualClock, Role, TrustedProxies};
use xueliang_store::testing::TestStore;
use xueliang_store::Store;

const CONFIG: &str = r#"
[organisation]
township = "青山镇"

[[organisation.villages]]
name = "东村"
grids = ["东村一网格"]

[[organisation.villages]]
name = "西村"
grids = ["西村二网格"]

[[organisation.officers]]
id = "li"
name = "李明"
phone = "13800000001"

[[organisation.officers]]
id = "wang"
name = "王强"
phone = "13800000002"

[[organisation.officers]]
id = "boss"
name = "带班领导"
phone = "13800000003"

[[organisation.roster]]
officer = "li"
villages = ["东村"]

[[organisation.roster]]
officer = "wang"
grids = ["西村二网格"]

[[organisation.duty_leaders]]
officer = "boss"

[alerts]
ack_key = "test-ack-key-0123456789"

[[alerts.routes]]
kinds = ["*"]
channels = ["hook"]

[[alerts.channels]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/nobody-listens"

[[cameras]]
id = "east-gate"
name = "东村村口"
url = "rtsp://127.0.0.1:8554/east"
village = "东村"
grid = "东村一网格"

[[cameras]]
id = "west-school"
name = "西村小学"
url = "rtsp://127.0.0.1:8554/west"
village = "西村"
grid = "西村二网格"
"#;

const ACK_KEY: &str = "test-ack-key-0123456789";

struct Centre {
    base: String,
    store: Arc<dyn Store>,
    config: Config,
    state: AppState,
    _dir: TestStore,
}

/// Short delays so that waiting is quick.
fn quick_policy() -> LoginPolicy {
    LoginPolicy {
        first_delay: StdDuration::from_millis(50),
        max_delay: StdDuration::from_millis(200),
        ..LoginPolicy::default()
    }
}

fn proxies(list: &[&str]) -> TrustedProxies {
    TrustedProxies::try_from(list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

async fn centre_with(configure: impl FnOnce(AppState) -> AppState) -> Centre {
    let (store, dir) = crate::common::store().await;
    let config = Config::parse(CONFIG).unwrap();
    let cameras = crate::common::online_cameras(&config);
    let setup = xueliang_alerts::AlertSetup::from_config(&config).unwrap();
    let alerts = Arc::new(xueliang_alerts::AlertService::new(store.clone(), &setup));
    let state = configure(AppState::new(
        store.clone(),
        store.clone(),
        Arc::new(FixedCameras(cameras)),
        Some(alerts),
    ));
    let base = crate::common::serve_state(state.clone()).await;
    Centre {
        base,
        store,
        config,
        state,
        _dir: dir,
    }
}

async fn centre() -> Centre {
    centre_with(|s| s.with_login_policy(quick_policy())).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

impl Centre {
    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, username: &str, password: &str) -> (u16, Value) {
        self.call(
            None,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// A login from behind a proxy that says the client is `forwarded_for`.
    async fn login_via(&self, forwarded_for: &str, username: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.base))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"username": username, "password": "wrong-password"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn session(&self, username: &str) -> String {
        let (status, v) = self.login(username, PASSWORD).await;
        assert_eq!(status, 200, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    async fn event(&self, camera: &str, village: &str, minute: i64) -> i64 {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 14, 0, 0).unwrap() + Duration::minutes(minute);
        let e = crate::common::event(camera, village, EventKind::Intrusion, "person", at, false);
        self.store.insert_event(e).await.unwrap()
    }
}

// ------------------------------------------------------------------ login

#[tokio::test]
async fn a_correct_password_after_failures_still_works_after_growing_delays() {
    let c = centre().await;
    c.user_named("duty").await;
    let mut took = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let (status, v) = c.login("duty", "wrong-password").await;
        took.push(t.elapsed());
        assert_eq!((status, code(&v)), (401, "invalid_credentials"));
    }
    // The waits grow (0, 50, 100, 200 ms, then capped at 200 ms). Lower
    // bounds only: on a loaded machine the password check itself varies by
    // more than the difference between two waits.
    assert!(took[1] >= StdDuration::from_millis(50), "{took:?}");
    assert!(took[2] >= StdDuration::from_millis(100), "{took:?}");
    assert!(took[3] >= StdDuration::from_millis(200), "{took:?}");
    // The owner still gets in, after the capped delay: no lock-out.
    let t = Instant::now();
    let (status, v) = c.login("duty", PASSWORD).await;
    assert_eq!(status, 200, "{v}");
    assert!(t.elapsed() >= StdDuration::from_millis(200));
    // A success clears the name's failures: no wait any more.
    let t = Instant::now();
    assert_eq!(c.login("duty", "wrong-password").await.0, 401);
    assert!(
        t.elapsed() < StdDuration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(c.state.limiter.failures_total(), 8);
}

impl Centre {
    async fn user_named(&self, name: &str) -> i64 {
        crate::common::user(&*self.store, name, Role::Operator, &[]).await
    }
}

#[tokio::test]
async fn a_burst_of_300_parallel_logins_gets_no_more_checks_than_the_address_limit() {
    // The default policy: 20 per address.
    let c = centre_with(|s| s).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/auth/login", c.base);
    let attempts = (0..300).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"username": format!("guess{i}"), "password": "wrong-password"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 300, "{statuses:?}");
    assert!(checked <= 20, "{checked} passwords checked");
    assert_eq!(c.state.limiter.refused_total() as usize, refused);
}

#[tokio::test]
async fn the_address_limit_counts_the_client_behind_a_trusted_proxy_only() {
    let policy = LoginPolicy {
        per_address: 3,
        ..quick_policy()
    };
    // 127.0.0.1 (the test's own address) is a trusted proxy.
    let c = centre_with(|s| {
        s.with_login_policy(policy.clone())
            .with_trusted_proxies(proxies(&["127.0.0.0/8"]))
    })
    .await;
    for i in 0..3 {
        assert_eq!(c.login_via("198.51.100.1", &format!("a{i}")).await, 401);
    }
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", c.base))
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({"username": "a3", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    // A forged left part does not help: read from the right.
    assert_eq!(c.login_via("203.0.113.9, 198.51.100.1", "a4").await, 429);
    // Another client behind the same proxy is not limited by the first.
    assert_eq!(c.login_via("198.51.100.2", "b0").await, 401);

    // Not trusted: the header is ignored, every attempt is 127.0.0.1's.
    let c = centre_with(|s| {
        s.with_login_policy(policy)
            .with_trusted_proxies(proxies(&["10.0.0.0/8"]))
    })
    .await;
    for i in 0..3 {
        let forged = format!("198.51.100.{i}");
        assert_eq!(c.login_via(&forged, &format!("c{i}")).await, 401);
    }
    assert_eq!(c.login_via("198.51.100.99", "c9").await, 429);
}

// ------------------------------------------------------------------ tokens

#[tokio::test]
async fn a_session_cannot_make_a_token_that_outlives_it_without_the_password() {
    let c = centre().await;
    c.user_named("duty").await;
    crate::common::user(&*c.store, "chief", Role::Admin, &[]).await;
    let session = c.session("duty").await;
    let make = |body: Value| c.call(Some(&session), "POST", "/api/v1/tokens", Some(body));
    let (status, v) = make(json!({"name": "script"})).await;
    assert_eq!((status, code(&v)), (403, "password_required"), "{v}");
    let (status, v) = make(json!({"name": "script", "expires_in_days": 1})).await;
    assert_eq!((status, code(&v)), (403, "password_required"), "{v}");
    let (status, v) = make(json!({"name": "script", "password": "not-it-at-all"})).await;
    assert_eq!((status, code(&v)), (403, "wrong_password"), "{v}");
    // The session still works after a wrong password.
    assert_eq!(
        c.call(Some(&session), "GET", "/api/v1/auth/me", None)
            .await
            .0,
        200
    );
    let (status, v) = make(json!({"name": "script", "password": PASSWORD})).await;
    assert_eq!(status, 201, "{v}");
    assert!(v["expires_at"].is_null());
    // An admin needs no password.
    let admin = c.session("chief").await;
    let (status, v) = c
        .call(
            Some(&admin),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
}

#[tokio::test]
async fn a_password_change_revokes_the_users_api_tokens() {
    let c = centre().await;
    let admin = crate::common::user_token(&*c.store, "chief", Role::Admin, &[]).await;
    let api = crate::common::user_token(&*c.store, "county", Role::Viewer, &[]).await;
    assert_eq!(
        c.call(Some(&api), "GET", "/api/v1/auth/me", None).await.0,
        200
    );
    let id = c
        .store
        .user_for_login("county".into())
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let (status, v) = c
        .call(
            Some(&admin),
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(json!({"password": "a-brand-new-password"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = c.call(Some(&api), "GET", "/api/v1/auth/me", None).await;
    assert_eq!((status, code(&v)), (401, "unauthenticated"));
}

// ------------------------------------------------------------------ organisation, reports

#[tokio::test]
async fn the_organisation_shows_a_village_user_only_their_villages() {
    let c = centre().await;
    let east = crate::common::user_token(&*c.store, "east", Role::Operator, &["东村"]).await;
    let all = crate::common::user_token(&*c.store, "centre", Role::Operator, &[]).await;
    let (status, org) = c
        .call(Some(&east), "GET", "/api/v1/organisation", None)
        .await;
    assert_eq!(status, 200, "{org}");
    let text = org.to_string();
    assert!(!text.contains("西村") && !text.contains("wang"), "{org}");
    assert!(!text.contains("13800000002"), "{org}");
    let ids: Vec<&str> = org["officers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["li", "boss"]);
    assert_eq!(org["roster"].as_array().unwrap().len(), 1);
    assert_eq!(org["duty_leaders"][0]["officer"], "boss");
    let (_, org) = c
        .call(Some(&all), "GET", "/api/v1/organisation", None)
        .await;
    assert_eq!(org["officers"].as_array().unwrap().len(), 3);
    assert!(org.to_string().contains("西村"));
}

#[tokio::test]
async fn report_ranges_and_bucket_counts_are_bounded() {
    let c = centre().await;
    let t = crate::common::user_token(&*c.store, "centre", Role::Viewer, &[]).await;
    for (path, name) in [
        (
            "/api/v1/reports/availability?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        (
            "/api/v1/reports/line-crossings?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=minute",
            "bucket",
        ),
        (
            "/api/v1/stats/events?since=2024-01-01T00:00:00Z&until=2026-01-01T00:00:00Z&bucket=hour",
            "bucket",
        ),
    ] {
        let (status, v) = c.call(Some(&t), "GET", path, None).await;
        assert_eq!((status, code(&v)), (400, "invalid_parameter"), "{path}: {v}");
        crate::common::assert_names(&v, name, path);
    }
    let ok = "/api/v1/reports/availability?from=2025-06-01T00:00:00Z&to=2026-01-01T00:00:00Z";
    assert_eq!(c.call(Some(&t), "GET", ok, None).await.0, 200);
}

// ------------------------------------------------------------------ acknowledgement links

/// Opens an alert for a new event of `east-gate`; the alert's id.
async fn open_alert(c: &Centre) -> i64 {
    let event = c.event("east-gate", "东村", 1).await;
    let setup = xueliang_alerts::AlertSetup::from_config(&c.config).unwrap();
    let dispatcher = Arc::new(xueliang_alerts::Dispatcher::new(
        c.store.clone(),
        setup,
        &c.config.cameras,
        Arc::new(ManualClock::new(Utc::now())),
    ));
    dispatcher.tick().await.unwrap();
    c.store.alert_of_event(event).await.unwrap().unwrap().id
}

fn ack_link(c: &Centre, alert: i64, officer: &str, expires: i64) -> String {
    let sig = xueliang_alerts::sign::ack_signature(ACK_KEY, alert, officer, expires);
    format!(
        "{}/api/v1/alerts/{alert}/ack?officer={officer}&exp={expires}&sig={sig}",
        c.base
    )
}

#[tokio::test]
async fn the_ack_link_shows_the_alert_and_only_its_post_acknowledges() {
    let c = centre().await;
    let admin = crate::common::user_token(&*c.store, "chief", Role::Admin, &[]).await;
    let alert = open_alert(&c).await;
    let status_of = || async {
        let (_, a) = c
            .call(
                Some(&admin),
                "GET",
                &format!("/api/v1/alerts/{alert}"),
                None,
            )
            .await;
        a["status"].as_str().unwrap_or_default().to_owned()
    };
    let link = ack_link(
        &c,
        alert,
        "li",
        (Utc::now() + Duration::days(7)).timestamp(),
    );
    let http = reqwest::Client::new();
    // A GET (a link preview, a mail scanner) changes nothing.
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let page = r.text().await.unwrap();
    for part in [
        "告警确认",
        "东村村口",
        "未确认",
        "<form method=post>",
        "确认收到",
    ] {
        assert!(page.contains(part), "{part} missing: {page}");
    }
    assert_eq!(status_of().await, "open");
    // The confirm button POSTs to the same URL.
    let r = http.post(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("已确认（li）"));
    assert_eq!(status_of().await, "acknowledged");
    // A POST without the signed query still needs a token.
    let bare = format!("{}/api/v1/alerts/{alert}/ack", c.base);
    assert_eq!(http.post(&bare).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn an_expired_or_altered_ack_link_does_nothing() {
    let c = centre().await;
    let admin = crate::common::user_token(&*c.store, "chief", Role::Admin, &[]).await;
    let alert = open_alert(&c).await;
    let http = reqwest::Client::new();
    let expired = ack_link(
        &c,
        alert,
        "li",
        (Utc::now() - Duration::minutes(1)).timestamp(),
    );
    assert_eq!(http.get(&expired).send().await.unwrap().status(), 410);
    let r = http.post(&expired).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("过期"));
    // Moving the expiry breaks the signature.
    let later = (Utc::now() + Duration::days(30)).timestamp();
    let altered = expired.replace(
        &format!("exp={}", (Utc::now() - Duration::minutes(1)).timestamp()),
        &format!("exp={later}"),
    );
    assert_ne!(altered, expired);
    assert_eq!(http.post(&altered).send().await.unwrap().status(), 403);
    let (_, a) = c
        .call(
            Some(&admin),
            "GET",
            &format!("/api/v1/alerts/{alert}"),
            None,
        )
        .await;
    assert_eq!(a["status"], "open");
}

// ------------------------------------------------------------------ live feed

/// Reads Server-Sent Events from a response.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
struct SseEvent {
    event: String,
    id: String,
    data: String,
}

impl Sse {
    async fn open(c: &Centre, token: &str, last_id: Option<&str>) -> Sse {
        let mut req = reqwest::Client::new()
            .get(format!("{}/api/v1/events/stream", c.base))
            .bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or `None` when the
    /// stream ends; panics after 5 s.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut e = SseEvent {
                    event: String::new(),
                    id: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        e.event = v.into();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        e.id = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        e.data = v.into();
                    }
                }
                if e.event.is_empty() && e.data.is_empty() {
                    continue;
                }
                return Some(e);
            }
            let chunk = tokio::time::timeout(StdDuration::from_secs(5), self.response.chunk())
                .await
                .expect("an SSE event within 5 s")
                .unwrap()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Asserts the feed says it is closed and then ends.
    async fn assert_closed(&mut self, reason: &str) {
        let e = self.next().await.expect("a closing event");
        assert_eq!((e.event.as_str(), e.data.as_str()), ("closed", reason));
        assert!(self.next().await.is_none(), "the stream ended");
    }
}

fn event_id(e: &SseEvent) -> i64 {
    serde_json::from_str::<Value>(&e.data).unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn the_live_feed_ends_when_its_token_or_user_changes() {
    let c = centre().await;
    let admin = crate::common::user_token(&*c.store, "chief", Role::Admin, &[]).await;
    // Logged out.
    c.user_named("duty").await;
    let session = c.session("duty").await;
    let mut feed = Sse::open(&c, &session, None).await;
    c.event("east-gate", "东村", 1).await;
    assert_eq!(feed.next().await.unwrap().event, "started");
    assert_eq!(
        c.call(Some(&session), "POST", "/api/v1/auth/logout", None)
            .await
            .0,
        204
    );
    feed.assert_closed("token_revoked").await;

    // Villages changed by an admin.
    let east = crate::common::user(&*c.store, "east", Role::Operator, &["东村"]).await;
    let session = c.session("east").await;
    let mut feed = Sse::open(&c, &session, None).await;
    let patch = json!({"villages": ["东村", "西村"]});
    let path = format!("/api/v1/users/{east}");
    assert_eq!(
        c.call(Some(&admin), "PATCH", &path, Some(patch)).await.0,
        200
    );
    feed.assert_closed("access_changed").await;

    // Disabled.
    let mut feed = Sse::open(&c, &c.session("east").await, None).await;
    let patch = json!({"disabled": true});
    assert_eq!(
        c.call(Some(&admin), "PATCH", &path, Some(patch)).await.0,
        200
    );
    // Disabling revokes the tokens too; either way the feed ends.
    let e = feed.next().await.unwrap();
    assert_eq!(e.event, "closed");
    assert!(feed.next().await.is_none());
}

#[tokio::test]
async fn the_live_feed_notices_a_revocation_made_outside_the_api() {
    let c = centre_with(|s| s.with_live_recheck(StdDuration::from_millis(200))).await;
    let token = crate::common::user_token(&*c.store, "county", Role::Viewer, &[]).await;
    let mut feed = Sse::open(&c, &token, None).await;
    // As `xueliang` on the command line would: straight into the database.
    let tokens = c.store.list_tokens(None).await.unwrap();
    c.store
        .revoke_token(tokens[0].id, Utc::now())
        .await
        .unwrap();
    let t = Instant::now();
    feed.assert_closed("token_revoked").await;
    assert!(t.elapsed() < StdDuration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn last_event_id_resumes_the_feed_without_missing_changes() {
    let c = centre().await;
    let east = crate::common::user_token(&*c.store, "east", Role::Operator, &["东村"]).await;
    let mut feed = Sse::open(&c, &east, None).await;
    let first = c.event("east-gate", "东村", 1).await;
    let seen = feed.next().await.unwrap();
    assert_eq!(event_id(&seen), first);
    drop(feed);
    // While disconnected: two events of 东村, one of 西村 (not theirs).
    let second = c.event("east-gate", "东村", 2).await;
    c.event("west-school", "西村", 3).await;
    let third = c.event("east-gate", "东村", 4).await;
    // The store announces changes asynchronously: let the feed record them.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let mut feed = Sse::open(&c, &east, Some(&seen.id)).await;
    let a = feed.next().await.unwrap();
    let b = feed.next().await.unwrap();
    assert_eq!((event_id(&a), event_id(&b)), (second, third));
    assert_eq!(a.event, "started");
    // Then live, with no repeat.
    let fourth = c.event("east-gate", "东村", 5).await;
    let d = feed.next().await.unwrap();
    assert_eq!(event_id(&d), fourth);
    let seq = |e: &SseEvent| e.id.split_once('-').unwrap().1.parse::<u64>().unwrap();
    assert!(seq(&d) > seq(&b), "{} after {}", d.id, b.id);

    // An id this server never gave (another process, a restart): reload.
    let mut feed = Sse::open(&c, &east, Some("0badc0de-7")).await;
    let e = feed.next().await.unwrap();
    assert_eq!((e.event.as_str(), e.data.as_str()), ("lagged", "unknown"));
}
