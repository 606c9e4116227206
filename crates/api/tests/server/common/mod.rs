//! What the API test files share: a store in a temporary directory, the app
//! served on a free port, users with tokens, and the check that a 400 names
//! its parameter.
#![allow(dead_code)] // each test file uses its own part

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use xueliang_api::{AppState, CameraControl};
use xueliang_core::{BoxRecord, EventKind, NewEvent, NewUser, Role, TokenKind};
use xueliang_store::testing::TestStore;
use xueliang_store::{NewToken, Store};

/// A fresh store on the backend `XUELIANG_TEST_BACKEND` names (SQLite in a
/// temporary directory, or a new PostgreSQL database), kept while the
/// [`TestStore`] is.
pub async fn store() -> (Arc<dyn Store>, TestStore) {
    let t = TestStore::from_env().await;
    (t.store.clone(), t)
}

/// Serves the app over `store` and `cameras` on a free port; the base URL.
pub async fn serve(store: &Arc<dyn Store>, cameras: Arc<dyn CameraControl>) -> String {
    serve_state(AppState::new(store.clone(), store.clone(), cameras, None)).await
}

/// Serves the app with `state` on a free port; the base URL.
pub async fn serve_state(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(xueliang_api::serve(listener, state, std::future::pending()));
    base
}

/// Each camera of `config`, online now, with fresh counters.
pub fn online_cameras(config: &xueliang_core::Config) -> Vec<xueliang_api::CameraView> {
    config
        .cameras
        .iter()
        .map(|c| xueliang_api::CameraView {
            config: c.clone(),
            health: tokio::sync::watch::channel(xueliang_core::CameraHealth::new(
                xueliang_core::CameraState::Online,
                Utc::now(),
            ))
            .1,
            stats: Arc::new(xueliang_core::CameraStats::default()),
        })
        .collect()
}

pub const PASSWORD: &str = "a-long-password-1";

/// Makes a user (password [`PASSWORD`]) directly in the store; its id.
pub async fn user(store: &dyn Store, name: &str, role: Role, villages: &[&str]) -> i64 {
    store
        .create_user(NewUser {
            username: name.into(),
            password_hash: xueliang_api::auth::hash_password(PASSWORD).unwrap(),
            role,
            villages: villages.iter().map(|v| v.to_string()).collect(),
        })
        .await
        .unwrap()
        .id
}

/// Makes a user and an API token for them; the token.
pub async fn user_token(store: &dyn Store, name: &str, role: Role, villages: &[&str]) -> String {
    let user_id = user(store, name, role, villages).await;
    let (token, token_hash) = xueliang_api::auth::new_token();
    store
        .insert_token(NewToken {
            user_id,
            kind: TokenKind::Api,
            name: "test".into(),
            token_hash,
            expires_at: None,
        })
        .await
        .unwrap();
    token
}

/// Asserts an error body's message names the parameter `` `name` ``.
pub fn assert_names(body: &Value, name: &str, context: &str) {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("`{name}`")), "{context}: {body}");
}

/// An event of `camera` in `village` with one `label` box (score 0.9) in a
/// 768x576 frame and, with `snapshot`, a tiny JPEG.
pub fn event(
    camera: &str,
    village: &str,
    kind: EventKind,
    label: &str,
    started_at: DateTime<Utc>,
    snapshot: bool,
) -> NewEvent {
    NewEvent {
        camera_id: camera.into(),
        village: Some(village.into()),
        kind,
        label: label.into(),
        score: 0.9,
        started_at,
        frame_width: 768,
        frame_height: 576,
        boxes: vec![BoxRecord {
            label: label.into(),
            score: 0.9,
            x1: 1.0,
            y1: 2.0,
            x2: 3.0,
            y2: 4.0,
        }],
        snapshot: snapshot.then(|| vec![0xff, 0xd8, 0xff, 0xd9]),
        ..Default::default()
    }
}
