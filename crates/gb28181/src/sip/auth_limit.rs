//! Wrong-password throttling: after N failures a device id, and separately a
//! source address, gets 403 without a check for a cooling period. Time comes
//! from the caller (the server's clock), so the policy is tested without
//! waiting. The table is bounded: expired entries go first, then the oldest.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;

/// At most this many device ids and addresses are tracked.
const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Device(String),
    Addr(IpAddr),
}

#[derive(Clone, Debug)]
struct Entry {
    failures: u32,
    last_failure: DateTime<Utc>,
    blocked_until: Option<DateTime<Utc>>,
}

/// What a failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Counted,
    /// This failure started a block (log it: once per block).
    NowBlocked,
}

pub struct AuthLimiter {
    max_failures: u32,
    block: Duration,
    entries: HashMap<Key, Entry>,
}

impl AuthLimiter {
    pub fn new(max_failures: u32, block: std::time::Duration) -> AuthLimiter {
        AuthLimiter {
            max_failures: max_failures.max(1),
            block: Duration::from_std(block).unwrap_or(Duration::MAX),
            entries: HashMap::new(),
        }
    }

    /// Whether either key is blocked now.
    pub fn blocked(&self, keys: &[Key], now: DateTime<Utc>) -> bool {
        keys.iter().any(|k| {
            self.entries
                .get(k)
                .and_then(|e| e.blocked_until)
                .is_some_and(|until| now < until)
        })
    }

    /// Records a wrong password for each key; says whether one got blocked by it.
    pub fn fail(&mut self, keys: &[Key], now: DateTime<Utc>) -> Failure {
        let mut outcome = Failure::Counted;
        for key in keys {
            self.make_room(now);
            let entry = self.entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: None,
            });
            // Failures older than a block period are forgotten.
            if entry.blocked_until.is_some_and(|until| now >= until)
                || now - entry.last_failure >= self.block
            {
                entry.failures = 0;
                entry.blocked_until = None;
            }
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures >= self.max_failures && entry.blocked_until.is_none() {
                entry.blocked_until = Some(now + self.block);
                outcome = Failure::NowBlocked;
            }
        }
        outcome
    }

    /// A correct password clears the device's record (not the address's:
    /// one device behind a NAT must not clear a guesser beside it).
    pub fn succeed(&mut self, device_id: &str) {
        self.entries.remove(&Key::Device(device_id.to_owned()));
    }

    fn make_room(&mut self, now: DateTime<Utc>) {
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        let block = self.block;
        self.entries.retain(|_, e| match e.blocked_until {
            Some(until) => now < until,
            None => now - e.last_failure < block,
        });
        if self.entries.len() >= MAX_ENTRIES {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 19, 0, 0).unwrap() + Duration::seconds(secs)
    }

    fn keys(dev: &str, ip: &str) -> Vec<Key> {
        vec![Key::Device(dev.into()), Key::Addr(ip.parse().unwrap())]
    }

    #[test]
    fn five_failures_block_for_the_period_then_forgive() {
        let mut l = AuthLimiter::new(5, std::time::Duration::from_secs(60));
        let k = keys("dev", "10.0.0.1");
        for i in 0..4 {
            assert_eq!(l.fail(&k, t(i)), Failure::Counted);
            assert!(!l.blocked(&k, t(i)));
        }
        assert_eq!(l.fail(&k, t(4)), Failure::NowBlocked);
        assert!(l.blocked(&k, t(5)));
        assert_eq!(l.fail(&k, t(6)), Failure::Counted, "logged once per block");
        assert!(l.blocked(&k, t(63)));
        assert!(!l.blocked(&k, t(64)));
        assert_eq!(l.fail(&k, t(65)), Failure::Counted, "counting starts over");
    }

    #[test]
    fn the_address_is_blocked_for_other_device_ids_too() {
        let mut l = AuthLimiter::new(3, std::time::Duration::from_secs(60));
        for (i, dev) in ["a", "b", "c"].iter().enumerate() {
            l.fail(&keys(dev, "10.0.0.9"), t(i as i64));
        }
        assert!(l.blocked(&keys("d", "10.0.0.9"), t(3)));
        assert!(!l.blocked(&keys("d", "10.0.0.8"), t(3)));
        l.succeed("a");
        assert!(l.blocked(&keys("d", "10.0.0.9"), t(3)));
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded() {
        let mut l = AuthLimiter::new(5, std::time::Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES as u32 + 500) {
            let ip = IpAddr::from(i.to_be_bytes());
            l.fail(&[Key::Addr(ip)], t(0));
        }
        assert!(l.len() <= MAX_ENTRIES);
    }
}
