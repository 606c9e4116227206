//! Latest-frame-wins hand-off from the decode threads to the inference workers.
//!
//! Each camera has its own slot ([`FrameSlot`], made when the camera starts;
//! there is no table of all cameras, so cameras come and go while frames
//! flow). Putting a frame into a full slot replaces the older frame (the caller
//! counts the drop). A bounded queue of slots tells the consumer which are
//! full; a slot is queued only when it goes from empty to full, so the queue
//! holds each slot at most once and a put never blocks. The slot also carries
//! what the consumer needs to know about its camera (`C`).

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Slot<T, C> {
    index: usize,
    camera: C,
    value: Mutex<Option<T>>,
}

type Ready<T, C> = SyncSender<Arc<Slot<T, C>>>;

/// Makes the cameras' slots; clone it for each producer. When every clone and
/// every slot is gone, the receivers see `Disconnected`.
pub struct LatestFrameSlots<T, C = ()> {
    /// One ready queue per consumer; camera `i` belongs to consumer `i % n`,
    /// so each camera's frames are handled by one consumer, in order.
    ready_tx: Vec<Ready<T, C>>,
}

impl<T, C> Clone for LatestFrameSlots<T, C> {
    fn clone(&self) -> Self {
        LatestFrameSlots {
            ready_tx: self.ready_tx.clone(),
        }
    }
}

/// One camera's slot: the producing end (its decode thread).
pub struct FrameSlot<T, C = ()> {
    slot: Arc<Slot<T, C>>,
    ready: Ready<T, C>,
}

/// The consuming end (an inference worker): yields full slots in the order
/// they filled.
pub struct SlotReceiver<T, C = ()> {
    ready_rx: Receiver<Arc<Slot<T, C>>>,
}

/// What [`FrameSlot::put`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The slot was empty.
    Stored,
    /// The slot held an older frame, which was dropped (or, with more full
    /// slots than the ready queue holds, this frame was dropped).
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

impl<T, C> LatestFrameSlots<T, C> {
    /// Slots served by `consumers` consumers (at least one), each queueing up
    /// to `cameras` full slots (more running cameras than that lose frames
    /// when all are full at once, counted as replaced).
    pub fn sharded(cameras: usize, consumers: usize) -> (Self, Vec<SlotReceiver<T, C>>) {
        let (ready_tx, receivers) = (0..consumers.max(1))
            .map(|_| {
                let (tx, ready_rx) = sync_channel(cameras.max(1));
                (tx, SlotReceiver { ready_rx })
            })
            .unzip();
        (LatestFrameSlots { ready_tx }, receivers)
    }

    pub fn new(cameras: usize) -> (Self, SlotReceiver<T, C>) {
        let (slots, mut receivers) = Self::sharded(cameras, 1);
        (slots, receivers.remove(0))
    }

    /// The slot of the camera with this (never reused) index.
    pub fn slot(&self, index: usize, camera: C) -> FrameSlot<T, C> {
        FrameSlot {
            slot: Arc::new(Slot {
                index,
                camera,
                value: Mutex::new(None),
            }),
            ready: self.ready_tx[index % self.ready_tx.len()].clone(),
        }
    }
}

impl<T, C> FrameSlot<T, C> {
    pub fn put(&self, value: T) -> PutOutcome {
        let mut slot = lock(&self.slot.value);
        if slot.replace(value).is_some() {
            return PutOutcome::Replaced;
        }
        // Empty -> full: this slot is not in the queue.
        match self.ready.try_send(self.slot.clone()) {
            Ok(()) => PutOutcome::Stored,
            Err(TrySendError::Disconnected(_)) => PutOutcome::Closed,
            Err(TrySendError::Full(_)) => {
                // Empty again, so the next put queues it.
                slot.take();
                PutOutcome::Replaced
            }
        }
    }
}

impl<T, C: Clone> SlotReceiver<T, C> {
    /// The next full slot's camera index, camera and frame. Errors on
    /// timeout, or with `Disconnected` once every producer is gone.
    pub fn next(&self, timeout: Duration) -> Result<(usize, C, T), RecvTimeoutError> {
        loop {
            let slot = self.ready_rx.recv_timeout(timeout)?;
            let value = lock(&slot.value).take();
            if let Some(v) = value {
                return Ok((slot.index, slot.camera.clone(), v));
            }
        }
    }

    /// A full slot's camera index, camera and frame if one is waiting now.
    pub fn try_next(&self) -> Option<(usize, C, T)> {
        while let Ok(slot) = self.ready_rx.try_recv() {
            let value = lock(&slot.value).take();
            if let Some(v) = value {
                return Some((slot.index, slot.camera.clone(), v));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_frame_wins_and_each_camera_is_queued_once() {
        let (slots, rx) = LatestFrameSlots::new(2);
        let (a, b) = (slots.slot(0, 'a'), slots.slot(1, 'b'));
        assert_eq!(a.put("a1"), PutOutcome::Stored);
        assert_eq!(a.put("a2"), PutOutcome::Replaced);
        assert_eq!(b.put("b1"), PutOutcome::Stored);
        assert_eq!(a.put("a3"), PutOutcome::Replaced);
        let t = Duration::from_millis(10);
        assert_eq!(rx.next(t).unwrap(), (0, 'a', "a3"));
        assert_eq!(rx.next(t).unwrap(), (1, 'b', "b1"));
        assert_eq!(rx.next(t), Err(RecvTimeoutError::Timeout));
        // After a take the camera can be queued again.
        assert_eq!(a.put("a4"), PutOutcome::Stored);
        assert_eq!(rx.next(t).unwrap(), (0, 'a', "a4"));
        // What is waiting now, without waiting.
        assert_eq!(rx.try_next(), None);
        assert_eq!(b.put("b2"), PutOutcome::Stored);
        assert_eq!(rx.try_next(), Some((1, 'b', "b2")));
        assert_eq!(rx.try_next(), None);
        // Dropping every producer disconnects the consumer.
        drop((slots, a, b));
        assert_eq!(rx.next(t), Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn sharded_slots_give_each_camera_to_one_consumer() {
        let (slots, rx) = LatestFrameSlots::sharded(4, 2);
        let cams: Vec<_> = (0..4).map(|i| slots.slot(i, ())).collect();
        for (i, cam) in cams.iter().enumerate() {
            cam.put(i * 10);
        }
        let t = Duration::from_millis(10);
        assert_eq!(rx[0].next(t).unwrap(), (0, (), 0));
        assert_eq!(rx[0].next(t).unwrap(), (2, (), 20));
        assert_eq!(rx[1].next(t).unwrap(), (1, (), 10));
        assert_eq!(rx[1].next(t).unwrap(), (3, (), 30));
        assert!(rx[0].next(t).is_err() && rx[1].next(t).is_err());
    }

    #[test]
    fn cameras_added_later_and_more_than_the_queue_holds_never_stall() {
        let (slots, rx) = LatestFrameSlots::new(1);
        let t = Duration::from_millis(10);
        let a = slots.slot(0, ());
        let b = slots.slot(7, ());
        assert_eq!(a.put(1), PutOutcome::Stored);
        // The queue is full: b's frame is dropped, and b is not stuck.
        assert_eq!(b.put(2), PutOutcome::Replaced);
        assert_eq!(rx.next(t).unwrap(), (0, (), 1));
        assert_eq!(b.put(3), PutOutcome::Stored);
        assert_eq!(rx.next(t).unwrap(), (7, (), 3));
    }
}
