//! The API served on a real port over a real SQLite file.

use chrono::{Duration, TimeZone, Utc};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;
use xueliang_api::{
    AppState, CameraChangeError, CameraControl, CameraView, FixedCameras, Readiness,
};
use xueliang_core::{
    CameraHealth, CameraState, CameraStats, Config, EventKind, HealthReason, HwAccel, NewEvent,
    Role,
};
use xueliang_store::testing::TestStore;
use xueliang_store::{Store, StoreError};

struct Server {
    base: String,
    store: Arc<dyn Store>,
    health: watch::Sender<CameraHealth>,
    cameras: Arc<TestCameras>,
    /// An admin's API token.
    token: String,
    _dir: TestStore,
}

impl Server {
    /// A client that sends the admin's token.
    fn client(&self) -> reqwest::Client {
        client_with(&self.token)
    }

    /// GET as the admin: status and JSON body.
    async fn get(&self, url: &str) -> (u16, Value) {
        let r = self.client().get(url).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn server() -> Server {
    let (store, dir) = crate::common::store().await;
    let config = Config::parse(
        r#"
[[cameras]]
id = "school"
name = "中心小学"
url = "rtsp://127.0.0.1:8554/school"
username = "admin"
password = "never-shown-9f3"
village = "东村"
"#,
    )
    .unwrap();
    let (health, rx) = watch::channel(CameraHealth::new(CameraState::Connecting, Utc::now()));
    let stats = Arc::new(CameraStats::default());
    CameraStats::add(&stats.reconnects, 3);
    let cameras = vec![CameraView {
        config: config.cameras[0].clone(),
        health: rx,
        stats,
    }];
    let cameras = Arc::new(TestCameras {
        defaults: config.camera_defaults.clone(),
        cameras: std::sync::Mutex::new(
            cameras
                .into_iter()
                .zip(config.camera_definitions.iter().cloned())
                .collect(),
        ),
        detector: std::sync::Mutex::new(Readiness::Ready),
    });
    let base = crate::common::serve(&store, cameras.clone()).await;
    let token = crate::common::user_token(&*store, "admin", Role::Admin, &[]).await;
    Server {
        base,
        store,
        health,
        cameras,
        token,
        _dir: dir,
    }
}

fn new_event(label: &str, minute: i64, snapshot: bool) -> NewEvent {
    let at = Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap() + Duration::minutes(minute);
    crate::common::event("school", "东村", EventKind::Object, label, at, snapshot)
}

/// The API's side of the camera seam, in memory: parses with the config's
/// rules; `school` has a frame.
struct TestCameras {
    defaults: xueliang_core::CameraDefaults,
    cameras: std::sync::Mutex<Vec<(CameraView, Value)>>,
    /// What the detector says to `/readyz`.
    detector: std::sync::Mutex<Readiness>,
}

impl TestCameras {
    fn view(&self, definition: &Value) -> Result<CameraView, CameraChangeError> {
        let config =
            self.defaults
                .camera_from_json(definition)
                .map_err(|e| CameraChangeError::Invalid {
                    field: e.field,
                    message: e.message,
                })?;
        let (_, health) = watch::channel(CameraHealth::new(CameraState::Connecting, Utc::now()));
        Ok(CameraView {
            config,
            health,
            stats: Arc::new(CameraStats::default()),
        })
    }
}

impl CameraControl for TestCameras {
    fn list(&self) -> Vec<CameraView> {
        self.cameras
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }

    fn create(
        &self,
        body: Value,
    ) -> futures::future::BoxFuture<'_, Result<xueliang_core::CameraConfig, CameraChangeError>>
    {
        Box::pin(async move {
            let view = self.view(&body)?;
            let mut cameras = self.cameras.lock().unwrap();
            if cameras.iter().any(|c| c.0.config.id == view.config.id) {
                return Err(CameraChangeError::Conflict(view.config.id));
            }
            cameras.push((view.clone(), body));
            Ok(view.config)
        })
    }

    fn update(
        &self,
        id: &str,
        patch: Value,
    ) -> futures::future::BoxFuture<'_, Result<xueliang_core::CameraConfig, CameraChangeError>>
    {
        let id = id.to_owned();
        Box::pin(async move {
            if patch.get("id").is_some_and(|v| v != id.as_str()) {
                return Err(CameraChangeError::Invalid {
                    field: "id".into(),
                    message: "cannot change".into(),
                });
            }
            let mut cameras = self.cameras.lock().unwrap();
            let c = cameras
                .iter_mut()
                .find(|c| c.0.config.id == id)
                .ok_or(CameraChangeError::NotFound(id))?;
            let mut definition = c.1.clone();
            for (k, v) in patch.as_object().into_iter().flatten() {
                definition[k] = v.clone();
            }
            c.0 = self.view(&definition)?;
            c.1 = definition;
            Ok(c.0.config.clone())
        })
    }

    fn delete(&self, id: &str) -> futures::future::BoxFuture<'_, Result<(), CameraChangeError>> {
        let id = id.to_owned();
        Box::pin(async move {
            let mut cameras = self.cameras.lock().unwrap();
            let before = cameras.len();
            cameras.retain(|c| c.0.config.id != id);
            if cameras.len() == before {
                return Err(CameraChangeError::NotFound(id));
            }
            Ok(())
        })
    }

    fn latest_frame_jpeg(&self, id: &str) -> futures::future::BoxFuture<'_, Option<Vec<u8>>> {
        let jpeg = (id == "school").then(|| vec![0xff, 0xd8, 0xff, 0xd9]);
        Box::pin(async move { jpeg })
    }

    fn detector_readiness(&self) -> Readiness {
        self.detector.lock().unwrap().clone()
    }
}

async fn send(s: &Server, method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s.client().request(method, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn camera_changes_map_errors_and_never_show_the_password() {
    use reqwest::Method;
    let s = server().await;
    let cams = format!("{}/api/v1/cameras", s.base);
    let body = serde_json::json!({"id": "gate", "name": "大门", "url": "rtsp://127.0.0.1:8554/gate",
        "username": "admin", "password": "s3cret-pw", "village": "东村"});
    let (code, cam) = send(&s, Method::POST, &cams, Some(body.clone())).await;
    assert_eq!(code, 201, "{cam}");
    assert_eq!(
        (cam["id"].as_str(), cam["village"].as_str()),
        (Some("gate"), Some("东村"))
    );
    assert!(cam["health"].is_object());
    assert!(!cam.to_string().contains("s3cret"), "{cam}");
    let (code, one) = s.get(&format!("{cams}/gate")).await;
    assert_eq!((code, &one["id"]), (200, &cam["id"]));
    assert!(!one.to_string().contains("s3cret"));

    let (code, e) = send(&s, Method::POST, &cams, Some(body.clone())).await;
    assert_eq!((code, e["error"]["code"].as_str()), (409, Some("conflict")));

    let mut bad = body.clone();
    bad["url"] = "rtsp://admin:s3cret-pw@127.0.0.1/x".into();
    bad["id"] = "other".into();
    let (code, e) = send(&s, Method::POST, &cams, Some(bad)).await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("invalid_camera"))
    );
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`url`") && !msg.contains("s3cret"), "{msg}");

    let (code, e) = send(
        &s,
        Method::PATCH,
        &format!("{cams}/gate"),
        Some(serde_json::json!({"detection": {"fps": 0}})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("detection.fps"),
        "{e}"
    );
    let (code, e) = send(
        &s,
        Method::PATCH,
        &format!("{cams}/gate"),
        Some(serde_json::json!({"id": "x"})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("`id`"),
        "{e}"
    );
    let (code, cam) = send(
        &s,
        Method::PATCH,
        &format!("{cams}/gate"),
        Some(serde_json::json!({"enabled": false})),
    )
    .await;
    assert_eq!((code, &cam["enabled"]), (200, &Value::Bool(false)));
    let (code, e) = send(
        &s,
        Method::PATCH,
        &format!("{cams}/nope"),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Not JSON at all: refused without quoting the body.
    let r = s
        .client()
        .post(&cams)
        .header("content-type", "application/json")
        .body("{\"password\": \"s3cret-pw\",")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(!r.text().await.unwrap().contains("s3cret"));

    // Latest frame: JPEG, never cached; 404 no_frame without one.
    let r = s
        .client()
        .get(format!("{cams}/school/frame.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (code, e) = s.get(&format!("{cams}/gate/frame.jpg")).await;
    assert_eq!((code, e["error"]["code"].as_str()), (404, Some("no_frame")));
    let (code, _) = s.get(&format!("{cams}/nope/frame.jpg")).await;
    assert_eq!(code, 404);

    let (code, _) = send(&s, Method::DELETE, &format!("{cams}/gate"), None).await;
    assert_eq!(code, 204);
    let (code, e) = send(&s, Method::DELETE, &format!("{cams}/gate"), None).await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (code, _) = s.get(&format!("{cams}/gate")).await;
    assert_eq!(code, 404);
}

/// `password_env` would let an admin read any environment variable of the
/// server (the 400 said whether it is set); a camera moved to another host
/// must not take the old host's credentials along.
#[tokio::test]
async fn password_env_is_refused_and_a_new_host_drops_the_credentials() {
    use reqwest::Method;
    let s = server().await;
    let cams = format!("{}/api/v1/cameras", s.base);
    std::env::set_var("XUELIANG_API_TEST_SET", "x");
    for var in ["XUELIANG_API_TEST_SET", "XUELIANG_API_TEST_UNSET"] {
        let body = serde_json::json!({"id": "probe", "name": "P", "url": "rtsp://127.0.0.1/p",
            "username": "u", "password_env": var});
        let (code, e) = send(&s, Method::POST, &cams, Some(body)).await;
        assert_eq!(
            (code, e["error"]["code"].as_str()),
            (400, Some("invalid_camera"))
        );
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("`password_env`") && !msg.contains(var),
            "{msg}"
        );
        let (code, _) = send(
            &s,
            Method::PATCH,
            &format!("{cams}/school"),
            Some(serde_json::json!({"password_env": var})),
        )
        .await;
        assert_eq!(code, 400);
    }
    let password = |id: &str| {
        let c = s.cameras.get(id).unwrap().config;
        (
            c.username.clone(),
            c.password.map(|p| p.expose().to_owned()),
        )
    };
    // Same host, another path: the credentials stay.
    let patch = serde_json::json!({"url": "rtsp://127.0.0.1:8554/school-hd"});
    let (code, _) = send(&s, Method::PATCH, &format!("{cams}/school"), Some(patch)).await;
    assert_eq!(code, 200);
    assert_eq!(password("school").1.as_deref(), Some("never-shown-9f3"));
    // Another host: they go.
    let patch = serde_json::json!({"url": "rtsp://203.0.113.7:554/school"});
    let (code, _) = send(&s, Method::PATCH, &format!("{cams}/school"), Some(patch)).await;
    assert_eq!(code, 200);
    assert_eq!(password("school"), (None, None));
    // Unless the same request gives new ones.
    let patch = serde_json::json!({"url": "rtsp://203.0.113.8/school",
        "username": "viewer", "password": "new-pw-5521"});
    let (code, _) = send(&s, Method::PATCH, &format!("{cams}/school"), Some(patch)).await;
    assert_eq!(code, 200);
    assert_eq!(
        password("school"),
        (Some("viewer".into()), Some("new-pw-5521".into()))
    );
}

#[tokio::test]
async fn fixed_cameras_refuse_changes() {
    let fixed = FixedCameras(Vec::new());
    assert!(matches!(
        fixed.create(serde_json::json!({})).await,
        Err(CameraChangeError::Internal(_))
    ));
}

#[tokio::test]
async fn cameras_show_live_state_and_never_the_password() {
    let s = server().await;
    let (code, body) = s.get(&format!("{}/api/v1/cameras", s.base)).await;
    assert_eq!(code, 200);
    let cam = &body["items"][0];
    assert_eq!(cam["id"], "school");
    assert_eq!(cam["village"], "东村");
    assert_eq!(cam["health"]["state"], "connecting");
    assert_eq!(cam["health"]["reconnects"], 3);
    assert_eq!(cam["health"]["idle"], false);
    assert_eq!(cam["health"]["frames_skipped_idle"], 0);
    assert_eq!(cam["health"]["detection_need"], "none");
    assert_eq!(cam["health"]["frames_reduced"], 0);
    assert!(!body.to_string().contains("never-shown-9f3"));

    let mut h = CameraHealth::new(CameraState::Offline, Utc::now());
    h.reason = Some(HealthReason::AuthFailed);
    h.detail = Some("DESCRIBE: 401".into());
    s.health.send_replace(h);
    let (code, h) = s
        .get(&format!("{}/api/v1/cameras/school/health", s.base))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        (h["state"].as_str(), h["reason"].as_str()),
        (Some("offline"), Some("auth_failed"))
    );
    let (code, e) = s
        .get(&format!("{}/api/v1/cameras/nope/health", s.base))
        .await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn events_filter_paginate_and_serve_snapshots() {
    let s = server().await;
    for i in 0..7 {
        s.store
            .insert_event(new_event(
                if i % 2 == 0 { "person" } else { "car" },
                i,
                i == 0,
            ))
            .await
            .unwrap();
    }
    let (code, page) = s
        .get(&format!("{}/api/v1/events?label=person&limit=2", s.base))
        .await;
    assert_eq!(code, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut ids: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let (_, page2) = s
        .get(&format!(
            "{}/api/v1/events?label=person&limit=2&cursor={cursor}",
            s.base
        ))
        .await;
    ids.extend(
        page2["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap()),
    );
    assert_eq!(ids.len(), 4, "4 person events over two pages");
    assert!(page2["next_cursor"].is_null());

    let first = &page2["items"][1];
    assert_eq!(first["started_at"], "2026-11-29T22:00:00Z");
    assert_eq!(first["status"], "active");
    assert_eq!(first["kind"], "object");
    assert_eq!(first["boxes"][0]["x2"], 3.0);
    let snap = first["snapshot_url"].as_str().unwrap();
    let r = s
        .client()
        .get(format!("{}{snap}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[0xff, 0xd8, 0xff, 0xd9]);

    let id = first["id"].as_i64().unwrap();
    let (code, one) = s.get(&format!("{}/api/v1/events/{id}", s.base)).await;
    assert_eq!((code, one["id"].as_i64()), (200, Some(id)));

    let since = "2026-11-29T22:02:00Z";
    let until = "2026-11-29T22:04:00Z";
    let (_, range) = s
        .get(&format!(
            "{}/api/v1/events?since={since}&until={until}",
            s.base
        ))
        .await;
    assert_eq!(
        range["items"].as_array().unwrap().len(),
        2,
        "minutes 2 and 3"
    );
}

#[tokio::test]
async fn bad_parameters_get_400_naming_the_parameter() {
    let s = server().await;
    for (query, name) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("cursor=abc", "cursor"),
        ("kind=fire", "kind"),
        ("status=open", "status"),
        ("camra=school", "camra"),
        (
            "since=2026-11-29T22:00:00Z&until=2026-11-29T21:00:00Z",
            "until",
        ),
    ] {
        let (code, body) = s.get(&format!("{}/api/v1/events?{query}", s.base)).await;
        assert_eq!(code, 400, "{query}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("`{name}`")), "{query}: {msg}");
    }
    let (code, body) = s.get(&format!("{}/api/v1/events/x1", s.base)).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (code, _) = s.get(&format!("{}/api/v1/events/12345", s.base)).await;
    assert_eq!(code, 404);
    let (code, _) = s
        .get(&format!("{}/api/v1/events/12345/snapshot.jpg", s.base))
        .await;
    assert_eq!(code, 404);
    let (code, body) = s.get(&format!("{}/api/v1/nothing", s.base)).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (code, body) = s.get(&format!("{}/healthz", s.base)).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")));
    // A known path with a method it does not take: 405, the error body, Allow.
    for path in ["/api/v1/events", "/healthz"] {
        let r = s
            .client()
            .delete(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{path}");
        let allow = r.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains("GET"), "{path}: Allow {allow}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{path}");
    }
}

/// `/readyz` without a token: status and JSON body.
async fn readyz(s: &Server) -> (u16, Value) {
    let r = reqwest::get(format!("{}/readyz", s.base)).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn readyz_needs_the_store_to_take_writes_and_the_detector_ready() {
    let s = server().await;
    let (code, body) = readyz(&s).await;
    assert_eq!((code, body), (200, serde_json::json!({"status": "ready"})));

    // The store's writes fail (as a writer reports them): not ready, while
    // /healthz still answers 200 (the process lives).
    s.store
        .health()
        .failed(&StoreError::Corrupt("test failure".into()), Utc::now());
    let (code, body) = readyz(&s).await;
    assert_eq!((code, body["status"].as_str()), (503, Some("not_ready")));
    let reasons = body["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{body}");
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .starts_with("store: writes fail"),
        "{body}"
    );
    let (code, health) = s.get(&format!("{}/healthz", s.base)).await;
    assert_eq!((code, health["status"].as_str()), (200, Some("degraded")));

    // And the detector too: both reasons.
    *s.cameras.detector.lock().unwrap() = Readiness::NotReady("inference stopped".into());
    let (code, body) = readyz(&s).await;
    assert_eq!(code, 503);
    assert_eq!(body["reasons"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["reasons"][1], "detector: inference stopped");

    // A write succeeds again: only the detector keeps it out.
    assert!(s.store.health().succeeded().is_some());
    let (code, body) = readyz(&s).await;
    assert_eq!(
        (code, body),
        (
            503,
            serde_json::json!({"status": "not_ready", "reasons": ["detector: inference stopped"]})
        )
    );
    *s.cameras.detector.lock().unwrap() = Readiness::Ready;
    assert_eq!(readyz(&s).await.0, 200);

    // In the OpenAPI document, public, with both answers.
    let doc = serde_json::to_value(xueliang_api::openapi_document()).unwrap();
    let op = &doc["paths"]["/readyz"]["get"];
    assert_eq!(op["security"], serde_json::json!([]), "{op}");
    for status in ["200", "503"] {
        assert!(op["responses"][status].is_object(), "{status}: {op}");
    }
}

#[tokio::test]
async fn availability_report_groups_and_validates() {
    use xueliang_core::HealthSample;
    let s = server().await;
    let at = |m: i64| Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0).unwrap() + Duration::minutes(m);
    let samples = (1..=4)
        .map(|m| HealthSample {
            camera_id: "school".into(),
            village: Some("东村".into()),
            grid: None,
            at: at(m),
            state: if m == 4 {
                CameraState::Offline
            } else {
                CameraState::Online
            },
            interval_ms: 60_000,
        })
        .collect();
    s.store.insert_health_samples(samples).await.unwrap();
    let url = format!(
        "{}/api/v1/reports/availability?from=2026-11-29T22:00:00Z&to=2026-11-29T23:00:00Z&group_by=village",
        s.base
    );
    let (code, body) = s.get(&url).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["group_by"], "village");
    assert_eq!(body["items"][0]["key"], "东村");
    assert_eq!(body["items"][0]["online_rate"], 0.75);
    assert_eq!(body["items"][0]["sampled_s"], 240.0);
    for (query, name) in [
        ("group_by=county", "group_by"),
        ("from=x", "from"),
        ("from=2026-11-29T23:00:00Z&to=2026-11-29T22:00:00Z", "to"),
    ] {
        let (code, body) = s
            .get(&format!("{}/api/v1/reports/availability?{query}", s.base))
            .await;
        assert_eq!(code, 400, "{query}");
        crate::common::assert_names(&body, name, &format!("{body}"));
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_bounded_labels() {
    let s = server().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (health, rx) = watch::channel(CameraHealth::new(CameraState::Online, Utc::now()));
    let stats = Arc::new(CameraStats::default());
    CameraStats::add(&stats.frames_received, 42);
    CameraStats::add(&stats.frames_dropped_detect, 2);
    CameraStats::add(&stats.frames_skipped_idle, 49);
    CameraStats::add(&stats.frames_reduced, 31);
    stats
        .need
        .set(xueliang_core::DetectionNeed::Reduced, 1.0, Vec::new);
    CameraStats::add(&stats.decode_cpu_ns, 2_500_000_000);
    CameraStats::add(&stats.convert_cpu_ns, 250_000_000);
    stats.set_idle(true);
    stats.set_hardware_decoding(Some(HwAccel::Vaapi));
    let config =
        Config::parse("[[cameras]]\nid = \"bridge\"\nname = \"B\"\nurl = \"rtsp://u/p\"\n")
            .unwrap();
    let state = AppState::new(
        s.store.clone(),
        s.store.clone(),
        Arc::new(FixedCameras(vec![CameraView {
            config: config.cameras[0].clone(),
            health: rx,
            stats,
        }])),
        None,
    );
    tokio::spawn(xueliang_api::serve_metrics(
        listener,
        state,
        std::future::pending(),
    ));
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "xueliang_camera_up{camera=\"bridge\"} 1",
        "xueliang_camera_state{camera=\"bridge\",state=\"online\"} 1",
        "xueliang_camera_state{camera=\"bridge\",state=\"offline\"} 0",
        "xueliang_camera_frames_received_total{camera=\"bridge\"} 42",
        "xueliang_camera_frames_dropped_total{camera=\"bridge\",stage=\"detect\"} 2",
        "xueliang_camera_idle{camera=\"bridge\"} 1",
        "xueliang_camera_frames_skipped_idle_total{camera=\"bridge\"} 49",
        "xueliang_camera_frames_reduced_total{camera=\"bridge\"} 31",
        "xueliang_camera_detection_reduced{camera=\"bridge\"} 1",
        "xueliang_camera_decode_cpu_seconds_total{camera=\"bridge\"} 2.5",
        "xueliang_camera_convert_cpu_seconds_total{camera=\"bridge\"} 0.25",
        "xueliang_camera_decoder{camera=\"bridge\",hwaccel=\"vaapi\"} 1",
        "xueliang_camera_decoder{camera=\"bridge\",hwaccel=\"none\"} 0",
        "xueliang_camera_decoder{camera=\"bridge\",hwaccel=\"cuda\"} 0",
        "# TYPE xueliang_camera_reconnects_total counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    health.send_replace(CameraHealth::new(CameraState::Offline, Utc::now()));
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("xueliang_camera_up{camera=\"bridge\"} 0"));
}

#[tokio::test]
async fn the_live_feed_streams_new_events_that_match_the_filter() {
    let s = server().await;
    let mut r = s
        .client()
        .get(format!("{}/api/v1/events/stream?label=person", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // A car (filtered out), then a person.
    s.store
        .insert_event(new_event("car", 1, false))
        .await
        .unwrap();
    let id = s
        .store
        .insert_event(new_event("person", 2, false))
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !text.contains("\n\n") && std::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), r.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: started"), "{text}");
    assert!(text.contains(&format!("\"id\":{id}")), "{text}");
    assert!(!text.contains("\"label\":\"car\""), "{text}");
    let (code, body) = s
        .get(&format!("{}/api/v1/events/stream?labl=person", s.base))
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

/// A request for every documented operation, with ids that exist (GETs) or
/// not (changes: routed, but harmless), and the query parameters it requires.
async fn request(s: &Server, method: &str, path: &str, op: &Value, query: &str) -> (u16, Value) {
    let id = if path.starts_with("/api/v1/cameras/") {
        ("school", "absent")
    } else {
        ("1", "999999")
    };
    let id = if method == "get" { id.0 } else { id.1 };
    let mut params: Vec<String> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| format!("{}=x", p["name"].as_str().unwrap()))
        .collect();
    if path.ends_with("/stream") && query.is_empty() {
        params.push("kind=nope".into()); // answered at once (400), no stream to wait for
    }
    if !query.is_empty() {
        params.push(query.into());
    }
    let mut url = format!("{}{}", s.base, path.replace("{id}", id));
    if !params.is_empty() {
        url = format!("{url}?{}", params.join("&"));
    }
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut r = s.client().request(method.clone(), &url);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        r = r.json(&serde_json::json!({}));
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A schema that is one part of another (`allOf`, from a flattened field:
/// the organisation's roster shifts, an event's body) does not refuse the
/// other parts' fields: with `additionalProperties: false` no answer could
/// match the whole. The roster's shifts are shown in the configuration's
/// spelling, `days`, `from`, `to`.
#[test]
fn flattened_parts_of_the_document_admit_the_other_parts() {
    let doc = serde_json::to_value(xueliang_api::openapi_document()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut parts = 0;
    for (name, schema) in schemas {
        for part in schema["allOf"].as_array().into_iter().flatten() {
            let Some(r) = part["$ref"].as_str() else {
                continue;
            };
            let target = &schemas[r.trim_start_matches("#/components/schemas/")];
            assert_ne!(
                target["additionalProperties"],
                Value::Bool(false),
                "{name} includes {r}, which refuses {name}'s other fields"
            );
            parts += 1;
        }
    }
    assert!(parts >= 3, "only {parts} flattened parts");
    let roster = &schemas["RosterEntry"]["allOf"];
    let window = roster
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| p["$ref"].as_str())
        .unwrap();
    let window = &schemas[window.trim_start_matches("#/components/schemas/")];
    for field in ["days", "from", "to"] {
        assert_eq!(
            window["properties"][field]["type"], "string",
            "{field}: {window}"
        );
    }
}

/// The served OpenAPI document is the one generated from the handlers, and
/// it matches the router both ways: every documented operation is routed,
/// every method the router takes on a documented path is documented, and
/// every operation's documented query parameters are exactly those its
/// handler accepts (it names the ones it knows when refusing another).
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let s = server().await;
    let (code, doc) = s.get(&format!("{}/api/v1/openapi.json", s.base)).await;
    assert_eq!(code, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let generated = serde_json::to_value(xueliang_api::openapi_document()).unwrap();
    assert_eq!(doc, generated, "the served document is the generated one");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{:?}", paths.keys());

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let mut checked = 0;
    for (path, ops) in paths {
        let ops = ops.as_object().unwrap();
        for method in METHODS {
            let (status, body) = match ops.get(method) {
                Some(op) => request(&s, method, path, op, "").await,
                None => request(&s, method, path, &Value::Null, "").await,
            };
            if ops.contains_key(method) {
                assert_ne!(status, 405, "{method} {path} is documented but not routed");
                assert!(
                    !(status == 404 && body["error"]["message"] == "no such endpoint"),
                    "{method} {path} is documented but not routed"
                );
                assert!(status < 500, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is routed but not documented: {body}"
                );
            }
        }

        for (method, op) in ops {
            let documented: std::collections::BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if documented.is_empty() || method != "get" {
                continue;
            }
            let (status, body) = request(&s, method, path, op, "zz_undocumented=1").await;
            let message = body["error"]["message"].as_str().unwrap_or_default();
            if message == "alerts are not configured" {
                continue; // refused before the query is read; the e2e tests cover it
            }
            checked += 1;
            assert_eq!(status, 400, "{method} {path}: {body}");
            let known = message
                .split_once("(known: ")
                .and_then(|(_, k)| k.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{method} {path}: {message}"));
            let known: std::collections::BTreeSet<&str> = known.split(", ").collect();
            assert_eq!(
                known, documented,
                "{method} {path}: accepted vs documented query parameters"
            );
        }
    }
    assert!(
        checked >= 6,
        "query parameters of {checked} operations checked"
    );
}
