//! Keepalives: the device's MESSAGE `<Notify><CmdType>Keepalive</CmdType>`
//! is answered 200 and re-learns the device's address; a device is offline
//! after `keepalive_misses` intervals without one. GB/T 28181 does not carry
//! the interval in the keepalive, so we learn it: the median of the last
//! gaps between keepalives (one lost keepalive or one quick retry does not
//! move a median), the configured interval until two have come.

use super::device::{DeviceEvent, KeepaliveOutcome, OfflineReason};
use super::server::Shared;
use super::transport::Peer;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::time::Duration;
use tracing::info;

/// Gaps remembered for the median.
const GAPS: usize = 5;
/// Learned intervals are at least this (a burst must not make the watch twitchy).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Default)]
pub struct IntervalEstimate {
    gaps: VecDeque<Duration>,
}

impl IntervalEstimate {
    pub fn observe(&mut self, previous: DateTime<Utc>, now: DateTime<Utc>) {
        let Ok(gap) = (now - previous).to_std() else {
            return; // the clock went back
        };
        if self.gaps.len() == GAPS {
            self.gaps.pop_front();
        }
        self.gaps.push_back(gap);
    }

    /// The device's interval: the median gap, or `default` before any gap.
    pub fn interval(&self, default: Duration) -> Duration {
        let mut sorted: Vec<Duration> = self.gaps.iter().copied().collect();
        sorted.sort();
        match sorted.get(sorted.len() / 2) {
            Some(median) => (*median).max(MIN_INTERVAL),
            None => default,
        }
    }
}

/// Whether a device has missed `misses` keepalives by `now`.
pub fn keepalive_lost(
    last_alive: DateTime<Utc>,
    interval: Duration,
    misses: u32,
    now: DateTime<Utc>,
) -> bool {
    let allowed = interval.saturating_mul(misses);
    (now - last_alive)
        .to_std()
        .is_ok_and(|silence| silence > allowed)
}

impl Shared {
    /// A keepalive from `device_id`; returns the status code to answer.
    pub(super) fn on_keepalive(&self, device_id: &str, peer: &Peer) -> u16 {
        let now = self.clock.now();
        match self.registry().keepalive(device_id, peer, now) {
            KeepaliveOutcome::NotRegistered => {
                super::counters::SipCounters::add(&self.counters.not_registered);
                404
            }
            KeepaliveOutcome::Alive => {
                super::counters::SipCounters::add(&self.counters.keepalives);
                200
            }
            KeepaliveOutcome::Resumed => {
                super::counters::SipCounters::add(&self.counters.keepalives);
                info!(device = device_id, address = %peer.addr(), "keepalives resumed: device online");
                self.publish(DeviceEvent::KeepaliveResumed {
                    device_id: device_id.to_owned(),
                });
                200
            }
        }
    }

    /// Marks devices whose registration ran out or whose keepalives stopped offline.
    pub(super) fn sweep(&self) {
        let now = self.clock.now();
        let gone = self.registry().sweep(
            now,
            self.settings.keepalive_misses,
            self.settings.keepalive_interval,
        );
        for (device_id, reason) in gone {
            let counter = match reason {
                OfflineReason::Expired => &self.counters.expired,
                _ => &self.counters.keepalive_lost,
            };
            super::counters::SipCounters::add(counter);
            info!(device = %device_id, reason = reason.as_str(), "device offline");
            self.close_dialogs_of(&device_id);
            self.publish(DeviceEvent::Offline { device_id, reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 19, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    #[test]
    fn the_interval_is_the_median_gap() {
        let mut e = IntervalEstimate::default();
        let default = Duration::from_secs(60);
        assert_eq!(e.interval(default), default);
        e.observe(t(0), t(30_000));
        assert_eq!(e.interval(default), Duration::from_secs(30));
        // A lost keepalive (a 60 s gap) and a quick one do not move it.
        e.observe(t(30_000), t(90_000));
        e.observe(t(90_000), t(90_500));
        assert_eq!(e.interval(default), Duration::from_secs(30));
        e.observe(t(90_500), t(80_000)); // clock went back: ignored
        assert_eq!(e.interval(default), Duration::from_secs(30));
        let mut quick = IntervalEstimate::default();
        quick.observe(t(0), t(10));
        assert_eq!(quick.interval(default), MIN_INTERVAL);
    }

    #[test]
    fn lost_after_the_allowed_misses() {
        let i = Duration::from_secs(60);
        assert!(!keepalive_lost(t(0), i, 3, t(180_000)));
        assert!(keepalive_lost(t(0), i, 3, t(180_001)));
        assert!(!keepalive_lost(t(10_000), i, 3, t(0)));
    }
}
