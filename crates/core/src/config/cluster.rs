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
    /// Where this node's API answers the other nodes (`http://10.0.0.5:8080`):
    /// a node asked for live video or a frame of a camera another node runs
    /// forwards the request there. Default: `XUELIANG_API_URL` when set,
    /// else none (such requests answer 404 on nodes that do not run the
    /// camera).
    pub api_url: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: None,
            max_cameras: 0,
            lease_s: 15.0,
            api_url: None,
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
        if let Some(u) = &self.api_url {
            check_api_url(u).map_err(|e| format!("field `api_url`: {e}"))?;
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

    /// Where this node's API answers the others: `api_url`, else
    /// `XUELIANG_API_URL`; an unusable `XUELIANG_API_URL` is an error.
    pub fn api_url(&self) -> Result<Option<String>, String> {
        if let Some(u) = &self.api_url {
            return Ok(Some(u.trim_end_matches('/').to_owned()));
        }
        match std::env::var("XUELIANG_API_URL") {
            Ok(u) if !u.is_empty() => {
                check_api_url(&u).map_err(|e| format!("XUELIANG_API_URL: {e}"))?;
                Ok(Some(u.trim_end_matches('/').to_owned()))
            }
            _ => Ok(None),
        }
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

/// An `http://` or `https://` URL with a host and nothing after the port
/// but `/`.
fn check_api_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("not a URL ({e}): \"{u}\""))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "must be http://host:port or https://..., got \"{u}\""
        ));
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(format!(
            "the node's address only (no path: the API is under /api/v1), got \"{u}\""
        ));
    }
    Ok(())
}
