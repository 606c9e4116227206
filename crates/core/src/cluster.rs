//! What `GET /api/v1/cluster` shows: the nodes sharing the database, the
//! cameras each one holds, their load and last heartbeat.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;

/// A node of the cluster as the database records it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClusterNode {
    pub node_id: String,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (the database's clock).
    pub heartbeat_at: DateTime<Utc>,
    /// Whether it beat within the lease time: the others count it in the
    /// fair share. A node that stopped beating loses its cameras when
    /// their leases expire.
    pub live: bool,
    /// Asked to hand its cameras over (`xueliang drain`, SIGTERM).
    pub draining: bool,
    /// Its cap on cameras; 0: none.
    pub max_cameras: i64,
    /// Its process's CPU over the last round, % of one core.
    pub cpu_percent: f64,
    /// The cameras whose leases it holds now, by id.
    pub cameras: Vec<String>,
    /// Where its API answers the other nodes (`[cluster] api_url`).
    pub api_url: Option<String>,
}

/// The node that runs a camera now.
#[derive(Clone, Debug, PartialEq)]
pub struct Runner {
    pub node_id: String,
    /// Where its API answers the other nodes; `None`: it did not say.
    pub api_url: Option<String>,
}

/// The whole cluster, as one node reads it from the database.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// False when this node runs alone (no `[cluster]` section): every
    /// list is then empty.
    pub clustered: bool,
    /// The node that answered.
    pub this_node: Option<String>,
    /// The lease time, seconds.
    pub lease_s: Option<f64>,
    /// Every node that joined, live or not, by id.
    pub nodes: Vec<ClusterNode>,
    /// Enabled cameras that no node holds now (between a node's death and
    /// another's claim, or when every node is at its cap).
    pub unassigned: Vec<String>,
}

impl ClusterStatus {
    /// The answer of a node without `[cluster]`.
    pub fn alone() -> ClusterStatus {
        ClusterStatus {
            clustered: false,
            this_node: None,
            lease_s: None,
            nodes: Vec::new(),
            unassigned: Vec::new(),
        }
    }
}

/// Reads the cluster's state (the nodes' beats and the cameras' leases).
pub trait ClusterDirectory: Send + Sync {
    /// The nodes and their cameras; `unassigned` is left empty (the caller
    /// knows which cameras are wanted). The error says what failed.
    fn status(&self) -> BoxFuture<'_, Result<ClusterStatus, String>>;

    /// The node answering.
    fn this_node(&self) -> &str;

    /// The node holding `camera`'s lease now, if any.
    fn runner(&self, camera: &str) -> BoxFuture<'_, Result<Option<Runner>, String>>;
}
