//! The client behind trusted reverse proxies: `[server] trusted_proxies`
//! lists addresses or CIDR ranges; a request from one of them names the
//! client in `X-Forwarded-For`, read from the right (each proxy appends the
//! address it saw), skipping the trusted hops. A request from any other peer
//! is its own client, whatever headers it sends.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        format!("\"{e}\" is not an address or CIDR range (e.g. 10.0.0.0/8)")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 peer counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For`
    /// header values: `peer` unless it is trusted; then the right-most
    /// forwarded address that is not a trusted proxy (or the left-most one
    /// when all are). An entry that is not an address ends the walk: the
    /// last good hop is the client.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = canonical(ip);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::try_from(list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges_parse_and_match() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
        assert!(p.contains(ip("10.1.2.3")));
        assert!(p.contains(ip("192.168.1.7")));
        assert!(!p.contains(ip("192.168.1.8")));
        assert!(p.contains(ip("fd00::1")));
        assert!(p.contains(ip("::ffff:10.0.0.1")));
        let e = TrustedProxies::try_from(vec!["10.0.0.0/33".to_string()]).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        assert!(TrustedProxies::try_from(vec!["proxy.local".to_string()]).is_err());
    }

    #[test]
    fn the_client_is_read_from_the_right_past_trusted_hops_only() {
        let p = proxies(&["10.0.0.0/8"]);
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            p.client(ip("203.0.113.5"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.5")
        );
        // A trusted proxy: the right-most untrusted hop; a spoofed left part is ignored.
        assert_eq!(
            p.client(
                ip("10.0.0.2"),
                ["6.6.6.6, 198.51.100.9, 10.0.0.3"].into_iter()
            ),
            ip("198.51.100.9")
        );
        // Several header lines are one list.
        assert_eq!(
            p.client(ip("10.0.0.2"), ["6.6.6.6", "198.51.100.9"].into_iter()),
            ip("198.51.100.9")
        );
        // No header: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.2"), std::iter::empty()), ip("10.0.0.2"));
        // Garbage ends the walk at the last good hop.
        assert_eq!(
            p.client(ip("10.0.0.2"), ["198.51.100.9, junk, 10.0.0.4"].into_iter()),
            ip("10.0.0.4")
        );
        // No proxies configured: the header is never read.
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.2"), ["1.2.3.4"].into_iter()),
            ip("10.0.0.2")
        );
    }
}
