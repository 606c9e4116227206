//! Latest-frame-wins hand-off from the decode threads to the inference worker.
//!
//! Each camera has one slot. Putting a frame into a full slot replaces the older
//! frame (the caller counts the drop). A bounded queue of camera indices tells
//! the consumer which slots are full; an index is queued only when its slot goes
//! from empty to full, so the queue never holds more entries than there are
//! cameras and a put never blocks.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::Duration;

pub struct LatestFrameSlots<T> {
    slots: Vec<Mutex<Option<T>>>,
    ready_tx: SyncSender<usize>,
}

/// The consuming end: yields full slots in the order they filled.
pub struct SlotReceiver {
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

impl<T> LatestFrameSlots<T> {
    pub fn new(cameras: usize) -> (Self, SlotReceiver) {
        let (ready_tx, ready_rx) = sync_channel(cameras.max(1));
        let slots = (0..cameras).map(|_| Mutex::new(None)).collect();
        (LatestFrameSlots { slots, ready_tx }, SlotReceiver { ready_rx })
    }

    pub fn put(&self, index: usize, value: T) -> PutOutcome {
        let mut slot = match self.slots[index].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.replace(value).is_some() {
            return PutOutcome::Replaced;
        }
        // Empty -> full: this camera is not in the queue, so there is room.
        match self.ready_tx.try_send(index) {
            Ok(()) => PutOutcome::Stored,
            Err(TrySendError::Disconnected(_)) => PutOutcome::Closed,
            Err(TrySendError::Full(_)) => unreachable!("ready queue holds each camera at most once"),
        }
    }

    /// Takes the frame of a camera whose index came out of the receiver.
    pub fn take(&self, index: usize) -> Option<T> {
        match self.slots[index].lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl SlotReceiver {
    /// The next camera whose slot is full; `None` on timeout or when every
    /// producer is gone.
    pub fn next(&self, timeout: Duration) -> Result<usize, RecvTimeoutError> {
        self.ready_rx.recv_timeout(timeout)
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
        assert_eq!(rx.next(t).unwrap(), 0);
        assert_eq!(slots.take(0), Some("a3"));
        assert_eq!(rx.next(t).unwrap(), 1);
        assert_eq!(slots.take(1), Some("b1"));
        assert!(rx.next(t).is_err());
        // After a take the camera can be queued again.
        assert_eq!(slots.put(0, "a4"), PutOutcome::Stored);
        assert_eq!(rx.next(t).unwrap(), 0);
    }
}
