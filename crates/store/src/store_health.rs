//! Whether the store takes writes. A write that fails for a reason that may
//! pass (a full disk, a busy or failing database) makes the store degraded
//! until a write succeeds again; `/healthz` shows why, and the writer that
//! sees the first success after a full disk records a `store_full` event.

use crate::reserve::Reserve;
use crate::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Why writes fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TroubleKind {
    /// The disk is full (`SQLITE_FULL`, `ENOSPC`).
    Full,
    /// Another retriable failure (busy, I/O error).
    Error,
}

/// A stretch of failing writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreTrouble {
    pub kind: TroubleKind,
    /// The latest failure, in words (SQLite's message; never a secret).
    pub reason: String,
    /// The first failure of the stretch.
    pub since: DateTime<Utc>,
    /// Failed writes (each retry counts) during the stretch.
    pub failures: u64,
}

/// Shared by every writer of one store. Cheap on the success path: one
/// atomic load while nothing is wrong.
#[derive(Debug, Default)]
pub struct StoreHealth {
    troubled: AtomicBool,
    trouble: Mutex<Option<StoreTrouble>>,
    /// Deleted at the first full-disk failure, made again after a success.
    reserve: Option<Reserve>,
}

impl StoreHealth {
    /// Health with a reserve file of disk space at `reserve` (made now).
    pub(crate) fn with_reserve(reserve: std::path::PathBuf) -> Self {
        StoreHealth {
            reserve: Some(Reserve::new(reserve)),
            ..Default::default()
        }
    }

    /// Records a failed write.
    pub fn failed(&self, e: &StoreError, at: DateTime<Utc>) {
        let kind = if e.is_full() {
            TroubleKind::Full
        } else {
            TroubleKind::Error
        };
        if kind == TroubleKind::Full {
            if let Some(r) = &self.reserve {
                r.release();
            }
        }
        let mut t = self.lock();
        match t.as_mut() {
            Some(t) => {
                t.failures += 1;
                t.reason = e.to_string();
                // A full disk is the news until the stretch ends.
                if kind == TroubleKind::Full {
                    t.kind = kind;
                }
            }
            None => {
                *t = Some(StoreTrouble {
                    kind,
                    reason: e.to_string(),
                    since: at,
                    failures: 1,
                })
            }
        }
        self.troubled.store(true, Ordering::Release);
    }

    /// Records a successful write; returns the stretch of failures it ends,
    /// to exactly one caller. A full-disk stretch ends only once the reserve
    /// file is made again (space has returned): writes that succeed in the
    /// room the deleted reserve left do not end it.
    pub fn succeeded(&self) -> Option<StoreTrouble> {
        if let Some(r) = &self.reserve {
            r.restore();
        }
        if !self.troubled.load(Ordering::Acquire) {
            return None;
        }
        let mut t = self.lock();
        let full = t.as_ref().is_some_and(|t| t.kind == TroubleKind::Full);
        if full && self.reserve.as_ref().is_some_and(|r| r.is_missing()) {
            return None;
        }
        self.troubled.store(false, Ordering::Release);
        t.take()
    }

    /// The current stretch of failures, if writes are failing.
    pub fn current(&self) -> Option<StoreTrouble> {
        if !self.troubled.load(Ordering::Acquire) {
            return None;
        }
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<StoreTrouble>> {
        self.trouble.lock().unwrap_or_else(|p| p.into_inner())
    }
}
