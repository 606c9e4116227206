//! `[server]`: the addresses the HTTP API and the metrics endpoint listen on,
//! and the reverse proxies trusted to name the client.

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (`/metrics`).
    pub metrics_listen: SocketAddr,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// names the real client; empty: the peer address is the client.
    pub trusted_proxies: crate::TrustedProxies,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            metrics_listen: "127.0.0.1:9090".parse().expect("valid literal"),
            trusted_proxies: Default::default(),
        }
    }
}
