//! Several `xueliang serve` nodes on one PostgreSQL database
//! (design/cluster.md). Each camera runs on the node that holds its lease
//! (crates/store/src/postgres_cluster.rs); the [`Coordinator`] of each node
//! renews its leases, takes a fair share of the cameras nobody holds,
//! hands cameras over to a node that joined, and stops its cameras before
//! their leases can expire when it cannot reach the database — so no two
//! nodes ever run one camera.

mod coordinator;
mod directory;
mod load;
mod share;

pub use coordinator::{CameraHost, ClusterSettings, Coordinator, Ended};
pub use directory::LeaseDirectory;
pub use share::fair_share;
