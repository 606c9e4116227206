//! Latest-frame-wins hand-off from the decode threads to the inference worker.
//!
//! Each camera has one slot. Putting a frame into a full slot replaces the older
//! frame (the caller counts the drop). A bounded queue of camera indices tells
//! the consumer which slots are full; an index is queued only when its slot goes
//! from empty to full, so the queue never holds more entries than there are
//! cameras and a put never blocks.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Slots<T> = Arc<Vec<Mutex<Option<T>>>>;

/// The producing end (decode threads); clone it for each producer. When every
/// clone is gone the receiver sees `Disconnected`.
pub struct LatestFrameSlots<T> {
    slots: Slots<T>,
    /// One ready queue per consumer; camera `i` belongs to consumer `i % n`,
    /// so each camera's frames are handled by one consumer, in order.
    ready_tx: Vec<SyncSender<usize>>,
}

impl<T> Clone for LatestFrameSlots<T> {
    fn clone(&self) -> Self {
        LatestFrameSlots {
            slots: self.slots.clone(),
            ready_tx: self.ready_tx.clone(),
        }
    }
}

/// The consuming end (the inference worker): yields full slots in the order
/// they filled.
pub struct SlotReceiver<T> {
    slots: Slots<T>,
    ready_rx: Receiver<usize>,
}

/// What [`LatestFrameSlots::put`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The slot was empty.
    Stored,
    /// The slot held an older frame, which was dropped.
    Replaced,
    /// The consumer is gone.
    Closed,
}

fn lock<T>(m: &Mutex<Option<T>>) -> std::sync::MutexGuard<'_, Option<T>> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl<T> LatestFrameSlots<T> {
    pub fn new(cameras: usize) -> (Self, SlotReceiver<T>) {
        let (slots, mut receivers) = Self::sharded(cameras, 1);
        (slots, receivers.remove(0))
    }

    /// Slots for `cameras` cameras served by `consumers` consumers (at least one).
    pub fn sharded(cameras: usize, consumers: usize) -> (Self, Vec<SlotReceiver<T>>) {
        let slots: Slots<T> = Arc::new((0..cameras).map(|_| Mutex::new(None)).collect());
        let (ready_tx, receivers) = (0..consumers.max(1))
            .map(|_| {
                let (tx, ready_rx) = sync_channel(cameras.max(1));
                (
                    tx,
                    SlotReceiver {
                        slots: slots.clone(),
                        ready_rx,
                    },
                )
            })
            .unzip();
        (LatestFrameSlots { slots, ready_tx }, receivers)
    }

    pub fn put(&self, index: usize, value: T) -> PutOutcome {
        let mut slot = lock(&self.slots[index]);
        if slot.replace(value).is_some() {
            return PutOutcome::Replaced;
        }
        // Empty -> full: this camera is not in the queue, so there is room.
        match self.ready_tx[index % self.ready_tx.len()].try_send(index) {
            Ok(()) => PutOutcome::Stored,
            Err(TrySendError::Disconnected(_)) => PutOutcome::Closed,
            Err(TrySendError::Full(_)) => {
                unreachable!("ready queue holds each camera at most once")
            }
        }
    }
}

impl<T> SlotReceiver<T> {
    /// The next full slot's camera index and frame. Errors on timeout, or
    /// with `Disconnected` once every producer is gone.
    pub fn next(&self, timeout: Duration) -> Result<(usize, T), RecvTimeoutError> {
        loop {
            let index = self.ready_rx.recv_timeout(timeout)?;
            if let Some(v) = lock(&self.slots[index]).take() {
                return Ok((index, v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_frame_wins_and_each_camera_is_queued_once() {
        let (slots, rx) = LatestFrameSlots::new(2);
        assert_eq!(slots.put(0, "a1"), PutOutcome::Stored);
        assert_eq!(slots.put(0, "a2"), PutOutcome::Replaced);
        assert_eq!(slots.put(1, "b1"), PutOutcome::Stored);
        assert_eq!(slots.put(0, "a3"), PutOutcome::Replaced);
        let t = Duration::from_millis(10);
        assert_eq!(rx.next(t).unwrap(), (0, "a3"));
        assert_eq!(rx.next(t).unwrap(), (1, "b1"));
        assert_eq!(rx.next(t), Err(RecvTimeoutError::Timeout));
        // After a take the camera can be queued again.
        assert_eq!(slots.put(0, "a4"), PutOutcome::Stored);
        assert_eq!(rx.next(t).unwrap(), (0, "a4"));
        // Dropping every producer disconnects the consumer.
        drop(slots);
        assert_eq!(rx.next(t), Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn sharded_slots_give_each_camera_to_one_consumer() {
        let (slots, rx) = LatestFrameSlots::sharded(4, 2);
        for cam in 0..4 {
            slots.put(cam, cam * 10);
        }
        let t = Duration::from_millis(10);
        assert_eq!(rx[0].next(t).unwrap(), (0, 0));
        assert_eq!(rx[0].next(t).unwrap(), (2, 20));
        assert_eq!(rx[1].next(t).unwrap(), (1, 10));
        assert_eq!(rx[1].next(t).unwrap(), (3, 30));
        assert!(rx[0].next(t).is_err() && rx[1].next(t).is_err());
    }
}
