//! Retention and the disk budget (design/retention.md): removes what is older
//! than its retention, and while the service's files are over the budget the
//! oldest clips, then the oldest snapshots, then the oldest events. Never removed: events an operator
//! marked to keep, events whose alert is not yet delivered (or whose outbox
//! row is not yet routed), events still active, and — by the budget — the
//! latest day.
//!
//! Work is done in short transactions of [`BATCH`] rows; after each the task
//! pauses as long as the batch took, so writers wait at most about one batch.
//! On SQLite freed pages go back to the file system with `PRAGMA
//! incremental_vacuum`, also in steps; on PostgreSQL its own (auto)vacuum
//! makes them reusable, and the budget counts the pictures and clips the
//! database holds (design/retention.md).
//!
//! The statements are the same on both backends (numbered parameters, which
//! SQLite takes too); [`Backend`] runs them.

use crate::{Backend, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use xueliang_core::Clock;

/// Rows removed per transaction.
pub const BATCH: i64 = 500;
/// Snapshots or events removed per transaction by the disk budget: few, so
/// it removes hardly more than it must (a snapshot is up to a few hundred KB).
pub const BUDGET_BATCH: i64 = 100;
/// Pages given back per `incremental_vacuum` step (8 MiB of 4 KiB pages).
const VACUUM_STEP: i64 = 2048;
/// The disk budget never removes events (or snapshots) younger than this.
const LAST_DAY: chrono::Duration = chrono::Duration::days(1);
/// The shortest pause between batches.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// How long each kind of data is kept, and the disk budget.
#[derive(Clone, Debug)]
pub struct RetentionPolicy {
    /// Events, their snapshots and alerts, and line crossings.
    pub events: chrono::Duration,
    /// Health samples (the online-rate reports).
    pub health: chrono::Duration,
    /// The audit trail.
    pub audit: chrono::Duration,
    /// The most the service's files may take; `None`: no budget.
    pub max_disk_bytes: Option<u64>,
    /// A directory whose files (all of them) count against the budget, as
    /// well as the database's own files wherever they are.
    pub data_dir: Option<PathBuf>,
}

impl RetentionPolicy {
    /// The defaults of `[storage]`: 90 days of events, 400 of health
    /// samples, 365 of audit lines, no budget.
    pub fn days(events: u32, health: u32, audit: u32) -> Self {
        RetentionPolicy {
            events: chrono::Duration::days(events.into()),
            health: chrono::Duration::days(health.into()),
            audit: chrono::Duration::days(audit.into()),
            max_disk_bytes: None,
            data_dir: None,
        }
    }
}

/// Rows removed, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub events: u64,
    pub snapshots: u64,
    pub line_crossings: u64,
    pub health_samples: u64,
    pub audit: u64,
    /// Event clips removed by the disk budget (those of removed events go
    /// with them, uncounted).
    pub clips: u64,
}

impl Removed {
    /// `(kind, count)` with the metric label of each kind.
    pub fn by_kind(&self) -> [(&'static str, u64); 6] {
        [
            ("events", self.events),
            ("snapshots", self.snapshots),
            ("line_crossings", self.line_crossings),
            ("health_samples", self.health_samples),
            ("audit", self.audit),
            ("clips", self.clips),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_kind().iter().map(|(_, n)| n).sum()
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetentionPass {
    /// Removed because older than their retention.
    pub expired: Removed,
    /// Removed to get under the disk budget.
    pub over_budget: Removed,
    /// The service's files before and after the pass, in bytes.
    pub disk_bytes_before: u64,
    pub disk_bytes_after: u64,
    /// Still over the budget after removing all it may (what is left is
    /// kept, the latest day, or waiting for delivery).
    pub still_over_budget: bool,
    pub took: Duration,
}

impl RetentionPass {
    pub fn removed(&self, kind: &str) -> u64 {
        self.expired
            .by_kind()
            .iter()
            .chain(self.over_budget.by_kind().iter())
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn reclaimed_bytes(&self) -> u64 {
        self.disk_bytes_before.saturating_sub(self.disk_bytes_after)
    }
}

/// Totals since start, for the metrics.
#[derive(Debug, Default)]
pub struct RetentionTotals {
    removed: [AtomicU64; 6],
    reclaimed_bytes: AtomicU64,
    passes: AtomicU64,
    disk_bytes: AtomicU64,
    over_budget: AtomicBool,
}

impl RetentionTotals {
    fn add(&self, pass: &RetentionPass) {
        for (i, (kind, _)) in Removed::default().by_kind().iter().enumerate() {
            self.removed[i].fetch_add(pass.removed(kind), Ordering::Relaxed);
        }
        self.reclaimed_bytes
            .fetch_add(pass.reclaimed_bytes(), Ordering::Relaxed);
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.disk_bytes
            .store(pass.disk_bytes_after, Ordering::Relaxed);
        self.over_budget
            .store(pass.still_over_budget, Ordering::Relaxed);
    }

    /// Rows removed since start, per kind (metric label, count).
    pub fn removed(&self) -> Vec<(&'static str, u64)> {
        Removed::default()
            .by_kind()
            .iter()
            .enumerate()
            .map(|(i, (kind, _))| (*kind, self.removed[i].load(Ordering::Relaxed)))
            .collect()
    }

    pub fn reclaimed_bytes(&self) -> u64 {
        self.reclaimed_bytes.load(Ordering::Relaxed)
    }

    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// The service's files after the latest pass, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    pub fn over_budget(&self) -> bool {
        self.over_budget.load(Ordering::Relaxed)
    }
}

/// The retention task of one store.
pub struct Retention {
    store: Backend,
    policy: RetentionPolicy,
    clock: Arc<dyn Clock>,
    totals: Arc<RetentionTotals>,
}

/// An event may go: ended, not kept, and nobody still to be told about it
/// (its outbox row routed; the alert it opened delivered, with no
/// escalation pending). `e` is the event.
const REMOVABLE: &str = "e.keep = 0 AND e.status = 'ended' \
     AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.event_id = e.id AND o.processed_at IS NULL) \
     AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.event_id = e.id AND ( \
         (a.escalate_at IS NOT NULL AND a.escalated_at IS NULL AND a.acked_at IS NULL) \
         OR EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.status = 'pending')))";

impl Retention {
    pub fn new(store: impl Into<Backend>, policy: RetentionPolicy, clock: Arc<dyn Clock>) -> Self {
        Retention {
            store: store.into(),
            policy,
            clock,
            totals: Default::default(),
        }
    }

    /// Totals since start (shared with the metrics).
    pub fn totals(&self) -> Arc<RetentionTotals> {
        self.totals.clone()
    }

    /// Runs a pass now and then every `every` until `shutdown` resolves;
    /// logs one line per pass. A failed pass is logged and retried at the
    /// next.
    pub async fn run(&self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.pass().await {
                Ok(p) => log_pass(&p),
                Err(e) => warn!(error = %e, "retention pass failed; trying again at the next"),
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: expired rows, then the budget, then the freed pages back to
    /// the file system.
    pub async fn pass(&self) -> Result<RetentionPass, StoreError> {
        let started = Instant::now();
        let now = self.clock.now();
        let disk_bytes_before = self.disk_bytes().await?;
        let mut pass = RetentionPass {
            disk_bytes_before,
            ..Default::default()
        };
        let p = &self.policy;
        pass.expired.health_samples = self.expire_rows("health_samples", now - p.health).await?;
        pass.expired.line_crossings = self.expire_rows("line_crossings", now - p.events).await?;
        pass.expired.audit = self.expire_rows("audit_log", now - p.audit).await?;
        let (events, snapshots) = self.expire_events(now - p.events).await?;
        pass.expired.events = events;
        pass.expired.snapshots = snapshots;
        if let Some(budget) = p.max_disk_bytes {
            pass.still_over_budget = self
                .enforce_budget(budget, now - LAST_DAY, &mut pass.over_budget)
                .await?;
        }
        if let Backend::Sqlite(s) = &self.store {
            give_back_free_pages(s).await?;
        }
        pass.disk_bytes_after = self.disk_bytes().await?;
        pass.took = started.elapsed();
        self.totals.add(&pass);
        Ok(pass)
    }

    /// Removes rows of `table` (with an `at` column) older than `cutoff`.
    async fn expire_rows(&self, table: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let row = self.store.row_id();
        let sql = format!(
            "DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} WHERE at < $1 LIMIT $2)"
        );
        let mut removed = 0;
        loop {
            let t = Instant::now();
            let n = self
                .store
                .execute(&[(sql.clone(), vec![cutoff.timestamp_millis(), BATCH])])
                .await?[0];
            removed += n;
            if n < BATCH as u64 {
                return Ok(removed);
            }
            pause(t.elapsed()).await;
        }
    }

    /// Removes removable events that started before `cutoff`, with their
    /// snapshots (and, by cascade, outbox rows and alerts). Returns (events,
    /// snapshots) removed.
    async fn expire_events(&self, cutoff: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
        let (mut events, mut snapshots) = (0, 0);
        while let Some((e, s)) = self.remove_events(cutoff, BATCH).await? {
            events += e;
            snapshots += s;
        }
        Ok((events, snapshots))
    }

    /// One batch of the oldest removable events that started before
    /// `cutoff`: (events, snapshots) removed; `None` when none was left.
    async fn remove_events(
        &self,
        cutoff: DateTime<Utc>,
        batch: i64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let t = Instant::now();
        let ids = self
            .store
            .ids(
                &format!(
                    "SELECT e.id FROM events e WHERE e.started_at < $1 AND {REMOVABLE} \
                     ORDER BY e.started_at LIMIT $2"
                ),
                &[cutoff.timestamp_millis(), batch],
            )
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        // The keep mark is checked again: an operator may have set it since.
        let removed = self
            .store
            .execute(&[
                in_ids(
                    "DELETE FROM snapshots WHERE event_id IN (SELECT id FROM events WHERE keep = 0 AND id IN (",
                    &ids,
                    "))",
                ),
                in_ids("DELETE FROM events WHERE keep = 0 AND id IN (", &ids, ")"),
            ])
            .await?;
        pause(t.elapsed()).await;
        Ok(Some((removed[1], removed[0])))
    }

    /// One batch of what `table` (`snapshots` or `clips`) holds for the
    /// oldest removable events from before `cutoff`. `None` when none was left.
    async fn remove_attached(
        &self,
        table: &str,
        cutoff: DateTime<Utc>,
        batch: i64,
    ) -> Result<Option<u64>, StoreError> {
        let t = Instant::now();
        let ids = self
            .store
            .ids(
                &format!(
                    "SELECT e.id FROM events e WHERE e.started_at < $1 \
                     AND EXISTS (SELECT 1 FROM {table} s WHERE s.event_id = e.id) AND {REMOVABLE} \
                     ORDER BY e.started_at LIMIT $2"
                ),
                &[cutoff.timestamp_millis(), batch],
            )
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let n = self
            .store
            .execute(&[in_ids(
                &format!("DELETE FROM {table} WHERE event_id IN (SELECT id FROM events WHERE keep = 0 AND id IN ("),
                &ids,
                "))",
            )])
            .await?[0];
        pause(t.elapsed()).await;
        Ok(Some(n))
    }

    /// Removes the oldest clips, then the oldest snapshots, then the oldest
    /// events, from before
    /// `cutoff` while the files hold more than `budget` bytes of data.
    /// Returns whether still over the budget.
    async fn enforce_budget(
        &self,
        budget: u64,
        cutoff: DateTime<Utc>,
        removed: &mut Removed,
    ) -> Result<bool, StoreError> {
        loop {
            if self.used_bytes().await? <= budget {
                return Ok(false);
            }
            if let Some(n) = self.remove_attached("clips", cutoff, BUDGET_BATCH).await? {
                removed.clips += n;
                continue;
            }
            if let Some(n) = self
                .remove_attached("snapshots", cutoff, BUDGET_BATCH)
                .await?
            {
                removed.snapshots += n;
                continue;
            }
            let Some((e, s)) = self.remove_events(cutoff, BUDGET_BATCH).await? else {
                return Ok(true);
            };
            removed.events += e;
            removed.snapshots += s;
        }
    }

    /// Bytes the service's data takes. SQLite: the files (database, WAL,
    /// data directory) less the database's free pages. PostgreSQL: the data
    /// directory and the snapshots and clips the database holds (its own
    /// files are the database administrator's, and space its vacuum frees
    /// is reused without the files shrinking).
    async fn used_bytes(&self) -> Result<u64, StoreError> {
        let data_dir = self.policy.data_dir.as_deref();
        match &self.store {
            Backend::Sqlite(s) => {
                let free = pragma(s, "freelist_count").await? * pragma(s, "page_size").await?;
                Ok(disk_bytes(&s.file, data_dir).saturating_sub(free as u64))
            }
            Backend::Postgres(p) => {
                let media: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE((SELECT SUM(octet_length(jpeg)) FROM snapshots), 0) \
                     + COALESCE((SELECT SUM(bytes) FROM clips), 0) AS BIGINT)",
                )
                .fetch_one(&p.pool)
                .await?;
                Ok(data_dir.map(dir_bytes).unwrap_or(0) + media.max(0) as u64)
            }
        }
    }

    /// The service's data, in bytes. SQLite: its files (everything under
    /// the data directory, and the database with its WAL and shared-memory
    /// files wherever they are). PostgreSQL: as [`Retention::used_bytes`].
    pub async fn disk_bytes(&self) -> Result<u64, StoreError> {
        match &self.store {
            Backend::Sqlite(s) => Ok(disk_bytes(&s.file, self.policy.data_dir.as_deref())),
            Backend::Postgres(_) => self.used_bytes().await,
        }
    }
}

/// A number from a SQLite `PRAGMA`.
async fn pragma(s: &crate::SqliteStore, name: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(&format!("PRAGMA {name}"))
        .fetch_one(&s.pool)
        .await?)
}

/// Gives SQLite's free pages back to the file system in steps, then
/// checkpoints the WAL (which truncates the file in WAL mode) and cuts the
/// WAL back.
async fn give_back_free_pages(s: &crate::SqliteStore) -> Result<(), StoreError> {
    while pragma(s, "freelist_count").await? > 0 {
        let t = Instant::now();
        sqlx::query(&format!("PRAGMA incremental_vacuum({VACUUM_STEP})"))
            .execute(&s.pool)
            .await?;
        pause(t.elapsed()).await;
    }
    // PASSIVE never waits for writers; the TRUNCATE after it has little left to copy.
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&s.pool)
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&s.pool)
        .await?;
    Ok(())
}

/// Bytes of the database `file` (with `-wal`, `-shm`) and of every file under
/// `data_dir`, each counted once.
pub fn disk_bytes(file: &Path, data_dir: Option<&Path>) -> u64 {
    let mut total = 0;
    let inside = |p: &Path| {
        data_dir.is_some_and(|d| match (p.canonicalize(), d.canonicalize()) {
            (Ok(p), Ok(d)) => p.starts_with(d),
            _ => false,
        })
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let p = PathBuf::from(name);
        if !inside(&p) {
            total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
    }
    if let Some(d) = data_dir {
        total += dir_bytes(d);
    }
    total
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// `head $1, $2, ... tail` and the ids to bind.
fn in_ids(head: &str, ids: &[i64], tail: &str) -> (String, Vec<i64>) {
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    (format!("{head}{}{tail}", list.join(", ")), ids.to_vec())
}

impl From<crate::SqliteStore> for Backend {
    fn from(s: crate::SqliteStore) -> Backend {
        Backend::Sqlite(s)
    }
}

impl From<crate::PgStore> for Backend {
    fn from(s: crate::PgStore) -> Backend {
        Backend::Postgres(s)
    }
}

impl Backend {
    /// The column that names a row of a table without a key.
    fn row_id(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "rowid",
            Backend::Postgres(_) => "ctid",
        }
    }

    /// The ids a query selects (its parameters all numbers).
    async fn ids(&self, sql: &str, binds: &[i64]) -> Result<Vec<i64>, StoreError> {
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query_scalar(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_all($pool).await?
            }};
        }
        Ok(match self {
            Backend::Sqlite(s) => run!(&s.pool),
            Backend::Postgres(p) => run!(&p.pool),
        })
    }

    /// Runs the statements in one transaction; the rows each changed.
    async fn execute(&self, statements: &[(String, Vec<i64>)]) -> Result<Vec<u64>, StoreError> {
        macro_rules! run {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                let mut changed = Vec::with_capacity(statements.len());
                for (sql, binds) in statements {
                    let mut q = sqlx::query(sql);
                    for b in binds {
                        q = q.bind(*b);
                    }
                    changed.push(q.execute(&mut *tx).await?.rows_affected());
                }
                tx.commit().await?;
                changed
            }};
        }
        Ok(match self {
            Backend::Sqlite(s) => run!(s.pool),
            Backend::Postgres(p) => run!(p.pool),
        })
    }
}

/// Lets writers in after a batch that held the write lock for `worked`.
async fn pause(worked: Duration) {
    tokio::time::sleep(worked.max(MIN_PAUSE)).await;
}

/// One log line per pass.
pub fn log_pass(p: &RetentionPass) {
    let r = |kind| p.removed(kind);
    let line = |msg: &str| {
        info!(
            events = r("events"),
            snapshots = r("snapshots"),
            line_crossings = r("line_crossings"),
            health_samples = r("health_samples"),
            audit = r("audit"),
            clips = r("clips"),
            disk_bytes = p.disk_bytes_after,
            reclaimed_bytes = p.reclaimed_bytes(),
            took_ms = p.took.as_millis() as u64,
            "{msg}"
        )
    };
    if p.still_over_budget {
        warn!(
            disk_bytes = p.disk_bytes_after,
            "over the disk budget with nothing left that may be removed (kept events, the latest day, undelivered alerts)"
        );
    }
    line("retention pass");
}
