//! Login guessing limits that never lock an account out, and password
//! hashing that cannot take unbounded memory.
//!
//! - **Per username**: each failure doubles the wait before the next attempt
//!   at that name is checked (`first_delay`, 2×, 4× ... capped at
//!   `max_delay`); the wait is served by the server before the password is
//!   checked, so a correct password after failures works once its turn
//!   comes. Attempts in parallel queue one delay apart; one that would wait
//!   longer than `max_delay` is refused with 429 and `Retry-After`. A success
//!   clears the name's failures; they are forgotten `user_memory` after the
//!   last one.
//! - **Per client address**: at most `per_address` failed or running attempts
//!   in `address_window`. The slot is reserved before the password is
//!   checked, so a burst in parallel gets no more checks than the limit.
//! - **Hashing**: every argon2 computation (login, new passwords) runs on a
//!   fixed set of threads sized to the cores ([`crate::hashing`]); argon2
//!   takes ~19 MiB each, so memory is bounded by threads × 19 MiB whatever
//!   arrives.

use crate::error::ApiError;
use crate::hashing::HashingPool;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The limits; [`Default`] is what the server runs with.
#[derive(Clone, Debug)]
pub struct LoginPolicy {
    /// Wait after a username's first failure; doubles with each further one.
    pub first_delay: Duration,
    /// Longest wait (kept well under the 30 s request timeout).
    pub max_delay: Duration,
    /// A username's failures are forgotten this long after its last one.
    pub user_memory: Duration,
    /// Failed or running attempts allowed per client address in `address_window`.
    pub per_address: usize,
    pub address_window: Duration,
    /// Password hashes computed at once: the hashing threads (each
    /// computation takes ~19 MiB).
    pub hashing_permits: usize,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
            user_memory: Duration::from_secs(15 * 60),
            per_address: 20,
            address_window: Duration::from_secs(5 * 60),
            hashing_permits: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

#[derive(Default)]
struct UserState {
    failures: u32,
    last_failure: Option<Instant>,
    /// The earliest time the next attempt at this name is checked.
    next_slot: Option<Instant>,
}

#[derive(Default)]
struct AddressState {
    failures: VecDeque<Instant>,
    running: usize,
}

#[derive(Default)]
struct Books {
    users: HashMap<String, UserState>,
    addresses: HashMap<String, AddressState>,
}

/// Failed logins per username and per client address, and the hashing permits.
pub struct LoginLimiter {
    policy: LoginPolicy,
    books: Mutex<Books>,
    hashing: HashingPool,
    failures_total: AtomicU64,
    refused_total: AtomicU64,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LoginPolicy::default())
    }
}

/// A reserved attempt: its address slot is given back when it is dropped
/// (also when the client goes away mid-wait); [`Attempt::failed`] records
/// a failure, [`Attempt::succeeded`] clears the username's failures.
pub struct Attempt {
    limiter: Arc<LoginLimiter>,
    user: String,
    address: String,
    /// When the password may be checked.
    pub check_at: Instant,
}

impl LoginLimiter {
    pub fn new(policy: LoginPolicy) -> Self {
        LoginLimiter {
            hashing: HashingPool::new(policy.hashing_permits),
            policy,
            books: Mutex::new(Books::default()),
            failures_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
        }
    }

    /// Failed logins since start (for metrics).
    pub fn failures_total(&self) -> u64 {
        self.failures_total.load(Ordering::Relaxed)
    }

    /// Logins refused with 429 since start (for metrics).
    pub fn refused_total(&self) -> u64 {
        self.refused_total.load(Ordering::Relaxed)
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The wait after `failures` failures: 0, then first_delay doubling, capped.
    fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doubled = self
            .policy
            .first_delay
            .saturating_mul(1u32.checked_shl(failures - 1).unwrap_or(u32::MAX));
        doubled.min(self.policy.max_delay)
    }

    /// Reserves an attempt at `username` from `ip`, or says in how many
    /// seconds to come back (429).
    pub fn reserve(
        self: &Arc<Self>,
        username: &str,
        ip: Option<IpAddr>,
    ) -> Result<Attempt, ApiError> {
        let now = Instant::now();
        let user = username.to_lowercase();
        let address = ip.map(|i| i.to_string()).unwrap_or_default();
        let mut books = self.books();
        self.forget_old(&mut books, now);
        let refused = |wait: Duration| {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::too_many_attempts(
                wait.as_secs_f64().ceil().max(1.0) as i64,
            ))
        };
        let a = books.addresses.entry(address.clone()).or_default();
        if a.failures.len() + a.running >= self.policy.per_address {
            let wait = a
                .failures
                .front()
                .map(|t| (*t + self.policy.address_window).saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1));
            return refused(wait);
        }
        let u = books.users.entry(user.clone()).or_default();
        let check_at = u.next_slot.map_or(now, |t| t.max(now));
        if check_at - now > self.policy.max_delay {
            return refused(check_at - now);
        }
        let delay = self.delay(u.failures);
        if !delay.is_zero() {
            u.next_slot = Some(check_at + delay);
        }
        if let Some(a) = books.addresses.get_mut(&address) {
            a.running += 1;
        }
        Ok(Attempt {
            limiter: self.clone(),
            user,
            address,
            check_at,
        })
    }

    fn forget_old(&self, books: &mut Books, now: Instant) {
        let window = self.policy.address_window;
        books.addresses.retain(|_, a| {
            while a
                .failures
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                a.failures.pop_front();
            }
            !a.failures.is_empty() || a.running > 0
        });
        let memory = self.policy.user_memory;
        books.users.retain(|_, u| {
            let recent = u
                .last_failure
                .is_some_and(|t| now.saturating_duration_since(t) < memory);
            let pending = u.next_slot.is_some_and(|t| t > now);
            recent || pending
        });
    }

    /// Computes `work` (an argon2 hash or verification) on a hashing thread
    /// once one is free.
    pub async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.hashing.run(work).await.map_err(ApiError::internal)
    }
}

impl Attempt {
    /// Waits for this attempt's turn.
    pub async fn wait_turn(&self) {
        tokio::time::sleep_until(self.check_at).await;
    }

    pub fn failed(self) {
        let now = Instant::now();
        let l = &self.limiter;
        l.failures_total.fetch_add(1, Ordering::Relaxed);
        let mut books = l.books();
        if let Some(a) = books.addresses.get_mut(&self.address) {
            a.failures.push_back(now);
        }
        let failures = {
            let u = books.users.entry(self.user.clone()).or_default();
            u.failures = u.failures.saturating_add(1);
            u.last_failure = Some(now);
            u.failures
        };
        let delay = l.delay(failures);
        if let Some(u) = books.users.get_mut(&self.user) {
            u.next_slot = Some(u.next_slot.map_or(now + delay, |t| t.max(now + delay)));
        }
    }

    pub fn succeeded(self) {
        self.limiter.books().users.remove(&self.user);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut books = self.limiter.books();
        if let Some(a) = books.addresses.get_mut(&self.address) {
            a.running = a.running.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_address: usize) -> Arc<LoginLimiter> {
        Arc::new(LoginLimiter::new(LoginPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            per_address,
            ..LoginPolicy::default()
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn failures_double_the_wait_up_to_the_cap_and_success_clears_it() {
        let l = limiter(100);
        let mut waits = Vec::new();
        for _ in 0..6 {
            let a = l.reserve("Duty", None).unwrap();
            waits.push((a.check_at - Instant::now()).as_secs());
            a.wait_turn().await;
            a.failed();
        }
        assert_eq!(waits, [0, 1, 2, 4, 8, 8]);
        // Another name is not slowed.
        let other = l.reserve("other", None).unwrap();
        assert_eq!(other.check_at, Instant::now());
        // The owner's turn comes; a success clears the name.
        let a = l.reserve("duty", None).unwrap();
        a.wait_turn().await;
        a.succeeded();
        assert_eq!(l.reserve("duty", None).unwrap().check_at, Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn parallel_attempts_queue_a_delay_apart_and_the_queue_is_bounded() {
        let l = limiter(100);
        for _ in 0..3 {
            l.reserve("duty", None).unwrap().failed();
        }
        // Now 4 s between checks; a wait beyond 8 s is refused.
        let first = l.reserve("duty", None).unwrap();
        let second = l.reserve("duty", None).unwrap();
        assert_eq!(first.check_at - Instant::now(), Duration::from_secs(4));
        assert_eq!(second.check_at - first.check_at, Duration::from_secs(4));
        assert!(l.reserve("duty", None).is_err());
        assert_eq!(l.refused_total(), 1);
        // Forgotten after user_memory.
        drop((first, second));
        tokio::time::advance(Duration::from_secs(16 * 60)).await;
        assert_eq!(l.reserve("duty", None).unwrap().check_at, Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_gets_its_limit_of_running_or_failed_attempts() {
        let l = limiter(3);
        let ip = Some("192.0.2.1".parse().unwrap());
        let a = l.reserve("a", ip).unwrap();
        let b = l.reserve("b", ip).unwrap();
        let c = l.reserve("c", ip).unwrap();
        assert!(l.reserve("d", ip).is_err(), "3 running");
        assert!(l.reserve("d", Some("192.0.2.2".parse().unwrap())).is_ok());
        a.succeeded();
        let d = l.reserve("d", ip).unwrap();
        b.failed();
        drop(c);
        d.failed();
        let _e = l.reserve("e", ip).unwrap();
        assert!(l.reserve("f", ip).is_err(), "2 failed, 1 running");
        assert_eq!(l.failures_total(), 2);
        tokio::time::advance(Duration::from_secs(5 * 60)).await;
        assert!(l.reserve("f", ip).is_ok());
    }
}
