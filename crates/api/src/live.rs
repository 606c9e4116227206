//! The live feed behind `GET /events/stream`: each change to an event is
//! read from the store once and handed, with its JSON body, to every
//! subscriber; each subscriber keeps what its caller may see.

use crate::event_body::EventBody;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast::{self, error::RecvError, WeakSender};
use xueliang_core::{ChangeKind, EventChange};
use xueliang_store::EventStore;

/// Items kept for a slow subscriber before it lags (as many as the store
/// keeps changes).
const FEED_BUFFER: usize = 1024;

/// What a subscriber receives.
#[derive(Clone)]
pub(crate) enum LiveItem {
    Changed(Arc<LiveEvent>),
    /// The feed fell behind the store and missed this many changes.
    Lagged(u64),
}

/// A changed event as read after the change.
pub(crate) struct LiveEvent {
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
        let started = start(changes, move |id| {
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
fn start<L, F>(changes: broadcast::Receiver<EventChange>, load: L) -> broadcast::Sender<LiveItem>
where
    L: Fn(i64) -> F + Send + 'static,
    F: Future<Output = Option<xueliang_core::Event>> + Send + 'static,
{
    let (sender, _) = broadcast::channel(FEED_BUFFER);
    tokio::spawn(run(changes, load, sender.clone()));
    sender
}

async fn run<L, F>(
    mut changes: broadcast::Receiver<EventChange>,
    load: L,
    sender: broadcast::Sender<LiveItem>,
) where
    L: Fn(i64) -> F,
    F: Future<Output = Option<xueliang_core::Event>>,
{
    loop {
        let item = match changes.recv().await {
            Ok(_) if sender.receiver_count() == 0 => continue,
            Ok(change) => {
                // An event that cannot be read is left out, as it would be
                // from a listing.
                let Some(event) = load(change.id).await else {
                    continue;
                };
                let body = EventBody::from(event);
                let json = serde_json::to_string(&body).unwrap_or_default();
                LiveItem::Changed(Arc::new(LiveEvent {
                    change: change.change,
                    body,
                    json,
                }))
            }
            Err(RecvError::Lagged(n)) => LiveItem::Lagged(n),
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
            Ok(Ok(LiveItem::Lagged(n))) => panic!("lagged {n}"),
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
            start(feed_changes, move |id| {
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
        let old = start(closed, |_| async { None });
        drop(ended);
        let mut old_rx = old.subscribe();
        *live.sender.lock().unwrap() = Some(old.downgrade());
        drop(old);
        assert!(matches!(old_rx.recv().await, Err(RecvError::Closed)));
        let mut c = live.subscribe(&store);
        let id = store.insert_event(event("c")).await.unwrap();
        assert_eq!(next(&mut c).await.body.event.id, id);
    }
}
