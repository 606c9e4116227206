//! What the SIP server counts (atomics, shared through `Arc`, read by the
//! metrics exporter) and a gate that keeps bad-input log lines to one per
//! kind per interval, however hard a peer floods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Counters of the SIP server, each a total since start.
        #[derive(Debug, Default)]
        pub struct SipCounters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        impl SipCounters {
            /// Every counter by name with its doc line, for the metrics
            /// exporter (`xueliang_gb28181_sip_<name>_total`).
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((
                    stringify!($name),
                    concat!($($doc),*).trim_ascii(),
                    self.$name.load(Ordering::Relaxed),
                ),)*]
            }
        }
    };
}

counters! {
    /// Requests received (retransmissions included).
    requests,
    /// Responses received.
    responses,
    /// Messages dropped because the dispatcher's queue was full.
    dropped,
    /// Messages that did not parse as SIP.
    malformed,
    /// Messages over the size limit.
    oversized,
    /// Datagrams shorter than their Content-Length.
    truncated,
    /// Requests without the headers a transaction needs (Via, From, To, Call-ID, CSeq).
    missing_headers,
    /// MESSAGE bodies that are not well-formed MANSCDP.
    bad_xml,
    /// Requests with a method we do not implement (answered 501) or allow (405).
    unknown_method,
    /// Requests from device ids not in the known list (accept = known), answered 403.
    unknown_device,
    /// MESSAGEs from devices that are not registered, answered 404.
    not_registered,
    /// 401 challenges sent.
    auth_challenges,
    /// REGISTERs with a wrong password.
    auth_failures,
    /// Requests refused because their device id or address is blocked after failures.
    auth_blocked,
    /// Successful registrations (refreshes included).
    registrations,
    /// Unregistrations (Expires: 0).
    unregistrations,
    /// Devices gone offline because their registration expired.
    expired,
    /// Devices gone offline after missed keepalives.
    keepalive_lost,
    /// Keepalives received.
    keepalives,
    /// Catalog items received.
    catalog_items,
    /// Catalog answers given up before SumNum items came.
    catalog_incomplete,
    /// Registrations refused because the device table is full.
    devices_full,
    /// Retransmitted requests answered from the transaction cache.
    retransmissions_received,
    /// Requests we retransmitted (UDP, Timer A/E).
    retransmissions_sent,
    /// Our requests that got no final answer in time.
    transaction_timeouts,
    /// Responses that matched no transaction of ours.
    unmatched_responses,
    /// INVITEs sent.
    invites,
    /// INVITEs answered with a non-2xx code.
    invites_refused,
    /// BYEs sent.
    byes_sent,
    /// BYEs received from devices.
    byes_received,
    /// Messages we could not send (socket errors, closed or full TCP connections).
    send_errors,
    /// TCP connections accepted.
    tcp_connections,
    /// TCP connections closed at once because too many were open.
    tcp_refused,
}

impl SipCounters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Lets one log line per kind through per interval, and says how many it held back.
#[derive(Debug)]
pub struct LogGate {
    interval: Duration,
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl LogGate {
    pub fn new(interval: Duration) -> LogGate {
        LogGate {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(suppressed since the last line)` when a line of this kind may be logged now.
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match last.get_mut(kind) {
            Some((at, held)) if now.duration_since(*at) < self.interval => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let suppressed = *held;
                *at = now;
                *held = 0;
                Some(suppressed)
            }
            None => {
                last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_every_counter() {
        let c = SipCounters::default();
        SipCounters::add(&c.malformed);
        SipCounters::add(&c.malformed);
        let snap = c.snapshot();
        assert!(snap.contains(&("malformed", "Messages that did not parse as SIP.", 2)));
        assert!(snap
            .iter()
            .any(|(n, _, v)| *n == "tcp_connections" && *v == 0));
        assert!(snap
            .iter()
            .all(|(_, help, _)| !help.is_empty() && !help.starts_with(' ')));
        assert_eq!(snap.len(), 33);
    }

    #[test]
    fn gate_lets_one_line_through_per_interval() {
        let gate = LogGate::new(Duration::from_millis(50));
        assert_eq!(gate.allow("malformed"), Some(0));
        assert_eq!(gate.allow("malformed"), None);
        assert_eq!(gate.allow("malformed"), None);
        assert_eq!(gate.allow("bad_xml"), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(gate.allow("malformed"), Some(2));
    }
}
