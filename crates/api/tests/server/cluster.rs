//! `GET /api/v1/cluster`: the directory's nodes, the enabled cameras no node
//! holds, and a node that runs alone.

use crate::common::{self, online_cameras};
use chrono::Utc;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::sync::Arc;
use xueliang_api::{AppState, FixedCameras};
use xueliang_core::cluster::{ClusterDirectory, ClusterNode, ClusterStatus, Runner};
use xueliang_core::{Config, Role};

/// Two nodes: `n1` holds `gate`, `n2` (dead) holds nothing.
struct TwoNodes;

impl ClusterDirectory for TwoNodes {
    fn status(&self) -> BoxFuture<'_, Result<ClusterStatus, String>> {
        let node = |id: &str, live: bool, cameras: &[&str]| ClusterNode {
            node_id: id.into(),
            started_at: Utc::now(),
            heartbeat_at: Utc::now(),
            live,
            draining: false,
            max_cameras: 0,
            cpu_percent: 12.5,
            cameras: cameras.iter().map(|c| c.to_string()).collect(),
            api_url: None,
        };
        Box::pin(async move {
            Ok(ClusterStatus {
                clustered: true,
                this_node: Some("n1".into()),
                lease_s: Some(15.0),
                nodes: vec![node("n1", true, &["gate"]), node("n2", false, &[])],
                unassigned: Vec::new(),
            })
        })
    }
    fn this_node(&self) -> &str {
        "n1"
    }
    fn runner(&self, _camera: &str) -> BoxFuture<'_, Result<Option<Runner>, String>> {
        Box::pin(async { Ok(None) })
    }
}

struct Broken;

impl ClusterDirectory for Broken {
    fn status(&self) -> BoxFuture<'_, Result<ClusterStatus, String>> {
        Box::pin(async { Err("connection refused".to_string()) })
    }
    fn this_node(&self) -> &str {
        "n1"
    }
    fn runner(&self, _camera: &str) -> BoxFuture<'_, Result<Option<Runner>, String>> {
        Box::pin(async { Err("connection refused".to_string()) })
    }
}

async fn get(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::Client::new().get(format!("{base}/api/v1/cluster"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cluster_lists_nodes_and_the_cameras_nobody_holds() {
    let (store, _keep) = common::store().await;
    let config = Config::parse(
        "[[cameras]]\nid = \"gate\"\nname = \"G\"\nurl = \"rtsp://h/g\"\n\
         [[cameras]]\nid = \"bridge\"\nname = \"B\"\nurl = \"rtsp://h/b\"\n\
         [[cameras]]\nid = \"off\"\nname = \"O\"\nurl = \"rtsp://h/o\"\nenabled = false\n",
    )
    .unwrap();
    let cameras = Arc::new(FixedCameras(online_cameras(&config)));
    let token = common::user_token(store.as_ref(), "viewer", Role::Viewer, &[]).await;

    // Alone: a fixed answer, no directory asked.
    let alone = common::serve(&store, cameras.clone()).await;
    let (status, body) = get(&alone, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"clustered": false, "this_node": null, "lease_s": null, "nodes": [], "unassigned": []})
    );

    let state = AppState::new(store.clone(), store.clone(), cameras.clone(), None)
        .with_cluster(Arc::new(TwoNodes));
    let base = common::serve_state(state).await;
    assert_eq!(get(&base, None).await.0, 401);
    let (status, body) = get(&base, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["this_node"], "n1");
    assert_eq!(body["nodes"][0]["cameras"], json!(["gate"]));
    assert_eq!(body["nodes"][1]["live"], false);
    assert_eq!(body["nodes"][0]["cpu_percent"], 12.5);
    // Enabled and held by nobody: bridge (off is disabled, gate is held).
    assert_eq!(body["unassigned"], json!(["bridge"]));

    // The database unreachable: a 500 with the stable body, the cause logged.
    let state =
        AppState::new(store.clone(), store.clone(), cameras, None).with_cluster(Arc::new(Broken));
    let base = common::serve_state(state).await;
    let (status, body) = get(&base, Some(&token)).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "internal");
    assert!(!body.to_string().contains("connection refused"), "{body}");
}
