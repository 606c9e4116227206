//! A node's side of the leases: one round every fifth of a lease, and a
//! watchdog that stops every camera when the leases may be about to
//! expire unrenewed.

use crate::fair_share;
use futures::future::BoxFuture;
use rand::seq::SliceRandom;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::MutexGuard;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use xueliang_store::postgres_cluster::Beat;
use xueliang_store::{PgStore, StoreError};

/// Cameras a node takes in one round beyond its share's first claim: a
/// node that starts (or a site that lost a node) does not start everything
/// at once.
const CLAIM_STEP: usize = 8;
/// How often the watchdog looks at the deadline.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Where the cameras run: the camera registry.
pub trait CameraHost: Send + Sync {
    /// The cameras the site runs (enabled), as this node knows them.
    fn wanted(&self) -> Vec<String>;
    /// The cameras running on this node.
    fn running_here(&self) -> Vec<String>;
    /// Starts a camera here (its lease is held).
    fn start(&self, id: &str) -> BoxFuture<'_, ()>;
    /// Stops a camera here; it has stopped when this returns.
    fn stop(&self, id: &str) -> BoxFuture<'_, ()>;
}

#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub node_id: String,
    /// 0: no cap.
    pub max_cameras: usize,
    pub lease: Duration,
    /// Where this node's API answers the other nodes (forwarded live video).
    pub api_url: Option<String>,
}

impl ClusterSettings {
    fn lease_ms(&self) -> i64 {
        self.lease.as_millis() as i64
    }

    /// Time between rounds: a fifth of a lease, so a lease is renewed four
    /// times before it could expire.
    fn period(&self) -> Duration {
        self.lease / 5
    }

    /// How long before its leases' earliest expiry a node that could not
    /// renew stops its cameras: room for stopping them (and for the
    /// database's clock having counted from a little later than ours).
    fn margin(&self) -> Duration {
        (self.lease / 5).max(Duration::from_secs(1))
    }
}

pub struct Coordinator {
    store: PgStore,
    host: Arc<dyn CameraHost>,
    settings: ClusterSettings,
    /// The cameras must be stopped by this moment unless a renewal moves it.
    deadline: Mutex<Option<Instant>>,
    /// Serialises starting and stopping (never held across a database call).
    ops: tokio::sync::Mutex<()>,
    /// Serialises rounds: the drain's round and the loop's never interleave
    /// (one could otherwise restart a camera the other just handed over).
    rounds: tokio::sync::Mutex<()>,
    draining: AtomicBool,
    cpu: Mutex<crate::load::CpuMeter>,
}

/// Why [`Coordinator::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The service is shutting down.
    Shutdown,
    /// `xueliang drain` asked this node to hand its cameras over and stop:
    /// it holds none any more.
    Drained,
}

impl Coordinator {
    pub fn new(store: PgStore, host: Arc<dyn CameraHost>, settings: ClusterSettings) -> Self {
        Coordinator {
            store,
            host,
            settings,
            deadline: Mutex::new(None),
            ops: tokio::sync::Mutex::new(()),
            rounds: tokio::sync::Mutex::new(()),
            draining: AtomicBool::new(false),
            cpu: Mutex::new(crate::load::CpuMeter::start()),
        }
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// Joins the site (records this node), then runs rounds until
    /// `shutdown` or a drain asked from outside; the watchdog runs beside.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Ended {
        let s = &self.settings;
        while let Err(e) = self
            .store
            .join(&s.node_id, s.max_cameras as i64, s.api_url.as_deref())
            .await
        {
            warn!(error = %e, node = %s.node_id, "cannot join the cluster; trying again");
            tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                _ = tokio::time::sleep(s.period()) => {}
            }
        }
        info!(node = %s.node_id, lease_s = s.lease.as_secs_f64(), max_cameras = s.max_cameras, "joined the cluster");
        let watchdog = tokio::spawn(self.clone().watch(shutdown.child_token()));
        let ended = loop {
            match self.round(self.rounds.lock().await).await {
                Ok(true) => break Ended::Drained,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "cluster round failed (leases not renewed)"),
            }
            // A little jitter, so nodes started together do not ask together.
            let jitter = rand::random::<f64>() * 0.2 - 0.1;
            let pause = s.period().mul_f64(1.0 + jitter);
            tokio::select! {
                _ = shutdown.cancelled() => break Ended::Shutdown,
                _ = tokio::time::sleep(pause) => {}
            }
        };
        watchdog.abort();
        ended
    }

    /// Hands every camera over (SIGTERM): stops each, then gives its lease
    /// up, so another node can take it at its next round.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        // A round in flight finishes first (it may be waiting on the
        // database: not longer than a lease).
        let Ok(turn) = tokio::time::timeout(self.settings.lease, self.rounds.lock()).await else {
            warn!("drain: a cluster round is stuck (database unreachable?); the leases expire on their own");
            self.stop_all("draining without the database").await;
            return;
        };
        if let Err(e) = self.round(turn).await {
            warn!(error = %e, "drain: could not reach the database; the leases expire on their own");
            self.stop_all("draining without the database").await;
        }
    }

    /// Stops every camera once the deadline passes unrenewed.
    async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
            let late = self
                .deadline
                .lock()
                .unwrap()
                .is_some_and(|d| Instant::now() >= d);
            if late && !self.host.running_here().is_empty() {
                error!(
                    node = %self.settings.node_id,
                    "leases not renewed in time (database unreachable?); stopping every camera before the leases expire"
                );
                self.stop_all("leases not renewed").await;
            }
        }
    }

    async fn stop_all(&self, why: &str) {
        let _g = self.ops.lock().await;
        for id in self.host.running_here() {
            info!(camera = %id, why, "stopping camera");
            self.host.stop(&id).await;
        }
    }

    /// One round: beat, renew, reconcile, rebalance. `Ok(true)` once a
    /// drain asked from outside is complete.
    async fn round(&self, _turn: MutexGuard<'_, ()>) -> Result<bool, StoreError> {
        let s = &self.settings;
        let lease_ms = s.lease_ms();
        let asked = Instant::now();
        let running: HashSet<String> = self.host.running_here().into_iter().collect();
        let cpu_percent = self.cpu.lock().unwrap().percent();
        let draining = self
            .store
            .beat(&Beat {
                node_id: s.node_id.clone(),
                max_cameras: s.max_cameras as i64,
                cameras: running.len() as i64,
                cpu_percent,
                draining: self.draining.load(Ordering::Relaxed),
                api_url: s.api_url.clone(),
            })
            .await?;
        let held: HashSet<String> = self
            .store
            .renew(&s.node_id, lease_ms)
            .await?
            .into_iter()
            .collect();
        // Every lease held now expires no earlier than `asked + lease` by
        // the database's clock.
        *self.deadline.lock().unwrap() = Some(asked + s.lease - s.margin());
        let wanted: HashSet<String> = self.host.wanted().into_iter().collect();

        let _g = self.ops.lock().await;
        for id in running.difference(&held) {
            warn!(camera = %id, "lease lost; stopping the camera");
            self.host.stop(id).await;
        }
        if draining || self.draining.load(Ordering::Relaxed) {
            self.draining.store(true, Ordering::Relaxed);
            for id in &held {
                self.host.stop(id).await;
            }
            drop(_g);
            for id in &held {
                self.store.release(&s.node_id, id).await?;
                info!(camera = %id, "handed over (draining)");
            }
            return Ok(true);
        }
        let mut owned: Vec<String> = Vec::new();
        let mut unwanted: Vec<&String> = Vec::new();
        for id in &held {
            if wanted.contains(id) {
                if !running.contains(id) {
                    self.host.start(id).await;
                }
                owned.push(id.clone());
            } else {
                // Deleted or disabled meanwhile.
                if running.contains(id) {
                    self.host.stop(id).await;
                }
                unwanted.push(id);
            }
        }
        drop(_g);
        for id in unwanted {
            self.store.release(&s.node_id, id).await?;
        }
        self.rebalance(&wanted, owned).await?;
        Ok(false)
    }

    /// Takes cameras nobody runs up to the fair share (and one more per
    /// round while some are left with nobody), or gives one up when this
    /// node has more than its share and another live node has less.
    async fn rebalance(
        &self,
        wanted: &HashSet<String>,
        owned: Vec<String>,
    ) -> Result<(), StoreError> {
        let s = &self.settings;
        let now = self.store.db_now().await?;
        let lease_ms = s.lease_ms();
        let nodes = self.store.nodes().await?;
        let live: Vec<_> = nodes
            .iter()
            .filter(|n| !n.draining && n.heartbeat_at > now - lease_ms)
            .collect();
        let share = fair_share(wanted.len(), live.len(), s.max_cameras);
        let leases = self.store.leases().await?;
        let taken: HashSet<&str> = leases
            .iter()
            .filter(|l| l.expires_at > now)
            .map(|l| l.camera_id.as_str())
            .collect();
        let mut free: Vec<&String> = wanted
            .iter()
            .filter(|c| !taken.contains(c.as_str()))
            .collect();
        let room = |n: usize| s.max_cameras == 0 || n < s.max_cameras;
        let want = if owned.len() < share {
            (share - owned.len()).min(CLAIM_STEP)
        } else if !free.is_empty() && room(owned.len()) {
            1
        } else {
            0
        };
        if want > 0 && !free.is_empty() {
            free.shuffle(&mut rand::thread_rng());
            let mut got = 0;
            for id in free {
                if got == want {
                    break;
                }
                if self.store.claim(&s.node_id, id, lease_ms).await? {
                    let _g = self.ops.lock().await;
                    info!(camera = %id, share, "claimed");
                    self.host.start(id).await;
                    got += 1;
                }
            }
            return Ok(());
        }
        if owned.len() > share {
            let count = |node: &str| {
                leases
                    .iter()
                    .filter(|l| l.node_id == node && l.expires_at > now)
                    .count()
            };
            let short = live.iter().any(|n| {
                n.node_id != s.node_id
                    && count(&n.node_id) < share
                    && (n.max_cameras == 0 || count(&n.node_id) < n.max_cameras as usize)
            });
            if short {
                let id = owned
                    .choose(&mut rand::thread_rng())
                    .expect("owns more than a share");
                {
                    let _g = self.ops.lock().await;
                    self.host.stop(id).await;
                }
                self.store.release(&s.node_id, id).await?;
                info!(camera = %id, share, "handed over to a node with less than its share");
            }
        }
        Ok(())
    }
}
