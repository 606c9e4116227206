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
use xueliang_core::{CameraState, ClusterConfig, Config};
use xueliang_pipeline::{CameraRegistry, RemoteCamera};
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
    tokio::spawn(show_remote_health(
        pg.clone(),
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

/// How often the cameras other nodes run are re-read from the database.
const REMOTE_HEALTH_EVERY: Duration = Duration::from_secs(5);
/// Health samples older than this say nothing of a camera's state now.
const REMOTE_HEALTH_WINDOW_MS: i64 = 60_000;

/// Keeps the camera list's entries of cameras run elsewhere showing their
/// runner and its newest health sample.
async fn show_remote_health(pg: PgStore, registry: Arc<CameraRegistry>, stop: CancellationToken) {
    loop {
        let read = async {
            let leases = pg.leases().await?;
            let samples = pg.latest_health(REMOTE_HEALTH_WINDOW_MS).await?;
            let now = pg.db_now().await?;
            Ok::<_, xueliang_store::StoreError>((leases, samples, now))
        };
        match read.await {
            Ok((leases, samples, now)) => {
                let mut remote: HashMap<String, RemoteCamera> = HashMap::new();
                for l in leases.into_iter().filter(|l| l.expires_at > now) {
                    remote.entry(l.camera_id).or_default().node = Some(l.node_id);
                }
                for (camera, state, at) in samples {
                    let (Some(state), Some(at)) = (
                        CameraState::parse(&state),
                        chrono::DateTime::from_timestamp_millis(at),
                    ) else {
                        continue;
                    };
                    remote.entry(camera).or_default().sample = Some((state, at));
                }
                registry.show_remote(&remote);
            }
            Err(e) => warn!(error = %e, "cannot read the cameras other nodes run"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REMOTE_HEALTH_EVERY) => {}
        }
    }
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
