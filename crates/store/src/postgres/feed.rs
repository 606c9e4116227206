//! The live feed across nodes: every event change a node writes is also a
//! `NOTIFY xueliang_events, '<origin>:<id>:<kind>'` in the write's own
//! transaction (delivered on commit, never for a rollback). Each store
//! listens on the channel and passes the other origins' changes to its own
//! subscribers (its own it announced itself, after the commit).
//!
//! Notifications are not kept while a listener is away: the changes of a
//! connection gap are lost to the live feed (the events are in the
//! database; a client that reconnects lists them).

use super::PgStore;
use sqlx::postgres::{PgListener, PgNotification};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Notify};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};
use xueliang_core::{ChangeKind, EventChange, RetryPolicy};

/// The channel event changes are told on.
pub(crate) const CHANNEL: &str = "xueliang_events";

/// Waits between tries to listen again after the connection failed.
fn reconnect_policy() -> RetryPolicy {
    RetryPolicy::new(Duration::from_millis(500), Duration::from_secs(30))
}

/// A change as told to the other nodes: `<origin>:<id>:<kind>`.
pub(crate) fn payload(origin: &str, id: i64, change: ChangeKind) -> String {
    format!("{origin}:{id}:{}", change.as_str())
}

/// The origin and change of a payload; `None` if it is not one.
fn parse(payload: &str) -> Option<(&str, EventChange)> {
    let mut parts = payload.splitn(3, ':');
    let origin = parts.next()?;
    let id = parts.next()?.parse().ok()?;
    let change = parts.next()?.parse().ok()?;
    Some((origin, EventChange { id, change }))
}

/// What the listener hands the other nodes' changes to.
struct Relay {
    origin: Arc<str>,
    changes: broadcast::Sender<EventChange>,
    outbox_signal: Arc<Notify>,
}

impl Relay {
    fn pass(&self, n: &PgNotification) {
        let Some((origin, change)) = parse(n.payload()) else {
            warn!(
                payload = n.payload(),
                "live feed: ignoring a notification that is not an event change"
            );
            return;
        };
        if origin == &*self.origin {
            return; // ours: announced after the commit
        }
        if change.change == ChangeKind::Started {
            // A new event on another node: its outbox row waits, and this
            // node's dispatcher may be the one that leads.
            self.outbox_signal.notify_one();
        }
        // No subscriber is no error.
        let _ = self.changes.send(change);
    }
}

/// Starts listening for the other nodes' changes: once this returns, every
/// change committed on another node reaches this store's subscribers (unless
/// the database could not be listened to yet: the task tries again). The
/// task ends when the pool is closed, or is aborted with the store.
pub(super) async fn start(store: &PgStore) -> AbortHandle {
    let relay = Relay {
        origin: store.origin.clone(),
        changes: store.changes.clone(),
        outbox_signal: store.outbox_signal.clone(),
    };
    let pool = store.pool.clone();
    let first = match subscribe(&pool).await {
        Ok(l) => Some(l),
        Err(e) => {
            warn!(error = %e, "live feed: cannot listen for other nodes' changes yet");
            None
        }
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = pool.close_event() => {}
            _ = listen(&pool, &relay, first) => {}
        }
        debug!("live feed: the store closed; no longer listening");
    })
    .abort_handle()
}

/// Listens until the pool closes (on `first` if given), listening again
/// after a failure with backoff. `PgListener` itself reconnects after a
/// connection that ended (end of file, reset by a timeout, broken pipe):
/// `try_recv` then answers `None`. Any other error (a reconnect that failed,
/// a reset connection) is returned, and the listener is made anew here.
async fn listen(pool: &PgPool, relay: &Relay, mut first: Option<PgListener>) {
    let policy = reconnect_policy();
    let mut failures: u32 = u32::from(first.is_none());
    loop {
        let next = match first.take() {
            Some(l) => Ok(l),
            None => subscribe(pool).await,
        };
        let mut listener = match next {
            Ok(l) => l,
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                let wait = policy.delay(failures, &mut rand::thread_rng());
                failures = failures.saturating_add(1);
                warn!(error = %e, failures, retry_in_ms = wait.as_millis() as u64,
                    "live feed: cannot listen for other nodes' changes");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if failures > 0 {
            info!(
                failures,
                "live feed: listening for other nodes' changes again; those made meanwhile are not shown"
            );
        }
        let error = loop {
            match listener.try_recv().await {
                Ok(Some(n)) => relay.pass(&n),
                Ok(None) => warn!(
                    "live feed: the listening connection was lost and is back; \
                     other nodes' changes made meanwhile are not shown"
                ),
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => break e,
            }
        };
        drop(listener);
        let wait = policy.delay(0, &mut rand::thread_rng());
        failures = 1;
        warn!(error = %error, retry_in_ms = wait.as_millis() as u64,
            "live feed: the listening connection failed; listening anew");
        tokio::time::sleep(wait).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back() {
        let p = payload("00ff", 42, ChangeKind::Improved);
        assert_eq!(p, "00ff:42:improved");
        let (origin, change) = parse(&p).unwrap();
        assert_eq!(origin, "00ff");
        assert_eq!((change.id, change.change), (42, ChangeKind::Improved));
        for bad in ["", "a", "a:b:started", "a:1", "a:1:gone"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
