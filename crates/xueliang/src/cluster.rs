//! `serve` with `[cluster]`: the lease coordinator over the camera
//! registry, camera changes from other nodes, and `xueliang drain`.

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xueliang_cluster::{ClusterSettings, Coordinator, Ended, LeaseDirectory};
use xueliang_core::cluster::ClusterDirectory;
use xueliang_core::{CameraHealth, CameraState, ClusterConfig, Config, HealthReason};
use xueliang_pipeline::{CameraRegistry, RemoteCamera};
use xueliang_store::postgres_cluster::{LeaseRow, PublishedState};
use xueliang_store::{Backend, PgStore, Store};

/// Starts this node's coordinator and the listener for camera changes made
/// on other nodes. A drain asked from outside cancels `shutdown`.
pub async fn start(
    config: &ClusterConfig,
    store: &Arc<dyn Store>,
    registry: &Arc<CameraRegistry>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<Coordinator>> {
    let Backend::Postgres(pg) = store.backend() else {
        bail!("[cluster]: several nodes share a PostgreSQL database; set [storage] url = \"postgres://...\"");
    };
    let settings = ClusterSettings {
        node_id: config.node_id(),
        max_cameras: config.max_cameras as usize,
        lease: Duration::from_secs_f64(config.lease_s),
        api_url: config
            .api_url()
            .map_err(|e| anyhow::anyhow!("[cluster]: {e}"))?,
    };
    let mut changes = pg
        .camera_changes()
        .await
        .context("[cluster]: cannot listen for camera changes")?;
    let coordinator = Arc::new(Coordinator::new(pg.clone(), registry.clone(), settings));
    let reloads = registry.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                n = changes.recv() => match n {
                    Ok(n) => reloads.reload(n.payload()).await,
                    // PgListener reconnects on the next recv.
                    Err(e) => {
                        warn!(error = %e, "camera change listener lost the database; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
    });
    tokio::spawn(share_health(
        pg.clone(),
        coordinator.settings().node_id.clone(),
        registry.clone(),
        shutdown.clone(),
    ));
    let run = coordinator.clone();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        if run.run(cancel.child_token()).await == Ended::Drained {
            info!("drained on request: every camera handed over; stopping");
            cancel.cancel();
        }
    });
    Ok(coordinator)
}

/// How often a node publishes its cameras' live state and re-reads the
/// others'.
const REMOTE_HEALTH_EVERY: Duration = Duration::from_secs(5);
/// A published state older than this says nothing (its writer stopped).
const REMOTE_HEALTH_MAX_AGE_MS: i64 = 20_000;

/// Publishes the live state of the cameras this node runs, and keeps the
/// camera list's entries of cameras run elsewhere showing their runner and
/// the state it published.
async fn share_health(
    pg: PgStore,
    node: String,
    registry: Arc<CameraRegistry>,
    stop: CancellationToken,
) {
    loop {
        let mine: Vec<PublishedState> = registry
            .running_health()
            .into_iter()
            .map(|(camera_id, h)| PublishedState {
                camera_id,
                state: h.state.as_str().to_owned(),
                reason: h.reason.map(|r| r.as_str().to_owned()),
                detail: h.detail,
                since: h.since.timestamp_millis(),
            })
            .collect();
        let round = async {
            pg.publish_states(&node, &mine).await?;
            let leases = pg.leases().await?;
            let states = pg.camera_states(REMOTE_HEALTH_MAX_AGE_MS).await?;
            let now = pg.db_now().await?;
            Ok::<_, xueliang_store::StoreError>((leases, states, now))
        };
        match round.await {
            Ok((leases, states, now)) => registry.show_remote(&remote_cameras(leases, states, now)),
            Err(e) => {
                warn!(error = %e, "cannot share the cameras' live state with the other nodes")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REMOTE_HEALTH_EVERY) => {}
        }
    }
}

/// Each leased camera's runner, with the state that runner published (a
/// state written by an earlier runner is not its runner's).
fn remote_cameras(
    leases: Vec<LeaseRow>,
    states: Vec<(String, PublishedState)>,
    now: i64,
) -> HashMap<String, RemoteCamera> {
    let mut published: HashMap<(String, String), PublishedState> = states
        .into_iter()
        .map(|(node, s)| ((node, s.camera_id.clone()), s))
        .collect();
    leases
        .into_iter()
        .filter(|l| l.expires_at > now)
        .map(|l| {
            let health = published
                .remove(&(l.node_id.clone(), l.camera_id.clone()))
                .and_then(|s| {
                    let mut h = CameraHealth::new(
                        CameraState::parse(&s.state)?,
                        chrono::DateTime::from_timestamp_millis(s.since)?,
                    );
                    h.reason = s.reason.as_deref().and_then(HealthReason::parse);
                    h.detail = s.detail;
                    Some(h)
                });
            let remote = RemoteCamera {
                node: Some(l.node_id),
                health,
            };
            (l.camera_id, remote)
        })
        .collect()
}

/// What `GET /api/v1/cluster` reads: the nodes' beats and the leases.
pub fn directory(
    config: &ClusterConfig,
    store: &Arc<dyn Store>,
) -> Option<Arc<dyn ClusterDirectory>> {
    let Backend::Postgres(pg) = store.backend() else {
        return None;
    };
    Some(Arc::new(LeaseDirectory::new(
        pg.clone(),
        config.node_id(),
        Duration::from_secs_f64(config.lease_s),
    )))
}

/// `xueliang drain --config <file> [--node <id>]`: asks a node to hand its
/// cameras over to the others and stop.
pub fn drain(config: &Config, node: Option<String>) -> ExitCode {
    crate::offline::block_on(async move {
        let Some(cluster) = &config.cluster else {
            bail!("drain: the config has no [cluster] section (one node runs every camera)");
        };
        let node = node.unwrap_or_else(|| cluster.node_id());
        let store = PgStore::open(&config.storage.database_url())
            .await
            .context("[storage]")?;
        if !store.ask_to_drain(&node).await.context("[storage]")? {
            bail!("drain: no node \"{node}\" has joined this database");
        }
        println!("asked node \"{node}\" to hand its cameras over and stop");
        Ok(())
    })
}
