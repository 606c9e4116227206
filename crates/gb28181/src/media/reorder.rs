//! Putting RTP packets back in sequence order (UDP reorders and loses).
//!
//! Packets are held in a window that starts at the next sequence number to
//! deliver. A packet at the head goes out at once; a gap at the head is
//! waited for until `max_wait` after the oldest held packet arrived, or
//! until the window (in packets or bytes) is full, and is then declared
//! lost: the count rides on the next delivered packet. Packets behind the
//! head are late (or duplicates) and dropped. A packet far from the window
//! (a sender that restarted its sequence numbers) is dropped too, unless the
//! next one follows it: then the buffer restarts at that sequence, like the
//! probation rule of RFC 3550 appendix A.1. Sequence numbers wrap at 2^16.
//!
//! Time is passed in by the caller, so the rules are tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Forward jumps up to this many packets are gaps; beyond it a packet is a
/// candidate restart (RFC 3550 appendix A.1 uses the same figure).
const MAX_DROPOUT: u16 = 3000;

/// Limits of one buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReorderSettings {
    /// Packets the window spans, from the next to deliver (at most 2048).
    pub window: u16,
    /// Bytes that may be held at once.
    pub max_bytes: usize,
    /// How long a gap is waited for.
    pub max_wait: Duration,
}

impl Default for ReorderSettings {
    /// 512 packets (a key frame of ~700 kB at 1400 bytes a packet), 2 MiB,
    /// 100 ms: reordering on a 4G link stays within tens of milliseconds.
    fn default() -> Self {
        ReorderSettings {
            window: 512,
            max_bytes: 2 << 20,
            max_wait: Duration::from_millis(100),
        }
    }
}

/// What became of a pushed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Held for delivery; `reordered` when it filled a gap behind a packet
    /// that came before it.
    Accepted { reordered: bool },
    /// Behind the window's head (its place was given up or delivered), or
    /// far from the window without a follower yet: dropped.
    Late,
    /// Already held: dropped.
    Duplicate,
}

/// A packet coming out of the buffer in sequence order.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery<T> {
    pub item: T,
    /// Packets declared lost just before this one.
    pub lost_before: u32,
    /// The sequence started over before this packet (sender restart or the
    /// caller's [`ReorderBuffer::reset`]): what came before is unrelated.
    pub restarted: bool,
}

struct Held<T> {
    item: T,
    size: usize,
    arrived: Instant,
}

pub struct ReorderBuffer<T> {
    settings: ReorderSettings,
    /// The sequence number of `slots[0]`; `None` before the first packet.
    head: Option<u16>,
    slots: VecDeque<Option<Held<T>>>,
    held_bytes: usize,
    held_count: usize,
    /// Deliveries decided outside `pop` (a restart flushes what was held).
    flushed: VecDeque<Delivery<T>>,
    lost_pending: u32,
    restart_pending: bool,
    /// The sequence number that would confirm a far packet as a restart.
    probation: Option<u16>,
}

impl<T> ReorderBuffer<T> {
    pub fn new(settings: ReorderSettings) -> Self {
        let settings = ReorderSettings {
            window: settings.window.clamp(1, 2048),
            ..settings
        };
        ReorderBuffer {
            settings,
            head: None,
            slots: VecDeque::new(),
            held_bytes: 0,
            held_count: 0,
            flushed: VecDeque::new(),
            lost_pending: 0,
            restart_pending: false,
            probation: None,
        }
    }

    /// Offers packet `seq` of `size` bytes, arrived at `now`.
    pub fn push(&mut self, seq: u16, size: usize, item: T, now: Instant) -> Admission {
        let Some(head) = self.head else {
            self.head = Some(seq);
            return self.hold(0, size, item, now);
        };
        let ahead = seq.wrapping_sub(head);
        let behind = head.wrapping_sub(seq);
        let far = if ahead < 0x8000 {
            ahead > MAX_DROPOUT
        } else {
            behind > self.settings.window
        };
        if far {
            if self.probation == Some(seq) {
                self.probation = None;
                self.restart_at(seq);
                return self.hold(0, size, item, now);
            }
            self.probation = Some(seq.wrapping_add(1));
            return Admission::Late;
        }
        self.probation = None;
        if ahead >= 0x8000 {
            return Admission::Late;
        }
        self.hold(usize::from(ahead), size, item, now)
    }

    /// The next packet in order, if one may go now.
    pub fn pop(&mut self, now: Instant) -> Option<Delivery<T>> {
        if let Some(flushed) = self.flushed.pop_front() {
            return Some(flushed);
        }
        loop {
            match self.slots.front_mut() {
                None => return None,
                Some(slot @ Some(_)) => {
                    let held = slot.take()?;
                    return Some(self.advance_with(held));
                }
                Some(None) => {
                    let overflowing = self.slots.len() > usize::from(self.settings.window)
                        || self.held_bytes > self.settings.max_bytes;
                    let expired = self.gap_deadline().is_some_and(|d| d <= now);
                    if !(overflowing || expired) {
                        return None;
                    }
                    self.skip_head();
                }
            }
        }
    }

    /// When `pop` will next have something without another push: the time
    /// the gap at the head is given up. `None` when nothing is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.flushed.is_empty() || matches!(self.slots.front(), Some(Some(_))) {
            return None;
        }
        self.gap_deadline()
    }

    /// Forgets the sequence: what is held comes out in order (gaps skipped
    /// without counting them as lost) and the next packet pushed starts a
    /// new sequence, delivered with `restarted`. For a new SSRC.
    pub fn reset(&mut self) {
        self.flush_held();
        self.head = None;
        self.probation = None;
        self.restart_pending = true;
    }

    /// Everything held, in order, ignoring gaps (end of stream).
    pub fn drain(&mut self) -> Vec<Delivery<T>> {
        self.flush_held();
        self.flushed.drain(..).collect()
    }

    fn hold(&mut self, offset: usize, size: usize, item: T, now: Instant) -> Admission {
        let reordered = offset + 1 < self.slots.len();
        if offset < self.slots.len() {
            if self.slots[offset].is_some() {
                return Admission::Duplicate;
            }
        } else {
            self.slots.resize_with(offset + 1, || None);
        }
        self.slots[offset] = Some(Held {
            item,
            size,
            arrived: now,
        });
        self.held_bytes += size;
        self.held_count += 1;
        Admission::Accepted { reordered }
    }

    fn advance_with(&mut self, held: Held<T>) -> Delivery<T> {
        self.slots.pop_front();
        self.held_bytes -= held.size;
        self.held_count -= 1;
        self.head = self.head.map(|h| h.wrapping_add(1));
        Delivery {
            item: held.item,
            lost_before: std::mem::take(&mut self.lost_pending),
            restarted: std::mem::take(&mut self.restart_pending),
        }
    }

    fn skip_head(&mut self) {
        self.slots.pop_front();
        self.head = self.head.map(|h| h.wrapping_add(1));
        self.lost_pending = self.lost_pending.saturating_add(1);
    }

    fn gap_deadline(&self) -> Option<Instant> {
        if self.held_count == 0 {
            return None;
        }
        let oldest = self.slots.iter().flatten().map(|h| h.arrived).min()?;
        Some(oldest + self.settings.max_wait)
    }

    fn restart_at(&mut self, seq: u16) {
        self.flush_held();
        self.head = Some(seq);
        self.restart_pending = true;
    }

    fn flush_held(&mut self) {
        for held in std::mem::take(&mut self.slots).into_iter().flatten() {
            self.held_bytes -= held.size;
            self.held_count -= 1;
            self.flushed.push_back(Delivery {
                item: held.item,
                lost_before: std::mem::take(&mut self.lost_pending),
                restarted: std::mem::take(&mut self.restart_pending),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(window: u16) -> ReorderSettings {
        ReorderSettings {
            window,
            max_bytes: 1 << 20,
            max_wait: Duration::from_millis(100),
        }
    }

    fn pop_all(buf: &mut ReorderBuffer<u16>, now: Instant) -> Vec<(u16, u32, bool)> {
        std::iter::from_fn(|| buf.pop(now))
            .map(|d| (d.item, d.lost_before, d.restarted))
            .collect()
    }

    #[test]
    fn in_order_packets_go_straight_through_across_the_wrap() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(settings(16));
        for seq in [65534u16, 65535, 0, 1] {
            assert_eq!(
                buf.push(seq, 10, seq, t),
                Admission::Accepted { reordered: false }
            );
            assert_eq!(pop_all(&mut buf, t), vec![(seq, 0, false)]);
        }
        assert_eq!(buf.deadline(), None);
    }

    #[test]
    fn a_swap_is_repaired_and_counted() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(settings(16));
        buf.push(10, 1, 10, t);
        assert_eq!(pop_all(&mut buf, t).len(), 1);
        assert_eq!(
            buf.push(12, 1, 12, t),
            Admission::Accepted { reordered: false }
        );
        assert!(pop_all(&mut buf, t).is_empty());
        assert_eq!(buf.deadline(), Some(t + Duration::from_millis(100)));
        assert_eq!(
            buf.push(11, 1, 11, t),
            Admission::Accepted { reordered: true }
        );
        assert_eq!(pop_all(&mut buf, t), vec![(11, 0, false), (12, 0, false)]);
        assert_eq!(buf.push(11, 1, 11, t), Admission::Late);
    }

    #[test]
    fn a_gap_is_lost_after_the_wait() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(settings(16));
        buf.push(1, 1, 1, t);
        pop_all(&mut buf, t);
        buf.push(4, 1, 4, t);
        assert_eq!(buf.push(4, 1, 4, t), Admission::Duplicate);
        assert!(pop_all(&mut buf, t + Duration::from_millis(99)).is_empty());
        assert_eq!(
            pop_all(&mut buf, t + Duration::from_millis(100)),
            vec![(4, 2, false)]
        );
        assert_eq!(buf.push(2, 1, 2, t), Admission::Late);
    }

    #[test]
    fn a_full_window_gives_up_the_gap_at_once() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(settings(4));
        buf.push(0, 1, 0, t);
        pop_all(&mut buf, t);
        for seq in 2..=4 {
            buf.push(seq, 1, seq, t);
            assert!(pop_all(&mut buf, t).is_empty());
        }
        buf.push(5, 1, 5, t);
        assert_eq!(
            pop_all(&mut buf, t),
            vec![(2, 1, false), (3, 0, false), (4, 0, false), (5, 0, false)]
        );
    }

    #[test]
    fn the_byte_cap_also_fills_the_window() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(ReorderSettings {
            window: 100,
            max_bytes: 2500,
            max_wait: Duration::from_secs(10),
        });
        buf.push(0, 1000, 0, t);
        pop_all(&mut buf, t);
        buf.push(2, 1000, 2, t);
        buf.push(3, 1000, 3, t);
        assert!(pop_all(&mut buf, t).is_empty());
        buf.push(4, 1000, 4, t);
        assert_eq!(
            pop_all(&mut buf, t),
            vec![(2, 1, false), (3, 0, false), (4, 0, false)]
        );
    }

    #[test]
    fn a_sender_restart_is_followed_after_two_packets() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(settings(16));
        buf.push(40000, 1, 1, t);
        pop_all(&mut buf, t);
        assert_eq!(buf.push(7, 1, 2, t), Admission::Late);
        assert_eq!(
            buf.push(8, 1, 3, t),
            Admission::Accepted { reordered: false }
        );
        assert_eq!(pop_all(&mut buf, t), vec![(3, 0, true)]);
        assert_eq!(
            buf.push(9, 1, 4, t),
            Admission::Accepted { reordered: false }
        );
        assert_eq!(pop_all(&mut buf, t), vec![(4, 0, false)]);
    }

    #[test]
    fn reset_flushes_in_order_and_marks_the_restart() {
        let t = Instant::now();
        let mut buf = ReorderBuffer::new(settings(16));
        buf.push(1, 1, 1, t);
        pop_all(&mut buf, t);
        buf.push(3, 1, 3, t);
        buf.reset();
        buf.push(500, 1, 500, t);
        assert_eq!(pop_all(&mut buf, t), vec![(3, 0, false), (500, 0, true)]);
    }
}
