//! The devices the platform knows: where each one is, until when it is
//! registered, when it last sent a keepalive, its channels; the events their
//! changes publish; and the registry that holds them (bounded).

use super::charset::Charset;
use super::keepalive::{keepalive_lost, IntervalEstimate};
use super::manscdp::Channel;
use super::transport::{Peer, SipTransport};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use xueliang_core::HealthReason;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfflineReason {
    /// `keepalive_misses` keepalive intervals passed without one.
    KeepaliveLost,
    /// The registration ran out without a refresh.
    Expired,
    /// The device unregistered (REGISTER with Expires: 0).
    Unregistered,
}

impl OfflineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::KeepaliveLost => "keepalive_lost",
            OfflineReason::Expired => "expired",
            OfflineReason::Unregistered => "unregistered",
        }
    }

    /// The health reason of the device's cameras.
    pub fn health_reason(self) -> HealthReason {
        match self {
            OfflineReason::KeepaliveLost => HealthReason::KeepaliveLost,
            OfflineReason::Expired | OfflineReason::Unregistered => HealthReason::DeviceOffline,
        }
    }
}

/// What changed about a device. Published on a broadcast channel.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceEvent {
    /// The device registered and is online (first time, or back after being offline).
    Registered { device_id: String },
    /// The device unregistered itself.
    Unregistered { device_id: String },
    /// Keepalives stopped or the registration ran out.
    Offline {
        device_id: String,
        reason: OfflineReason,
    },
    /// Keepalives came back before the registration ran out: online again.
    KeepaliveResumed { device_id: String },
    /// A catalog answer was received in full (or as far as it came in time).
    CatalogUpdated { device_id: String, channels: usize },
}

/// A device as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    pub id: String,
    /// Where its messages come from (after NAT).
    pub address: SocketAddr,
    pub transport: SipTransport,
    pub registered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_keepalive: Option<DateTime<Utc>>,
    /// The keepalive interval learned from the device (or assumed).
    pub keepalive_interval: Duration,
    pub online: bool,
    pub offline_reason: Option<OfflineReason>,
    /// The charset of its MANSCDP bodies (as it declared it).
    pub charset: String,
    pub channels: Vec<Channel>,
    pub catalog_at: Option<DateTime<Utc>>,
}

pub struct Device {
    pub peer: Peer,
    pub registered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_keepalive: Option<DateTime<Utc>>,
    pub keepalive: IntervalEstimate,
    pub online: bool,
    pub offline_reason: Option<OfflineReason>,
    pub charset: Charset,
    pub channels: Vec<Channel>,
    pub catalog_at: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeepaliveOutcome {
    /// Unknown, unregistered or expired: the device must register again.
    NotRegistered,
    Alive,
    /// It was offline for lost keepalives and is back.
    Resumed,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RegistryFull;

pub struct Registry {
    devices: HashMap<String, Device>,
    max: usize,
}

impl Registry {
    pub fn new(max: usize) -> Registry {
        Registry {
            devices: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Records a registration; `Ok(true)` when the device came online by it.
    pub fn register(
        &mut self,
        id: &str,
        peer: &Peer,
        expires: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, RegistryFull> {
        let expires_at = now + chrono::Duration::from_std(expires).unwrap_or(chrono::Duration::MAX);
        if let Some(device) = self.devices.get_mut(id) {
            let came_online = !device.online;
            device.peer = peer.clone();
            device.expires_at = expires_at;
            if came_online {
                device.registered_at = now;
                device.last_keepalive = None;
                device.online = true;
                device.offline_reason = None;
            }
            return Ok(came_online);
        }
        if self.devices.len() >= self.max && !self.evict_one_offline() {
            return Err(RegistryFull);
        }
        self.devices.insert(
            id.to_owned(),
            Device {
                peer: peer.clone(),
                registered_at: now,
                expires_at,
                last_keepalive: None,
                keepalive: IntervalEstimate::default(),
                online: true,
                offline_reason: None,
                charset: Charset::gb2312(),
                channels: Vec::new(),
                catalog_at: None,
            },
        );
        Ok(true)
    }

    fn evict_one_offline(&mut self) -> bool {
        let oldest = self
            .devices
            .iter()
            .filter(|(_, d)| !d.online)
            .min_by_key(|(_, d)| d.expires_at)
            .map(|(id, _)| id.clone());
        oldest.is_some_and(|id| self.devices.remove(&id).is_some())
    }

    /// Unregisters; true when the device was online.
    pub fn unregister(&mut self, id: &str) -> bool {
        match self.devices.get_mut(id) {
            Some(device) => {
                let was_online = device.online;
                device.online = false;
                device.offline_reason = Some(OfflineReason::Unregistered);
                was_online
            }
            None => false,
        }
    }

    pub fn keepalive(&mut self, id: &str, peer: &Peer, now: DateTime<Utc>) -> KeepaliveOutcome {
        let Some(device) = self.devices.get_mut(id) else {
            return KeepaliveOutcome::NotRegistered;
        };
        let resumable =
            device.offline_reason == Some(OfflineReason::KeepaliveLost) && now < device.expires_at;
        if !device.online && !resumable {
            return KeepaliveOutcome::NotRegistered;
        }
        if let Some(previous) = device.last_keepalive {
            device.keepalive.observe(previous, now);
        }
        device.last_keepalive = Some(now);
        device.peer = peer.clone();
        if device.online {
            return KeepaliveOutcome::Alive;
        }
        device.online = true;
        device.offline_reason = None;
        KeepaliveOutcome::Resumed
    }

    /// Takes devices offline whose registration ran out or whose keepalives stopped.
    pub fn sweep(
        &mut self,
        now: DateTime<Utc>,
        misses: u32,
        default_interval: Duration,
    ) -> Vec<(String, OfflineReason)> {
        let mut gone = Vec::new();
        for (id, device) in self.devices.iter_mut().filter(|(_, d)| d.online) {
            let last_alive = device.last_keepalive.unwrap_or(device.registered_at);
            let reason = if now >= device.expires_at {
                OfflineReason::Expired
            } else if keepalive_lost(
                last_alive,
                device.keepalive.interval(default_interval),
                misses,
                now,
            ) {
                OfflineReason::KeepaliveLost
            } else {
                continue;
            };
            device.online = false;
            device.offline_reason = Some(reason);
            gone.push((id.clone(), reason));
        }
        gone
    }

    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Device> {
        self.devices.get_mut(id)
    }

    /// Where to reach an online device, and the charset it writes.
    pub fn online_peer(&self, id: &str) -> Option<(Peer, Charset)> {
        self.devices
            .get(id)
            .filter(|d| d.online)
            .map(|d| (d.peer.clone(), d.charset.clone()))
    }

    pub fn infos(&self, default_interval: Duration) -> Vec<DeviceInfo> {
        let mut infos: Vec<DeviceInfo> = self
            .devices
            .iter()
            .map(|(id, d)| DeviceInfo {
                id: id.clone(),
                address: d.peer.addr(),
                transport: d.peer.transport(),
                registered_at: d.registered_at,
                expires_at: d.expires_at,
                last_keepalive: d.last_keepalive,
                keepalive_interval: d.keepalive.interval(default_interval),
                online: d.online,
                offline_reason: d.offline_reason,
                charset: d.charset.label().to_owned(),
                channels: d.channels.clone(),
                catalog_at: d.catalog_at,
            })
            .collect();
        infos.sort_by(|a, b| a.id.cmp(&b.id));
        infos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 19, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn peer(port: u16) -> Peer {
        Peer::Udp(SocketAddr::from(([10, 0, 0, 1], port)))
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn keepalives_keep_a_device_online_and_silence_takes_it_offline() {
        let mut r = Registry::new(10);
        assert_eq!(r.register("d", &peer(1), HOUR, t(0)), Ok(true));
        assert_eq!(
            r.register("d", &peer(1), HOUR, t(10)),
            Ok(false),
            "a refresh"
        );
        for s in [60, 120, 180] {
            assert_eq!(r.keepalive("d", &peer(2), t(s)), KeepaliveOutcome::Alive);
        }
        assert_eq!(
            r.get("d").unwrap().peer.addr().port(),
            2,
            "address re-learned"
        );
        assert!(r.sweep(t(360), 3, MINUTE).is_empty());
        assert_eq!(
            r.sweep(t(361), 3, MINUTE),
            [("d".to_owned(), OfflineReason::KeepaliveLost)]
        );
        assert!(r.sweep(t(362), 3, MINUTE).is_empty(), "reported once");
        assert!(r.online_peer("d").is_none());
        assert_eq!(
            r.keepalive("d", &peer(2), t(400)),
            KeepaliveOutcome::Resumed
        );
        assert!(r.online_peer("d").is_some());
    }

    #[test]
    fn expiry_and_unregistration_need_a_new_registration() {
        let mut r = Registry::new(10);
        r.register("d", &peer(1), MINUTE, t(0)).unwrap();
        r.keepalive("d", &peer(1), t(30));
        assert_eq!(
            r.sweep(t(60), 3, MINUTE),
            [("d".to_owned(), OfflineReason::Expired)]
        );
        assert_eq!(
            r.keepalive("d", &peer(1), t(61)),
            KeepaliveOutcome::NotRegistered
        );
        assert_eq!(r.register("d", &peer(1), HOUR, t(62)), Ok(true));
        assert!(r.unregister("d"));
        assert!(!r.unregister("d"));
        assert_eq!(
            r.keepalive("d", &peer(1), t(63)),
            KeepaliveOutcome::NotRegistered
        );
        assert_eq!(
            r.keepalive("x", &peer(1), t(63)),
            KeepaliveOutcome::NotRegistered
        );
        let info = &r.infos(MINUTE)[0];
        assert_eq!(info.offline_reason, Some(OfflineReason::Unregistered));
        assert_eq!(info.charset, "GB2312");
    }

    #[test]
    fn a_full_registry_makes_room_from_offline_devices_only() {
        let mut r = Registry::new(2);
        r.register("a", &peer(1), HOUR, t(0)).unwrap();
        r.register("b", &peer(1), HOUR, t(0)).unwrap();
        assert_eq!(r.register("c", &peer(1), HOUR, t(0)), Err(RegistryFull));
        r.unregister("a");
        assert_eq!(r.register("c", &peer(1), HOUR, t(0)), Ok(true));
        assert!(r.get("a").is_none());
    }
}
