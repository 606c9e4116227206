//! Process-wide counters for the metrics endpoint that are not a camera's:
//! inference and store write latencies, failed logins, alert deliveries by
//! channel. The stages update them with atomics (a per-frame update is an
//! atomic add, never a lock or an allocation); the API renders them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// A latency histogram with fixed bucket bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// A histogram as read at one moment, in Prometheus' terms.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations at or below it), ascending;
    /// the `+Inf` bucket is `count`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut below = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(self.counts.iter())
            .map(|(b, c)| {
                below += c.load(Ordering::Relaxed);
                (*b, below)
            })
            .collect();
        let count = below + self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Attempts to deliver alerts on one channel, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub delivered: u64,
    /// Failed, to be tried again.
    pub retried: u64,
    /// Failed for good (a permanent error, or the last attempt).
    pub failed: u64,
}

/// How one delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Retried,
    Failed,
}

pub struct Telemetry {
    /// One frame's share of a model run (a run of a batch of n frames
    /// counts n times, each with a nth of its time).
    pub inference_seconds: Histogram,
    /// Model runs (several frames make one run where the model takes a batch).
    pub inference_runs: AtomicU64,
    /// One write of the event writer (event, update, end, crossing), from
    /// the first try to success.
    pub store_write_seconds: Histogram,
    /// Logins refused for a wrong user name or password.
    pub login_failures: AtomicU64,
    /// Keyed by the channel's name from `[[alerts.channels]]` (a bounded
    /// set); updated once per attempt, never per frame.
    deliveries: Mutex<BTreeMap<String, DeliveryCounts>>,
}

const INFERENCE_BOUNDS: &[f64] = &[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];
const STORE_WRITE_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

static TELEMETRY: LazyLock<Telemetry> = LazyLock::new(|| Telemetry {
    inference_seconds: Histogram::new(INFERENCE_BOUNDS),
    inference_runs: AtomicU64::new(0),
    store_write_seconds: Histogram::new(STORE_WRITE_BOUNDS),
    login_failures: AtomicU64::new(0),
    deliveries: Mutex::new(BTreeMap::new()),
});

/// The process's telemetry.
pub fn telemetry() -> &'static Telemetry {
    &TELEMETRY
}

impl Telemetry {
    pub fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn delivery_attempted(&self, channel: &str, outcome: DeliveryOutcome) {
        let mut map = self
            .deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = match map.get_mut(channel) {
            Some(c) => c,
            None => map.entry(channel.to_owned()).or_default(),
        };
        match outcome {
            DeliveryOutcome::Delivered => counts.delivered += 1,
            DeliveryOutcome::Retried => counts.retried += 1,
            DeliveryOutcome::Failed => counts.failed += 1,
        }
    }

    /// Every channel attempted since the start, by name.
    pub fn deliveries(&self) -> BTreeMap<String, DeliveryCounts> {
        self.deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.01, 1), (0.1, 2)]);
        assert_eq!(s.count, 3);
        assert!((s.sum_seconds - 3.055).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn deliveries_are_counted_by_channel_and_outcome() {
        let t = telemetry();
        t.delivery_attempted("unit-hook", DeliveryOutcome::Retried);
        t.delivery_attempted("unit-hook", DeliveryOutcome::Delivered);
        t.delivery_attempted("unit-hook", DeliveryOutcome::Failed);
        let c = t.deliveries()["unit-hook"];
        assert_eq!((c.delivered, c.retried, c.failed), (1, 1, 1));
    }
}
