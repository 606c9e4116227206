//! Password hashing on a fixed set of threads sized to the cores: argon2
//! takes ~19 MiB and tens of milliseconds of CPU per computation, so it runs
//! neither on the async workers nor on tokio's blocking pool (which would
//! start a thread, each keeping its own allocator arena with a freed 19 MiB
//! block, for every computation that found no idle one). Async callers hold
//! one of `threads` permits while their work is queued or running, so the
//! queue never holds more than there are threads and memory stays at
//! `threads` × 19 MiB whatever arrives.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

pub struct HashingPool {
    jobs: SyncSender<Job>,
    permits: Semaphore,
}

/// The pool is gone (the server is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing threads have stopped")]
pub struct Stopped;

impl HashingPool {
    /// Starts `threads` hashing threads (at least one); they end when the
    /// pool is dropped.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || work(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        HashingPool {
            jobs,
            permits: Semaphore::new(threads),
        }
    }

    /// Runs `work` on a hashing thread once one is free; its result.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let _permit = self.permits.acquire().await.map_err(|_| Stopped)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        // Never blocks: each queued job holds a permit, and there are as
        // many permits as places in the queue.
        self.jobs.try_send(job).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            // A panic in one computation must not take the thread with it.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn at_most_threads_computations_run_at_once() {
        let pool = Arc::new(HashingPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks = (0..16).map(|i| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
                .await
                .unwrap()
            })
        });
        let results: Vec<usize> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, (0..16).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        // A panicking job is an error for its caller, not for the pool.
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
