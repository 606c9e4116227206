//! `[cluster]`: this node's part in a site of several `xueliang serve`
//! nodes sharing one PostgreSQL database (design/cluster.md). Without the
//! section a node runs every camera itself.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name among the others; unique. Default:
    /// `XUELIANG_NODE_ID` when set, else the host name (a StatefulSet's pod
    /// name).
    pub node_id: Option<String>,
    /// The most cameras this node runs; 0: no cap (a fair share of all).
    pub max_cameras: u32,
    /// How long a camera's lease lasts without renewal, in seconds: a
    /// node that dies loses its cameras to the others within this time.
    pub lease_s: f64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: None,
            max_cameras: 0,
            lease_s: 15.0,
        }
    }
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(3.0..=300.0).contains(&self.lease_s) {
            return Err(format!(
                "field `lease_s`: must be in [3, 300] seconds, got {}",
                self.lease_s
            ));
        }
        if let Some(id) = &self.node_id {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(format!(
                    "field `node_id`: 1-64 letters, digits, '-', '_' or '.', got \"{id}\""
                ));
            }
        }
        Ok(())
    }

    /// The node id: `node_id`, else `XUELIANG_NODE_ID`, else the host name.
    pub fn node_id(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        if let Ok(id) = std::env::var("XUELIANG_NODE_ID") {
            if !id.is_empty() {
                return id;
            }
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "xueliang".to_owned())
    }
}
