//! What the SIP server is told at start. The `[gb28181]` config section
//! (in core) is turned into this; defaults follow GB/T 28181 practice.

use super::error::SipError;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;
use xueliang_core::Secret;

/// Which devices may register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// Only device ids listed in `known_devices`; others get 403.
    #[default]
    Known,
    /// Any device that knows the password.
    Any,
}

impl FromStr for Accept {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "known" => Ok(Accept::Known),
            "any" => Ok(Accept::Any),
            other => Err(format!(
                "accept must be \"known\" or \"any\", not {other:?}"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SipSettings {
    /// The platform's 20-digit SIP id (the devices' "SIP server ID").
    pub server_id: String,
    /// The SIP domain, the digest realm: the first 10 digits of `server_id`.
    pub domain: String,
    /// Where to listen, on UDP and TCP both (port 0 picks a free port for both).
    pub listen: SocketAddr,
    /// The address put in SDP offers, Via and Contact when `listen` is a
    /// wildcard: the platform's address as devices reach it (NAT).
    pub media_ip: IpAddr,
    /// The registration password; `None` with no per-device password
    /// registers devices without a challenge.
    pub password: Option<Secret>,
    /// Per-device passwords, overriding `password`.
    pub device_passwords: HashMap<String, Secret>,
    pub accept: Accept,
    pub known_devices: HashSet<String>,
    /// The keepalive interval assumed for a device until its own is seen.
    pub keepalive_interval: Duration,
    /// Missed keepalives after which a device is offline.
    pub keepalive_misses: u32,
    /// Bounds of the registration time granted (seconds).
    pub expires_min: u32,
    pub expires_max: u32,
    /// Wrong passwords, per device id and per source address, before 403s.
    pub auth_failures_before_block: u32,
    /// How long a blocked device id or address gets 403s.
    pub auth_block: Duration,
    /// At most this many devices are tracked (online or not).
    pub max_devices: usize,
    /// Larger SIP messages are dropped (and counted).
    pub max_message_bytes: usize,
    /// RFC 3261's T1: the first UDP retransmission; 64*T1 ends a transaction.
    pub t1: Duration,
    /// How long an INVITE may stay unanswered after a provisional response.
    pub invite_timeout: Duration,
    /// How long the parts of one catalog answer may take to arrive.
    pub catalog_timeout: Duration,
    /// How often registrations and keepalives are checked.
    pub sweep_interval: Duration,
}

impl SipSettings {
    /// Settings with GB/T 28181's usual defaults.
    pub fn new(server_id: &str, listen: SocketAddr, media_ip: IpAddr) -> SipSettings {
        SipSettings {
            domain: server_id.chars().take(10).collect(),
            server_id: server_id.to_owned(),
            listen,
            media_ip,
            password: None,
            device_passwords: HashMap::new(),
            accept: Accept::Known,
            known_devices: HashSet::new(),
            keepalive_interval: Duration::from_secs(60),
            keepalive_misses: 3,
            expires_min: 60,
            expires_max: 86_400,
            auth_failures_before_block: 5,
            auth_block: Duration::from_secs(300),
            max_devices: 10_000,
            max_message_bytes: 65_535,
            t1: Duration::from_millis(500),
            invite_timeout: Duration::from_secs(30),
            catalog_timeout: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(1),
        }
    }

    /// The password a device must know, if any.
    pub fn password_for(&self, device_id: &str) -> Option<&Secret> {
        self.device_passwords
            .get(device_id)
            .or(self.password.as_ref())
    }

    pub fn accepts(&self, device_id: &str) -> bool {
        match self.accept {
            Accept::Any => true,
            Accept::Known => self.known_devices.contains(device_id),
        }
    }

    pub fn validate(&self) -> Result<(), SipError> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let bad = |field: &str, why: &str| Err(SipError::Settings(format!("{field}: {why}")));
        if !digits(&self.server_id, 20) {
            return bad("server_id", "must be 20 digits");
        }
        if !digits(&self.domain, 10) {
            return bad("domain", "must be 10 digits");
        }
        if self.keepalive_misses == 0 {
            return bad("keepalive_misses", "must be at least 1");
        }
        if self.expires_min == 0 || self.expires_min > self.expires_max {
            return bad("expires_min", "must be at least 1 and at most expires_max");
        }
        let hour = Duration::from_secs(3600);
        for (field, value, max) in [
            ("t1", self.t1, Duration::from_secs(10)),
            ("sweep_interval", self.sweep_interval, hour),
            ("keepalive_interval", self.keepalive_interval, hour),
            ("invite_timeout", self.invite_timeout, hour),
            ("catalog_timeout", self.catalog_timeout, hour),
            ("auth_block", self.auth_block, Duration::from_secs(86_400)),
        ] {
            if value.is_zero() || value > max {
                return bad(
                    field,
                    &format!("must be above zero and at most {}s", max.as_secs()),
                );
            }
        }
        if self.max_message_bytes < 1024 {
            return bad("max_message_bytes", "must be at least 1024");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SipSettings {
        SipSettings::new(
            "34020000002000000001",
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        )
    }

    #[test]
    fn defaults_validate_and_derive_the_domain() {
        let s = settings();
        assert_eq!(s.domain, "3402000000");
        assert!(s.validate().is_ok());
        let mut bad = settings();
        bad.server_id = "3402".into();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server_id"));
    }

    #[test]
    fn per_device_password_overrides_and_debug_hides_them() {
        let mut s = settings();
        s.password = Some(Secret::new("global-pw"));
        s.device_passwords
            .insert("dev1".into(), Secret::new("own-pw"));
        assert_eq!(s.password_for("dev1").map(Secret::expose), Some("own-pw"));
        assert_eq!(
            s.password_for("dev2").map(Secret::expose),
            Some("global-pw")
        );
        let debug = format!("{s:?}");
        assert!(!debug.contains("global-pw") && !debug.contains("own-pw"));
    }

    #[test]
    fn accept_policies() {
        let mut s = settings();
        s.known_devices.insert("a".into());
        assert!(s.accepts("a") && !s.accepts("b"));
        s.accept = "any".parse().unwrap();
        assert!(s.accepts("b"));
        assert!("some".parse::<Accept>().is_err());
    }
}
