//! The alert dispatchers' election (design/alerts.md, "Several nodes"): of
//! the nodes sharing the database, the one whose own connection holds the
//! session advisory lock [`LOCK_KEY`] leads. PostgreSQL frees the lock when
//! that session ends: the leader closed its store, its process died (the
//! kernel closes the socket), or its host vanished (the server's keepalives
//! give up). The others try the lock every [`PROBE_EVERY`] and one takes
//! over; the leader checks its session as often and stops leading the moment
//! a check fails.

use sqlx::{Connection, PgConnection, PgPool};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};
use xueliang_core::RetryPolicy;

/// The lock's key: "xl-alert" in ASCII, an arbitrary constant.
const LOCK_KEY: i64 = 0x786c_2d61_6c65_7274;
/// How often a node tries the lock, and the leader checks its session.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A check that takes longer counts as a lost connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a node that may take over from another leader waits after it
/// got the lock, before it sends: the longest the old leader can go on
/// believing it leads after its session ended (until its next check fails).
const TAKEOVER_GRACE: Duration =
    Duration::from_secs(PROBE_EVERY.as_secs() + PROBE_TIMEOUT.as_secs());
/// Keepalives of the lock's session (ignored on a Unix socket): the server
/// ends the session of a leader whose host vanished without closing the
/// connection within about ten seconds (4 s idle, then 3 probes 2 s apart),
/// which frees the lock for another node.
const KEEPALIVES: &str = "SELECT set_config('tcp_keepalives_idle', '4', false), \
     set_config('tcp_keepalives_interval', '2', false), \
     set_config('tcp_keepalives_count', '3', false), \
     set_config('tcp_user_timeout', '10000', false)";

/// Waits between tries to connect after a failure.
fn reconnect_policy() -> RetryPolicy {
    RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(10))
}

/// Starts taking part in the election: whether this node leads (`None`
/// until the first answer). The task ends when the pool is closed, or is
/// aborted with the store; either ends its session, which frees the lock.
pub(super) fn start(pool: PgPool) -> (watch::Receiver<Option<bool>>, AbortHandle) {
    let (state, leads) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut election = Election {
            pool: pool.clone(),
            state,
            conn: None,
            leading: false,
            others_may_lead: false,
            failures: 0,
        };
        tokio::select! {
            _ = pool.close_event() => {}
            _ = election.run() => {}
        }
        if election.leading {
            info!("alert dispatcher: the store closed; this node no longer leads");
        }
        election.set(false);
    })
    .abort_handle();
    (leads, task)
}

/// Why a check of the lock's connection failed.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("no answer in time")]
    Timeout,
}

/// Runs `query` on the lock's connection, at most [`PROBE_TIMEOUT`].
async fn probe<T>(query: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, Lost> {
    match tokio::time::timeout(PROBE_TIMEOUT, query).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Lost::Timeout),
    }
}

/// A connection of its own (not the pool's: the lock lives as long as the
/// session).
async fn connect(pool: &PgPool) -> Result<PgConnection, Lost> {
    let mut conn = probe(PgConnection::connect_with(&pool.connect_options())).await?;
    if let Err(e) = probe(set_keepalives(&mut conn)).await {
        // Only a vanished host is noticed later (the server's defaults).
        warn!(error = %e, "alert dispatcher: cannot shorten the keepalives of the leadership's connection");
    }
    Ok(conn)
}

async fn set_keepalives(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(KEEPALIVES).execute(conn).await?;
    Ok(())
}

async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(conn)
        .await
}

struct Election {
    pool: PgPool,
    state: watch::Sender<Option<bool>>,
    /// The session that holds the lock, or tries it.
    conn: Option<PgConnection>,
    leading: bool,
    /// Another node led, or may have, since this one started (it saw the
    /// lock taken, or lost its own connection): taking the lock then waits
    /// [`TAKEOVER_GRACE`].
    others_may_lead: bool,
    /// Failed connects in a row.
    failures: u32,
}

impl Election {
    async fn run(&mut self) {
        loop {
            let wait = self.round().await;
            tokio::time::sleep(wait).await;
        }
    }

    /// Publishes whether this node leads (subscribers wake only on a change).
    fn set(&self, leads: bool) {
        self.state.send_if_modified(|s| {
            let changed = *s != Some(leads);
            *s = Some(leads);
            changed
        });
    }

    /// One look: connects if needed, then checks the session (leader) or
    /// tries the lock (the others). Returns how long to wait before the next.
    async fn round(&mut self) -> Duration {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => match connect(&self.pool).await {
                Ok(c) => {
                    if self.failures > 0 {
                        info!(
                            failures = self.failures,
                            "alert dispatcher: connected again for the leadership election"
                        );
                    }
                    self.failures = 0;
                    c
                }
                Err(e) => return self.failed(e),
            },
        };
        let conn = self.conn.insert(conn);
        if self.leading {
            return match probe(conn.ping()).await {
                Ok(_) => PROBE_EVERY,
                Err(e) => self.failed(e),
            };
        }
        let got = probe(try_lock(conn)).await;
        match got {
            Ok(true) => self.take_over().await,
            Ok(false) => {
                if !self.others_may_lead {
                    info!("alert dispatcher: another node leads; this one stands by");
                }
                self.others_may_lead = true;
                self.set(false);
                PROBE_EVERY
            }
            Err(e) => self.failed(e),
        }
    }

    /// This node holds the lock: it leads, after the grace if another node
    /// may still believe it does.
    async fn take_over(&mut self) -> Duration {
        if self.others_may_lead {
            self.set(false);
            info!(
                grace_ms = TAKEOVER_GRACE.as_millis() as u64,
                "alert dispatcher: the leadership is free; taking it over after a grace for the old leader to stop"
            );
            tokio::time::sleep(TAKEOVER_GRACE).await;
            let Some(conn) = self.conn.as_mut() else {
                return PROBE_EVERY;
            };
            if let Err(e) = probe(conn.ping()).await {
                return self.failed(e);
            }
        }
        self.leading = true;
        self.set(true);
        info!("alert dispatcher: this node leads (routes, escalates and sends alerts)");
        PROBE_EVERY
    }

    /// The connection failed: whatever it held is lost (dropping it ends the
    /// session, should the server still keep it).
    fn failed(&mut self, error: Lost) -> Duration {
        self.conn = None;
        self.others_may_lead = true;
        self.set(false);
        if std::mem::take(&mut self.leading) {
            warn!(error = %error,
                "alert dispatcher: lost the connection that holds the leadership; this node stands by");
            return PROBE_EVERY;
        }
        let wait = reconnect_policy().delay(self.failures, &mut rand::thread_rng());
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            warn!(error = %error, retry_in_ms = wait.as_millis() as u64,
                "alert dispatcher: cannot take part in the leadership election");
        } else {
            debug!(error = %error, failures = self.failures, retry_in_ms = wait.as_millis() as u64,
                "alert dispatcher: still cannot take part in the leadership election");
        }
        wait
    }
}
