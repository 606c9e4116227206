//! The one retry policy: exponential delays with a cap and jitter, used by
//! ingest reconnects, alert deliveries and store-write retries. Jitter keeps
//! a township's cameras behind one failed switch, or the deliveries to one
//! receiver that was down, from retrying in step. Why not a crate:
//! design/retry.md.

use rand::Rng;
use std::time::Duration;

/// Delays grow from `initial` by `multiplier` per attempt up to `max`; each is
/// then drawn from `[d * (1 - jitter), d]` where `d` is that capped delay
/// (`jitter = 1` is "full jitter", `0` none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// Share of the delay that is random, in `[0, 1]`.
    pub jitter: f64,
}

/// 1 s doubling to 60 s, half of it random.
impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// Doubling from `initial` to `max` with the default jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        RetryPolicy {
            initial,
            max,
            ..RetryPolicy::default()
        }
    }

    pub fn with_jitter(self, jitter: f64) -> Self {
        RetryPolicy { jitter, ..self }
    }

    /// The capped delay before retry number `attempt` (0 = the first retry),
    /// before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let max = self.max.max(self.initial).as_secs_f64();
        let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
        let d = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exp);
        // NaN or infinite (a huge attempt number) is the cap too.
        Duration::from_secs_f64(if d.is_finite() { d.min(max) } else { max })
    }

    /// The delay before retry number `attempt` (0 = the first retry).
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        ceiling.mul_f64(1.0 - jitter * rng.gen::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_are_capped_and_jittered_within_bounds() {
        let p = RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut rng = StdRng::seed_from_u64(7);
        let ceilings = [1u64, 2, 4, 8, 16, 32, 60, 60, 60];
        for (attempt, ceiling) in ceilings.into_iter().enumerate() {
            let ceiling = Duration::from_secs(ceiling);
            assert_eq!(p.ceiling(attempt as u32), ceiling);
            for _ in 0..50 {
                let d = p.delay(attempt as u32, &mut rng);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} not in [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_spreads_delays_and_its_share_is_kept() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = RetryPolicy::new(Duration::from_secs(8), Duration::from_secs(8));
        let delays: Vec<_> = (0..20).map(|_| p.delay(0, &mut rng)).collect();
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10);

        let quarter = p.with_jitter(0.25);
        let lowest = (0..200)
            .map(|_| quarter.delay(0, &mut rng))
            .min()
            .unwrap_or_default();
        assert!(
            lowest >= Duration::from_secs(6) && lowest < Duration::from_millis(6200),
            "{lowest:?}"
        );
        let none = p.with_jitter(0.0);
        assert_eq!(none.delay(3, &mut rng), Duration::from_secs(8));
    }

    #[test]
    fn the_multiplier_sets_the_growth() {
        let p = RetryPolicy {
            multiplier: 3.0,
            jitter: 0.0,
            ..RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(10))
        };
        let got: Vec<u128> = (0..6).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(got, [100, 300, 900, 2700, 8100, 10_000]);
    }
}
