//! The live feed behind `GET /events/stream`: each change to an event is
//! read from the store once and handed, with its JSON body, to every
//! subscriber; each subscriber keeps what its caller may see.
//!
//! Each change gets a sequence number, and the last [`FEED_BUFFER`] changes
//! (event id and kind, not bodies) are kept in a ring ([`History`]), so a
//! client that reconnects with `Last-Event-ID` is sent what changed since.
//! An id is `<epoch>-<seq>`: the epoch is random per process, so an id from
//! before a restart is known to be unreplayable, as is one older than the ring.

use crate::event_body::EventBody;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast::{self, error::RecvError, WeakSender};
use xueliang_core::{ChangeKind, EventChange};
use xueliang_store::EventStore;

/// Items kept for a slow subscriber before it lags (as many as the store
/// keeps changes), and changes kept for replay.
const FEED_BUFFER: usize = 1024;

/// The last [`FEED_BUFFER`] changes with their sequence numbers; `None`
/// marks changes the feed itself missed (it lagged behind the store).
pub(crate) struct History {
    epoch: String,
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    /// The sequence number of the newest entry (0: none yet).
    last: u64,
    entries: VecDeque<(u64, Option<EventChange>)>,
}

/// What a `Last-Event-ID` can be resumed with.
#[derive(Debug, PartialEq)]
pub(crate) enum Replay {
    /// The changes after that id (oldest first) and the newest sequence number.
    Since(Vec<(u64, EventChange)>, u64),
    /// Not replayable (older than the ring, across a gap, or from another
    /// process): the client must reload. Carries how many changes were
    /// missed if known, and the newest sequence number.
    Lost(Option<u64>, u64),
}

impl Default for History {
    fn default() -> Self {
        let mut epoch = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut epoch);
        History {
            epoch: hex::encode(epoch),
            ring: Mutex::new(Ring::default()),
        }
    }
}

impl History {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a change (or a gap); its sequence number.
    fn push(&self, change: Option<EventChange>) -> u64 {
        let mut ring = self.ring();
        ring.last += 1;
        let seq = ring.last;
        if ring.entries.len() == FEED_BUFFER {
            ring.entries.pop_front();
        }
        ring.entries.push_back((seq, change));
        seq
    }

    /// The SSE id of sequence number `seq`.
    pub(crate) fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    pub(crate) fn last(&self) -> u64 {
        self.ring().last
    }

    /// The changes after the SSE id `last_id`.
    pub(crate) fn since(&self, last_id: &str) -> Replay {
        let ring = self.ring();
        let seq = last_id
            .trim()
            .split_once('-')
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .filter(|seq| *seq <= ring.last);
        let Some(seq) = seq else {
            return Replay::Lost(None, ring.last);
        };
        // Entries seq+1..=last must all be in the ring, without a gap.
        let oldest = ring.entries.front().map_or(ring.last + 1, |(s, _)| *s);
        let after: Vec<&(u64, Option<EventChange>)> =
            ring.entries.iter().filter(|(s, _)| *s > seq).collect();
        if seq + 1 < oldest || after.iter().any(|(_, c)| c.is_none()) {
            return Replay::Lost(Some(ring.last - seq), ring.last);
        }
        let changes = after
            .into_iter()
            .filter_map(|(s, c)| c.map(|c| (*s, c)))
            .collect();
        Replay::Since(changes, ring.last)
    }
}

/// What a subscriber receives.
#[derive(Clone)]
pub(crate) enum LiveItem {
    Changed(Arc<LiveEvent>),
    /// The feed fell behind the store and missed this many changes; the
    /// gap has this sequence number.
    Lagged(u64, u64),
}

/// A changed event as read after the change.
pub(crate) struct LiveEvent {
    /// Its place in the [`History`].
    pub seq: u64,
    pub change: ChangeKind,
    pub body: EventBody,
    /// `body` as JSON, made once for every subscriber.
    pub json: String,
}

/// Starts on the first subscriber; runs while anyone holds a subscription
/// or the store announces changes.
#[derive(Default)]
pub(crate) struct LiveFeed {
    /// The running feed's sender, if it runs (only its task holds it).
    sender: Mutex<Option<WeakSender<LiveItem>>>,
    /// Kept across restarts of the feed's task.
    pub history: Arc<History>,
}

impl LiveFeed {
    /// A subscription to the feed of `store`'s changes from now on.
    pub(crate) fn subscribe(&self, store: &Arc<dyn EventStore>) -> broadcast::Receiver<LiveItem> {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = sender.as_ref().and_then(WeakSender::upgrade) {
            return running.subscribe();
        }
        let store = store.clone();
        let changes = store.subscribe();
        let started = start(changes, self.history.clone(), move |id| {
            let store = store.clone();
            async move { store.get_event(id).await.ok().flatten() }
        });
        let subscription = started.subscribe();
        *sender = Some(started.downgrade());
        subscription
    }
}

/// Spawns the task that reads each of `changes` with `load` (once, and only
/// while someone listens) and sends it to every subscriber. The task ends
/// when `changes` ends; then subscribers see the feed closed.
fn start<L, F>(
    changes: broadcast::Receiver<EventChange>,
    history: Arc<History>,
    load: L,
) -> broadcast::Sender<LiveItem>
where
    L: Fn(i64) -> F + Send + 'static,
    F: Future<Output = Option<xueliang_core::Event>> + Send + 'static,
{
    let (sender, _) = broadcast::channel(FEED_BUFFER);
    tokio::spawn(run(changes, history, load, sender.clone()));
    sender
}

async fn run<L, F>(
    mut changes: broadcast::Receiver<EventChange>,
    history: Arc<History>,
    load: L,
    sender: broadcast::Sender<LiveItem>,
) where
    L: Fn(i64) -> F,
    F: Future<Output = Option<xueliang_core::Event>>,
{
    loop {
        // Every change is numbered and kept, listened to or not, so a
        // client that reconnects can be sent what it missed.
        let item = match changes.recv().await {
            Ok(change) => {
                let seq = history.push(Some(change));
                if sender.receiver_count() == 0 {
                    continue;
                }
                // An event that cannot be read is left out, as it would be
                // from a listing.
                let Some(event) = load(change.id).await else {
                    continue;
                };
                let body = EventBody::from(event);
                let json = serde_json::to_string(&body).unwrap_or_default();
                LiveItem::Changed(Arc::new(LiveEvent {
                    seq,
                    change: change.change,
                    body,
                    json,
                }))
            }
            Err(RecvError::Lagged(n)) => LiveItem::Lagged(n, history.push(None)),
            Err(RecvError::Closed) => return,
        };
        // No subscriber left is not an error.
        let _ = sender.send(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use xueliang_core::NewEvent;
    use xueliang_store::SqliteStore;

    async fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("e.db").display());
        (Arc::new(SqliteStore::open(&url).await.unwrap()), dir)
    }

    fn event(camera: &str) -> NewEvent {
        NewEvent {
            camera_id: camera.into(),
            label: "person".into(),
            score: 0.9,
            ..Default::default()
        }
    }

    async fn next(rx: &mut broadcast::Receiver<LiveItem>) -> Arc<LiveEvent> {
        let wait = std::time::Duration::from_secs(5);
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Ok(LiveItem::Changed(e))) => e,
            Ok(Ok(LiveItem::Lagged(n, _))) => panic!("lagged {n}"),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("nothing within {wait:?}"),
        }
    }

    #[tokio::test]
    async fn each_change_is_read_once_for_every_subscriber() {
        let (store, _dir) = store().await;
        let reads = Arc::new(AtomicUsize::new(0));
        let (changes, feed_changes) = broadcast::channel(16);
        let feed = {
            let (store, reads) = (store.clone(), reads.clone());
            start(feed_changes, Default::default(), move |id| {
                reads.fetch_add(1, Ordering::Relaxed);
                let store = store.clone();
                async move { store.get_event(id).await.ok().flatten() }
            })
        };
        let started = |id| EventChange {
            id,
            change: ChangeKind::Started,
        };
        // Nobody listens: the change is not read.
        let first = store.insert_event(event("a")).await.unwrap();
        changes.send(started(first)).unwrap();
        for _ in 0..1000 {
            if changes.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(changes.is_empty(), "the feed took the change");
        let mut subscribers: Vec<_> = (0..3).map(|_| feed.subscribe()).collect();
        let second = store.insert_event(event("b")).await.unwrap();
        changes.send(started(second)).unwrap();
        let mut got = Vec::new();
        for rx in &mut subscribers {
            got.push(next(rx).await);
        }
        assert_eq!(got[0].body.event.id, second);
        assert_eq!(got[0].change, ChangeKind::Started);
        assert!(
            got[0].json.contains("\"camera_id\":\"b\""),
            "{}",
            got[0].json
        );
        assert!(got.iter().all(|e| Arc::ptr_eq(e, &got[0])));
        assert_eq!(reads.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_feed_starts_once_and_again_after_it_ended() {
        let (store, _dir) = store().await;
        let store: Arc<dyn EventStore> = store;
        let live = LiveFeed::default();
        let mut a = live.subscribe(&store);
        let mut b = live.subscribe(&store);
        let id = store.insert_event(event("a")).await.unwrap();
        let (ea, eb) = (next(&mut a).await, next(&mut b).await);
        assert!(Arc::ptr_eq(&ea, &eb) && ea.body.event.id == id);
        // A feed whose task ended (its changes closed) is replaced.
        let (ended, closed) = broadcast::channel::<EventChange>(1);
        let old = start(closed, Default::default(), |_| async { None });
        drop(ended);
        let mut old_rx = old.subscribe();
        *live.sender.lock().unwrap() = Some(old.downgrade());
        drop(old);
        assert!(matches!(old_rx.recv().await, Err(RecvError::Closed)));
        let mut c = live.subscribe(&store);
        let id = store.insert_event(event("c")).await.unwrap();
        assert_eq!(next(&mut c).await.body.event.id, id);
    }

    #[test]
    fn history_replays_since_an_id_or_says_it_cannot() {
        let h = History::default();
        let change = |id| EventChange {
            id,
            change: ChangeKind::Started,
        };
        for id in 1..=3 {
            h.push(Some(change(id)));
        }
        assert_eq!(
            h.since(&h.id(1)),
            Replay::Since(vec![(2, change(2)), (3, change(3))], 3)
        );
        assert_eq!(h.since(&h.id(3)), Replay::Since(vec![], 3));
        // Another process's id, a future one, or junk: reload.
        assert_eq!(h.since("deadbeef-1"), Replay::Lost(None, 3));
        assert_eq!(h.since(&h.id(9)), Replay::Lost(None, 3));
        assert_eq!(h.since("junk"), Replay::Lost(None, 3));
        // A gap (the feed lagged) cannot be replayed across.
        h.push(None);
        h.push(Some(change(4)));
        assert_eq!(h.since(&h.id(3)), Replay::Lost(Some(2), 5));
        assert_eq!(h.since(&h.id(4)), Replay::Since(vec![(5, change(4))], 5));
        // Older than the ring.
        for id in 0..FEED_BUFFER as i64 {
            h.push(Some(change(id)));
        }
        // Seq 6.. are kept: 5 can be resumed from, 4 cannot.
        assert!(matches!(h.since(&h.id(5)), Replay::Since(..)));
        assert!(matches!(h.since(&h.id(4)), Replay::Lost(Some(_), _)));
        let last = h.last();
        assert!(matches!(h.since(&h.id(last - 10)), Replay::Since(v, _) if v.len() == 10));
    }
}
