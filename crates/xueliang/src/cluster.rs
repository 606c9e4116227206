//! `serve` with `[cluster]`: the lease coordinator over the camera
//! registry, camera changes from other nodes, and `xueliang drain`.

use anyhow::{bail, Context};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xueliang_cluster::{ClusterSettings, Coordinator, Ended};
use xueliang_core::{ClusterConfig, Config};
use xueliang_pipeline::CameraRegistry;
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
