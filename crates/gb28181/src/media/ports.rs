//! The RTP port range handed out to media sessions. Ports are even (RTP
//! convention, RFC 3550 section 11; the odd neighbour is left for RTCP) and
//! go back to the end of the line when a lease is dropped, so a port just
//! released (that a device may still be sending to) is reused last.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};

/// A pool of even ports from an inclusive range, shared by clones.
#[derive(Clone, Debug)]
pub struct PortPool {
    free: Arc<Mutex<VecDeque<u16>>>,
    size: usize,
}

/// One port taken from a [`PortPool`]; returned when dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    free: Arc<Mutex<VecDeque<u16>>>,
}

impl PortPool {
    /// All even ports of `range` (port 0 excepted); `None` if there is none.
    pub fn new(range: RangeInclusive<u16>) -> Option<PortPool> {
        let free: VecDeque<u16> = range.filter(|p| p % 2 == 0 && *p != 0).collect();
        if free.is_empty() {
            return None;
        }
        Some(PortPool {
            size: free.len(),
            free: Arc::new(Mutex::new(free)),
        })
    }

    /// How many ports the pool has in all.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many are not leased now.
    pub fn available(&self) -> usize {
        lock(&self.free).len()
    }

    /// The free port that has been free longest.
    pub fn lease(&self) -> Option<PortLease> {
        let port = lock(&self.free).pop_front()?;
        Some(PortLease {
            port,
            free: self.free.clone(),
        })
    }
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        lock(&self.free).push_back(self.port);
    }
}

/// The queue stays consistent whatever a panicking holder did (push and
/// pop are single steps), so a poisoned lock is used as it is.
fn lock(free: &Mutex<VecDeque<u16>>) -> MutexGuard<'_, VecDeque<u16>> {
    free.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_only_and_released_ports_go_last() {
        assert!(PortPool::new(31..=31).is_none());
        assert!(PortPool::new(0..=1).is_none());
        let pool = PortPool::new(30001..=30006).unwrap();
        assert_eq!(pool.size(), 3);
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_eq!((a.port(), b.port()), (30002, 30004));
        drop(a);
        let c = pool.lease().unwrap();
        assert_eq!(c.port(), 30006);
        let d = pool.lease().unwrap();
        assert_eq!(d.port(), 30002);
        assert!(pool.lease().is_none());
        assert_eq!(pool.available(), 0);
        drop((b, c, d));
        assert_eq!(pool.available(), 3);
    }
}
