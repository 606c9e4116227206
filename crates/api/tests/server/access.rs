//! Access control over a real port and a real SQLite file: tokens on every
//! endpoint, login and its rate limit, roles, village scopes (a leak fails
//! here), the event workflow and its audit trail, stats, pagination while
//! events arrive, and secrets that never come back.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use xueliang_api::FixedCameras;
use xueliang_core::{Config, EventKind, NewEvent, Role};
use xueliang_store::testing::TestStore;
use xueliang_store::Store;

const CONFIG: &str = r#"
[[cameras]]
id = "east-gate"
name = "东村村口"
url = "rtsp://127.0.0.1:8554/east"
username = "admin"
password = "cam-secret-east-41"
village = "东村"
grid = "东村一网格"

[[cameras]]
id = "west-school"
name = "西村小学"
url = "rtsp://127.0.0.1:8554/west"
username = "admin"
password = "cam-secret-west-42"
village = "西村"
grid = "西村二网格"
"#;

struct Centre {
    base: String,
    store: Arc<dyn Store>,
    _dir: TestStore,
}

async fn centre() -> Centre {
    let (store, dir) = crate::common::store().await;
    let config = Config::parse(CONFIG).unwrap();
    let cameras = crate::common::online_cameras(&config);
    let base = crate::common::serve(&store, Arc::new(FixedCameras(cameras))).await;
    Centre {
        base,
        store,
        _dir: dir,
    }
}

use crate::common::PASSWORD;

impl Centre {
    async fn user(&self, name: &str, role: Role, villages: &[&str]) -> i64 {
        crate::common::user(&*self.store, name, role, villages).await
    }

    /// A user and an API token for them.
    async fn token(&self, name: &str, role: Role, villages: &[&str]) -> String {
        crate::common::user_token(&*self.store, name, role, villages).await
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, bytes) = self.raw(token, method, path, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn raw(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
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
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(Some(token), "GET", path, None).await
    }

    async fn event(&self, camera: &str, village: &str, minute: i64) -> i64 {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 14, 0, 0).unwrap() + Duration::minutes(minute);
        let mut e = crate::common::event(camera, village, EventKind::Intrusion, "person", at, true);
        e.score = 0.5 + minute as f32 / 1000.0;
        self.store.insert_event(e).await.unwrap()
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Every documented path refuses a request without a token, but the few
/// that must be public, and the document says which those are.
#[tokio::test]
async fn every_endpoint_needs_a_token() {
    let c = centre().await;
    let doc = serde_json::to_value(xueliang_api::openapi_document()).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let public = path == "/healthz"
                || path == "/readyz"
                || path == "/api/v1/auth/login"
                || (path == "/api/v1/alerts/{id}/ack" && method == "get");
            assert_eq!(
                op.get("security") == Some(&json!([])),
                public,
                "{method} {path}: documented as public (`security: []`) or not"
            );
            if public {
                continue;
            }
            let url = path.replace("{id}", "1");
            let body = (method != "get").then(|| json!({}));
            let (status, v) = c.call(None, &method.to_uppercase(), &url, body).await;
            assert_eq!(
                (status, code(&v)),
                (401, "unauthenticated"),
                "{method} {path}"
            );
            let (status, _) = c
                .call(Some("xl_not-a-token"), &method.to_uppercase(), &url, None)
                .await;
            assert_eq!(status, 401, "{method} {path} with a made-up token");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations checked");
    assert_eq!(c.call(None, "GET", "/healthz", None).await.0, 200);
    assert_eq!(c.call(None, "GET", "/readyz", None).await.0, 200);
}

#[tokio::test]
async fn login_sets_a_session_cookie_and_logout_ends_it() {
    let c = centre().await;
    c.user("duty", Role::Operator, &[]).await;
    let (status, headers, body) = c
        .raw(
            None,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "duty", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["user"]["role"], "operator");
    assert!(v["user"].get("password_hash").is_none());
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with(&format!("xueliang_session={token}")));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));

    // The cookie alone works, as the dashboard uses it.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/auth/me", c.base))
        .header("cookie", format!("xueliang_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A change with the cookie from another site is refused.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/logout", c.base))
        .header("cookie", format!("xueliang_session={token}"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (status, _) = c
        .call(Some(&token), "POST", "/api/v1/auth/logout", None)
        .await;
    assert_eq!(status, 204);
    let (status, v) = c.get(&token, "/api/v1/auth/me").await;
    assert_eq!((status, code(&v)), (401, "unauthenticated"));

    // Only the hash is stored.
    let stored: Vec<String> = sqlx_hashes(&c).await;
    assert!(!stored.iter().any(|h| h.contains(&token)));
    assert!(stored.contains(&xueliang_api::auth::token_hash(&token)));
}

async fn sqlx_hashes(c: &Centre) -> Vec<String> {
    // Read the database the way an attacker with it would: with its own
    // shell (sqlite3 on the file, psql on the server).
    let sql = "SELECT token_hash FROM tokens";
    let url = &c._dir.url;
    let out = match url.strip_prefix("sqlite://") {
        Some(file) => std::process::Command::new("sqlite3")
            .args([file, sql])
            .output(),
        None => std::process::Command::new("psql")
            .args([url.as_str(), "-Atc", sql])
            .output(),
    };
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        Ok(o) => panic!("{sql}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("the database's shell (sqlite3 or psql) is needed: {e}"),
    }
}

/// Login limits: `access_hardening.rs` (delays per username, the address
/// limit, trusted proxies, bursts).
#[tokio::test]
async fn an_unknown_user_gets_the_same_answer_as_a_wrong_password() {
    let c = centre().await;
    c.user("duty", Role::Operator, &[]).await;
    let attempt = |username: &'static str| {
        let c = &c;
        async move {
            let (status, v) = c
                .call(
                    None,
                    "POST",
                    "/api/v1/auth/login",
                    Some(json!({"username": username, "password": "wrong-password"})),
                )
                .await;
            (status, code(&v).to_owned())
        }
    };
    let wrong = attempt("duty").await;
    assert_eq!(wrong, (401, "invalid_credentials".to_owned()));
    assert_eq!(attempt("nobody").await, wrong);
}

#[tokio::test]
async fn roles_limit_what_a_user_can_do() {
    let c = centre().await;
    let admin = c.token("chief", Role::Admin, &[]).await;
    let operator = c.token("duty", Role::Operator, &[]).await;
    let viewer = c.token("guest", Role::Viewer, &[]).await;
    let id = c.event("east-gate", "东村", 1).await;
    let ack = json!({"action": "acknowledge"});
    let path = format!("/api/v1/events/{id}/actions");

    let (status, v) = c
        .call(Some(&viewer), "POST", &path, Some(ack.clone()))
        .await;
    assert_eq!((status, code(&v)), (403, "forbidden"));
    let (status, _) = c.get(&viewer, "/api/v1/users").await;
    assert_eq!(status, 403);
    let (status, _) = c.get(&operator, "/api/v1/users").await;
    assert_eq!(status, 403);
    let (status, _) = c.get(&operator, "/api/v1/audit").await;
    assert_eq!(status, 403);
    let new_user = json!({"username": "x", "password": "long-enough-1", "role": "viewer"});
    let (status, _) = c
        .call(
            Some(&operator),
            "POST",
            "/api/v1/users",
            Some(new_user.clone()),
        )
        .await;
    assert_eq!(status, 403);

    let (status, v) = c.call(Some(&operator), "POST", &path, Some(ack)).await;
    assert_eq!(
        (status, v["workflow"]["state"].as_str()),
        (200, Some("acknowledged"))
    );
    let (status, v) = c
        .call(Some(&admin), "POST", "/api/v1/users", Some(new_user))
        .await;
    assert_eq!((status, v["role"].as_str()), (201, Some("viewer")));
    assert!(v.get("password").is_none() && v.get("password_hash").is_none());
}

/// A user of 东村 must see nothing of 西村 anywhere.
#[tokio::test]
async fn a_village_user_sees_only_their_village() {
    let c = centre().await;
    let east = c.token("east", Role::Operator, &["东村"]).await;
    let all = c.token("centre", Role::Viewer, &[]).await;
    let e1 = c.event("east-gate", "东村", 1).await;
    let w1 = c.event("west-school", "西村", 2).await;

    let (_, v) = c.get(&east, "/api/v1/events").await;
    let ids: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![e1]);
    let (_, v) = c.get(&east, "/api/v1/events?village=西村").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    let (_, v) = c.get(&all, "/api/v1/events").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);

    for path in [
        format!("/api/v1/events/{w1}"),
        format!("/api/v1/events/{w1}/snapshot.jpg"),
        format!("/api/v1/events/{w1}/actions"),
        "/api/v1/cameras/west-school/health".to_owned(),
    ] {
        let (status, v) = c.get(&east, &path).await;
        assert_eq!((status, code(&v)), (404, "not_found"), "{path}");
    }
    let (status, _) = c
        .call(
            Some(&east),
            "POST",
            &format!("/api/v1/events/{w1}/actions"),
            Some(json!({"action": "resolve"})),
        )
        .await;
    assert_eq!(status, 404);

    let (_, v) = c.get(&east, "/api/v1/cameras").await;
    let cams: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(cams, vec!["east-gate"]);

    let (_, v) = c
        .get(&east, "/api/v1/stats/events?since=2026-11-29T00:00:00Z&until=2026-11-30T00:00:00Z&group_by=village")
        .await;
    assert_eq!(v["total"], 1, "{v}");
    assert!(!v.to_string().contains("西村"), "{v}");
    let (status, _) = c
        .get(&east, "/api/v1/reports/availability?group_by=township")
        .await;
    assert_eq!(status, 403);

    // The live feed: a 西村 event never reaches the 东村 user.
    let mut feed = reqwest::Client::new()
        .get(format!("{}/api/v1/events/stream", c.base))
        .bearer_auth(&east)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let w2 = c.event("west-school", "西村", 3).await;
    let e2 = c.event("east-gate", "东村", 4).await;
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !text.contains(&format!("\"id\":{e2}")) && std::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), feed.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(&format!("\"id\":{e2}")), "{text}");
    assert!(
        !text.contains(&format!("\"id\":{w2}")) && !text.contains("西村"),
        "{text}"
    );
}

#[tokio::test]
async fn the_workflow_is_recorded_with_user_and_time() {
    let c = centre().await;
    let op = c.token("duty", Role::Operator, &[]).await;
    let admin = c.token("chief", Role::Admin, &[]).await;
    let id = c.event("east-gate", "东村", 1).await;
    let path = format!("/api/v1/events/{id}/actions");
    let act = |body: Value| {
        let (c, op, path) = (&c, &op, &path);
        async move { c.call(Some(op), "POST", path, Some(body)).await }
    };
    let (s, v) = act(json!({"action": "acknowledge"})).await;
    assert_eq!(
        (s, v["workflow"]["updated_by"].as_str()),
        (200, Some("duty"))
    );
    let (s, v) = act(json!({"action": "acknowledge"})).await;
    assert_eq!((s, code(&v)), (409, "invalid_transition"));
    let (s, v) = act(json!({"action": "assign"})).await;
    assert_eq!(
        (
            s,
            v["error"]["message"].as_str().unwrap().contains("assignee")
        ),
        (400, true)
    );
    let (s, v) = act(json!({"action": "assign", "assignee": "网格员王五"})).await;
    assert_eq!(
        (s, v["workflow"]["assignee"].as_str()),
        (200, Some("网格员王五"))
    );
    let (s, _) = act(json!({"action": "note", "note": "已电话联系村委"})).await;
    assert_eq!(s, 200);
    let (s, v) = act(json!({"action": "resolve", "note": "人员已离开"})).await;
    assert_eq!(
        (s, v["workflow"]["state"].as_str()),
        (200, Some("resolved"))
    );
    let (s, _) = act(json!({"action": "false_alarm"})).await;
    assert_eq!(s, 409, "closed events take only notes");
    let (s, v) = act(json!({"action": "escalate"})).await;
    assert_eq!((s, code(&v)), (400, "invalid_parameter"));

    let (_, trail) = c.get(&op, &format!("/api/v1/events/{id}/actions")).await;
    let steps: Vec<(&str, &str)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["user"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("acknowledge", "duty"),
            ("assign", "duty"),
            ("note", "duty"),
            ("resolve", "duty")
        ]
    );
    assert_eq!(trail["items"][2]["note"], "已电话联系村委");
    assert!(trail["items"][0]["at"].as_str().unwrap().ends_with('Z'));

    let (_, v) = c.get(&op, "/api/v1/events?workflow=resolved").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = c.get(&op, "/api/v1/events?workflow=new").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    let (_, audit) = c
        .get(&admin, "/api/v1/audit?target_kind=event&target_id=1")
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn an_operator_marks_an_event_to_keep_even_after_it_is_closed() {
    let c = centre().await;
    let op = c.token("duty", Role::Operator, &[]).await;
    let viewer = c.token("watch", Role::Viewer, &[]).await;
    let id = c.event("east-gate", "东村", 1).await;
    let path = format!("/api/v1/events/{id}/actions");
    let (_, v) = c.get(&op, &format!("/api/v1/events/{id}")).await;
    assert_eq!(v["keep"], false);
    let (s, _) = c
        .call(
            Some(&viewer),
            "POST",
            &path,
            Some(json!({"action": "keep"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = c
        .call(Some(&op), "POST", &path, Some(json!({"action": "resolve"})))
        .await;
    assert_eq!(s, 200);
    let (s, v) = c
        .call(
            Some(&op),
            "POST",
            &path,
            Some(json!({"action": "keep", "note": "案卷"})),
        )
        .await;
    assert_eq!(
        (s, &v["keep"], v["workflow"]["state"].as_str()),
        (200, &json!(true), Some("resolved"))
    );
    let (_, v) = c.get(&op, &format!("/api/v1/events/{id}")).await;
    assert_eq!(v["keep"], true);
    let (s, v) = c
        .call(Some(&op), "POST", &path, Some(json!({"action": "unkeep"})))
        .await;
    assert_eq!((s, &v["keep"]), (200, &json!(false)));
    let (_, trail) = c.get(&op, &path).await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["resolve", "keep", "unkeep"]);
}

#[tokio::test]
async fn stats_count_per_kind_village_and_bucket() {
    let c = centre().await;
    let t = c.token("centre", Role::Viewer, &[]).await;
    for m in [0, 10, 70] {
        c.event("east-gate", "东村", m).await;
    }
    c.event("west-school", "西村", 5).await;
    let range = "since=2026-11-29T00:00:00Z&until=2026-11-30T00:00:00Z";
    let (s, v) = c
        .get(
            &t,
            &format!("/api/v1/stats/events?{range}&group_by=village&bucket=hour"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 4);
    // 14:00 UTC is 22:00 in Beijing; hour buckets: 14:00 (3 events), 15:00 (1).
    let rows: Vec<(String, String, u64)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["bucket"].as_str().unwrap().to_owned(),
                r["village"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("2026-11-29T14:00:00Z".into(), "东村".into(), 2),
            ("2026-11-29T14:00:00Z".into(), "西村".into(), 1),
            ("2026-11-29T15:00:00Z".into(), "东村".into(), 1),
        ]
    );
    // Days start at Beijing midnight (16:00 UTC the day before).
    let (_, v) = c
        .get(
            &t,
            &format!("/api/v1/stats/events?{range}&group_by=kind&bucket=day"),
        )
        .await;
    assert_eq!(v["items"][0]["bucket"], "2026-11-28T16:00:00Z");
    assert_eq!(v["items"][0]["kind"], "intrusion");
    assert_eq!(v["items"][0]["count"], 4);
    for (query, name) in [
        ("group_by=colour", "group_by"),
        ("bucket=week", "bucket"),
        ("utc_offset=8", "utc_offset"),
        (
            "since=2026-11-30T00:00:00Z&until=2026-11-29T00:00:00Z",
            "until",
        ),
        ("min_score=2", "min_score"),
    ] {
        let (s, v) = c.get(&t, &format!("/api/v1/stats/events?{query}")).await;
        assert_eq!(s, 400, "{query}");
        crate::common::assert_names(&v, name, &format!("{query}: {v}"));
    }
}

/// Pages follow a stable order (newest first by id) and the cursor keeps
/// them correct while new events arrive: nothing is skipped or repeated.
#[tokio::test]
async fn pagination_stays_correct_while_events_arrive() {
    let c = centre().await;
    let t = c.token("centre", Role::Viewer, &[]).await;
    let mut before = Vec::new();
    for m in 0..25 {
        before.push(c.event("east-gate", "东村", m).await);
    }
    let writer = {
        let store = c.store.clone();
        tokio::spawn(async move {
            for m in 100..160 {
                store
                    .insert_event(NewEvent {
                        camera_id: "east-gate".into(),
                        village: Some("东村".into()),
                        kind: EventKind::Object,
                        label: "car".into(),
                        started_at: Utc::now(),
                        frame_width: 1,
                        frame_height: 1,
                        score: m as f32 / 1000.0,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let first_id = {
        let (_, v) = c.get(&t, "/api/v1/events?limit=1&kind=intrusion").await;
        v["items"][0]["id"].as_i64().unwrap()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/events?limit=4&kind=intrusion".to_owned();
        if let Some(cur) = &cursor {
            path.push_str(&format!("&cursor={cur}"));
        }
        let (s, v) = c.get(&t, &path).await;
        assert_eq!(s, 200);
        seen.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match v["next_cursor"].as_str() {
            Some(cur) => cursor = Some(cur.to_owned()),
            None => break,
        }
    }
    writer.await.unwrap();
    before.reverse();
    assert_eq!(first_id, before[0]);
    assert_eq!(seen, before, "every old event once, newest first");
    let (s, v) = c.get(&t, "/api/v1/events?limit=501").await;
    assert_eq!((s, code(&v)), (400, "invalid_parameter"));
}

#[tokio::test]
async fn tokens_are_listed_without_secret_and_revocable() {
    let c = centre().await;
    let op = c.token("duty", Role::Operator, &[]).await;
    let other = c.token("guest", Role::Viewer, &[]).await;
    let (s, made) = c
        .call(
            Some(&op),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "县平台", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let new_token = made["token"].as_str().unwrap().to_owned();
    let id = made["id"].as_i64().unwrap();
    assert_eq!(c.get(&new_token, "/api/v1/auth/me").await.0, 200);
    let (_, list) = c.get(&op, "/api/v1/tokens").await;
    assert!(
        !list.to_string().contains(&new_token),
        "listing shows no token"
    );
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["username"] == "duty"));
    // Someone else cannot revoke it (and learns nothing).
    let (s, _) = c
        .call(
            Some(&other),
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = c
        .call(Some(&op), "DELETE", &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = c.get(&new_token, "/api/v1/auth/me").await;
    assert_eq!((s, code(&v)), (401, "unauthenticated"));
    let (s, v) = c
        .call(
            Some(&op),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_parameter"));
}

#[tokio::test]
async fn bodies_are_checked_and_limited_and_cors_is_off() {
    let c = centre().await;
    let admin = c.token("chief", Role::Admin, &[]).await;
    for (body, name) in [
        (
            json!({"username": "a", "password": "short", "role": "viewer"}),
            "password",
        ),
        (
            json!({"username": "a", "password": "long-enough-1", "role": "root"}),
            "role",
        ),
        (
            json!({"username": "bad name!", "password": "long-enough-1", "role": "viewer"}),
            "username",
        ),
        (
            json!({"username": "a", "password": "long-enough-1", "role": "viewer", "extra": 1}),
            "body",
        ),
    ] {
        let (s, v) = c
            .call(Some(&admin), "POST", "/api/v1/users", Some(body.clone()))
            .await;
        assert_eq!((s, code(&v)), (400, "invalid_parameter"), "{body}");
        crate::common::assert_names(&v, name, &format!("{v}"));
        assert!(
            !v.to_string().contains("long-enough-1"),
            "no password echoed: {v}"
        );
    }
    let dup = json!({"username": "chief", "password": "long-enough-1", "role": "viewer"});
    let (s, v) = c
        .call(Some(&admin), "POST", "/api/v1/users", Some(dup))
        .await;
    assert_eq!((s, code(&v)), (409, "conflict"));
    // The last admin cannot be demoted.
    let (_, me) = c.get(&admin, "/api/v1/auth/me").await;
    let (s, v) = c
        .call(
            Some(&admin),
            "PATCH",
            &format!("/api/v1/users/{}", me["id"]),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!((s, code(&v)), (409, "last_admin"));

    let huge = json!({"name": "x".repeat(400 * 1024)});
    let (s, _) = c
        .call(Some(&admin), "POST", "/api/v1/tokens", Some(huge))
        .await;
    assert_eq!(s, 413);

    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/events", c.base))
        .bearer_auth(&admin)
        .header("origin", "http://other.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn secrets_never_appear_in_responses() {
    let c = centre().await;
    let admin = c.token("chief", Role::Admin, &[]).await;
    let id = c.event("east-gate", "东村", 1).await;
    let mut all = String::new();
    for path in [
        "/api/v1/cameras".to_owned(),
        "/api/v1/cameras/east-gate/health".to_owned(),
        "/api/v1/users".to_owned(),
        "/api/v1/tokens".to_owned(),
        "/api/v1/audit".to_owned(),
        format!("/api/v1/events/{id}"),
        "/api/v1/auth/me".to_owned(),
    ] {
        let (s, v) = c.get(&admin, &path).await;
        assert_eq!(s, 200, "{path}");
        all.push_str(&v.to_string());
    }
    for secret in [
        "cam-secret-east-41",
        "cam-secret-west-42",
        &admin,
        PASSWORD,
        "$argon2",
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}
