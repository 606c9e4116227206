//! The camera registry as the cluster coordinator's host: cameras start
//! here when this node takes their leases and stop when it gives them up,
//! and a camera changed through another node's API is re-read here.

use crate::cameras::CameraRegistry;
use chrono::Utc;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::collections::HashMap;
use tracing::{info, warn};
use xueliang_cluster::CameraHost;
use xueliang_core::{CameraHealth, CameraState};

/// The detail of a camera this node lists but does not run, until the
/// shared database says more.
pub(crate) const RUN_ELSEWHERE: &str = "run by another node of the cluster";

/// What the shared database says of a camera another node runs.
#[derive(Debug, Default)]
pub struct RemoteCamera {
    /// The node holding its lease, if any.
    pub node: Option<String>,
    /// Its live health as that node last published it (state, reason,
    /// detail, since); `None` when the runner has not published yet.
    pub health: Option<CameraHealth>,
}

impl CameraHost for CameraRegistry {
    fn wanted(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|e| e.view.config.enabled)
            .map(|e| e.view.config.id.clone())
            .collect()
    }

    fn running_here(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|e| e.running.is_some())
            .map(|e| e.view.config.id.clone())
            .collect()
    }

    fn start(&self, id: &str) -> BoxFuture<'_, ()> {
        let id = id.to_owned();
        async move {
            let _g = self.changes.lock().await;
            let found = self.lock().iter().position(|e| e.view.config.id == id);
            let Some(position) = found else { return };
            let (config, definition) = {
                let cameras = self.lock();
                let e = &cameras[position];
                if e.running.is_some() || !e.view.config.enabled {
                    return;
                }
                (e.view.config.clone(), e.definition.clone())
            };
            // Nobody runs it now: what its last runner left open is over.
            match self
                .parts
                .store
                .end_orphaned_events(Some(id.clone()), chrono::Utc::now())
                .await
            {
                Ok(0) => {}
                Ok(n) => info!(camera = %id, orphans = n, "ended events left open by the camera's previous node"),
                Err(e) => warn!(camera = %id, error = %e, "cannot end the camera's orphaned events"),
            }
            info!(camera = %id, "starting camera (lease taken)");
            let entry = CameraRegistry::start(self, config, definition).await;
            self.lock()[position] = entry;
        }
        .boxed()
    }

    fn stop(&self, id: &str) -> BoxFuture<'_, ()> {
        let id = id.to_owned();
        async move {
            let _g = self.changes.lock().await;
            let found = self.lock().iter().position(|e| e.view.config.id == id);
            let Some(position) = found else { return };
            let Some(running) = self.lock()[position].running.take() else {
                return;
            };
            CameraRegistry::stop(self, &id, Some(running)).await;
            info!(camera = %id, "camera stopped (lease given up)");
            let (config, definition) = {
                let cameras = self.lock();
                (
                    cameras[position].view.config.clone(),
                    cameras[position].definition.clone(),
                )
            };
            self.lock()[position] = self.standby(config, definition);
        }
        .boxed()
    }
}

impl CameraRegistry {
    /// Shows, for each camera listed here but run elsewhere, its runner and
    /// the health that runner published: the camera list then covers the
    /// whole site whichever node answers. Counters stay at zero (they are
    /// the runner's).
    pub fn show_remote(&self, remote: &HashMap<String, RemoteCamera>) {
        for e in self.lock().iter() {
            let Some(sender) = &e.remote else { continue };
            if !e.view.config.enabled {
                continue;
            }
            let r = remote.get(&e.view.config.id);
            let next = match r.and_then(|r| r.node.as_deref()) {
                Some(node) => {
                    let mut h = r
                        .and_then(|r| r.health.clone())
                        .unwrap_or_else(|| CameraHealth::new(CameraState::Connecting, Utc::now()));
                    let runner = format!("run by node \"{node}\" of the cluster");
                    h.detail = Some(match h.detail.take() {
                        Some(d) => format!("{d}; {runner}"),
                        None => runner,
                    });
                    h
                }
                None => {
                    let mut h = CameraHealth::new(CameraState::Connecting, Utc::now());
                    h.detail = Some("no node of the cluster runs it now".to_owned());
                    h
                }
            };
            sender.send_if_modified(|h| {
                let same =
                    h.state == next.state && h.reason == next.reason && h.detail == next.detail;
                if !same {
                    *h = next;
                }
                !same
            });
        }
    }

    /// The live health of every camera this node runs, by id.
    pub fn running_health(&self) -> Vec<(String, CameraHealth)> {
        self.lock()
            .iter()
            .filter(|e| e.running.is_some())
            .map(|e| (e.view.config.id.clone(), e.view.health.borrow().clone()))
            .collect()
    }

    /// Re-reads a camera's stored definition after a change made through
    /// any node's API: a new camera is listed (the coordinators place it),
    /// a changed one restarts if it runs here, a deleted one stops.
    pub async fn reload(&self, id: &str) {
        let stored = match self.parts.store.list_cameras().await {
            Ok(all) => all.into_iter().find(|c| c.id == id),
            Err(e) => {
                warn!(camera = %id, error = %e, "cannot read a camera changed on another node");
                return;
            }
        };
        let Some(stored) = stored else { return };
        let _g = self.changes.lock().await;
        let position = self.lock().iter().position(|e| e.view.config.id == id);
        if stored.deleted {
            if let Some(position) = position {
                let mut entry = self.lock().remove(position);
                CameraRegistry::stop(self, id, entry.running.take()).await;
                info!(camera = %id, "camera deleted on another node");
            }
            return;
        }
        if position.is_some_and(|p| self.lock()[p].definition == stored.definition) {
            return; // this node's own change, or nothing new
        }
        let config = match self.parse(&stored.definition) {
            Ok(c) => c,
            Err(e) => {
                warn!(camera = %id, error = ?e, "a camera changed on another node does not read here; left as it was");
                return;
            }
        };
        let definition = stored.definition;
        match position {
            Some(p) => {
                let running = self.lock()[p].running.take();
                let was_running = running.is_some();
                CameraRegistry::stop(self, id, running).await;
                let entry = if was_running && config.enabled {
                    CameraRegistry::start(self, config, definition).await
                } else {
                    self.standby(config, definition)
                };
                self.lock()[p] = entry;
                info!(camera = %id, "camera changed on another node");
            }
            None => {
                let entry = self.standby(config, definition);
                self.lock().push(entry);
                info!(camera = %id, "camera added on another node");
            }
        }
    }
}
