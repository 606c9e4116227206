//! `GET /api/v1/cluster`'s source: the nodes' beats and the cameras'
//! leases, read by the database's clock with the coordinators' own rules
//! (a node is live while its last beat is younger than the lease time; a
//! camera is held while its lease has not expired).

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::time::Duration;
use xueliang_core::cluster::{ClusterDirectory, ClusterNode, ClusterStatus, Runner};
use xueliang_store::PgStore;

pub struct LeaseDirectory {
    store: PgStore,
    node_id: String,
    lease: Duration,
}

impl LeaseDirectory {
    pub fn new(store: PgStore, node_id: String, lease: Duration) -> LeaseDirectory {
        LeaseDirectory {
            store,
            node_id,
            lease,
        }
    }

    async fn read(&self) -> Result<ClusterStatus, xueliang_store::StoreError> {
        let now = self.store.db_now().await?;
        let nodes = self.store.nodes().await?;
        let leases = self.store.leases().await?;
        let lease_ms = self.lease.as_millis() as i64;
        let nodes = nodes
            .into_iter()
            .map(|n| ClusterNode {
                cameras: leases
                    .iter()
                    .filter(|l| l.node_id == n.node_id && l.expires_at > now)
                    .map(|l| l.camera_id.clone())
                    .collect(),
                live: n.heartbeat_at > now - lease_ms,
                started_at: time(n.started_at),
                heartbeat_at: time(n.heartbeat_at),
                draining: n.draining,
                max_cameras: n.max_cameras,
                cpu_percent: n.cpu_percent,
                node_id: n.node_id,
                api_url: n.api_url,
            })
            .collect();
        Ok(ClusterStatus {
            clustered: true,
            this_node: Some(self.node_id.clone()),
            lease_s: Some(self.lease.as_secs_f64()),
            nodes,
            unassigned: Vec::new(),
        })
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl ClusterDirectory for LeaseDirectory {
    fn status(&self) -> BoxFuture<'_, Result<ClusterStatus, String>> {
        async move { self.read().await.map_err(|e| e.to_string()) }.boxed()
    }

    fn this_node(&self) -> &str {
        &self.node_id
    }

    fn runner(&self, camera: &str) -> BoxFuture<'_, Result<Option<Runner>, String>> {
        let camera = camera.to_owned();
        async move {
            let found = self
                .store
                .runner(&camera)
                .await
                .map_err(|e| e.to_string())?;
            Ok(found.map(|(node_id, api_url)| Runner { node_id, api_url }))
        }
        .boxed()
    }
}
