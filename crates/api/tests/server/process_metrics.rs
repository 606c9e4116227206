//! The metrics that are not a camera's, scraped from the real metrics
//! listener over a real SQLite file: each name is there and moves when its
//! stage does the thing it counts.

use chrono::Utc;
use std::sync::Arc;
use xueliang_api::{AppState, FixedCameras};
use xueliang_core::{Config, EventKind, EventUpdate};
use xueliang_store::EventWriter;

/// The value of the sample `series` (name and labels as written).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn process_metrics_move_with_their_stages() {
    let (store, _dir) = crate::common::store().await;
    let setup = xueliang_alerts::AlertSetup::from_config(&Config::parse("").unwrap()).unwrap();
    let alerts = Arc::new(xueliang_alerts::AlertService::new(store.clone(), &setup));
    let state = AppState::new(
        store.clone(),
        store.clone(),
        Arc::new(FixedCameras(Vec::new())),
        Some(alerts),
    );
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_base = format!("http://{}", metrics.local_addr().unwrap());
    tokio::spawn(xueliang_api::serve_metrics(
        metrics,
        state.clone(),
        std::future::pending(),
    ));
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_base = format!("http://{}", api.local_addr().unwrap());
    tokio::spawn(xueliang_api::serve(api, state, std::future::pending()));

    let before = scrape(&metrics_base).await;
    for name in [
        "# TYPE xueliang_inference_seconds histogram",
        "xueliang_inference_seconds_bucket{le=\"+Inf\"}",
        "# TYPE xueliang_store_write_seconds histogram",
        "# TYPE xueliang_inference_runs_total counter",
        "# TYPE xueliang_login_failures_total counter",
        "# TYPE xueliang_alert_delivery_attempts_total counter",
        "# TYPE xueliang_alert_outbox_depth gauge",
    ] {
        assert!(before.contains(name), "missing {name:?} in:\n{before}");
    }
    assert_eq!(
        value(&before, "xueliang_alert_outbox_depth{kind=\"events\"}"),
        0.0
    );

    // An event written by the event writer: one store write, one outbox row.
    let mut writer = EventWriter::new(store.clone());
    let event = crate::common::event(
        "school",
        "东村",
        EventKind::Object,
        "person",
        Utc::now(),
        false,
    );
    writer
        .apply(0, EventUpdate::Started { key: 1, event })
        .await;
    // A login with a wrong password.
    crate::common::user(&*store, "li", xueliang_core::Role::Viewer, &[]).await;
    let refused = reqwest::Client::new()
        .post(format!("{api_base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "li", "password": "wrong-password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let after = scrape(&metrics_base).await;
    // Other tests in this process move the same counters: at least ours.
    for series in [
        "xueliang_store_write_seconds_count",
        "xueliang_login_failures_total",
    ] {
        assert!(
            value(&after, series) >= value(&before, series) + 1.0,
            "{series} did not move:\n{after}"
        );
    }
    assert!(
        value(&after, "xueliang_store_write_seconds_sum")
            > value(&before, "xueliang_store_write_seconds_sum")
    );
    assert_eq!(
        value(&after, "xueliang_alert_outbox_depth{kind=\"events\"}"),
        1.0
    );
    assert_eq!(
        value(&after, "xueliang_alert_outbox_depth{kind=\"deliveries\"}"),
        0.0
    );
}
