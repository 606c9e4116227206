//! A reserve of disk space beside the database: a file of [`RESERVE_BYTES`]
//! made at open, deleted when the disk first turns out full, so that the
//! small writes that keep alerts flowing (routing an event, recording a
//! delivery attempt) find room while the disk is full, and made again once
//! writes succeed (when the file system has room for it and as much again to spare).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{info, warn};

/// The reserve's size.
pub const RESERVE_BYTES: usize = 4 * 1024 * 1024;

/// Free space needed, besides the reserve, to make it again.
const HEADROOM_BYTES: u64 = RESERVE_BYTES as u64;

#[derive(Debug)]
pub(crate) struct Reserve {
    path: PathBuf,
    /// Whether the file is missing (released, or not yet made).
    missing: AtomicBool,
}

impl Reserve {
    /// The reserve at `path`, made now if there is room.
    pub(crate) fn new(path: PathBuf) -> Reserve {
        let r = Reserve {
            path,
            missing: AtomicBool::new(true),
        };
        r.restore();
        r
    }

    /// Deletes the reserve (the disk is full); once until it is made again.
    pub(crate) fn release(&self) {
        if self.missing.swap(true, Ordering::AcqRel) {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                warn!(path = %self.path.display(), bytes = RESERVE_BYTES, "the disk is full: the reserve file is deleted so alerts for stored events keep flowing")
            }
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "cannot delete the reserve file")
            }
        }
    }

    /// Whether the reserve file is missing (deleted, or no room to make it).
    pub(crate) fn is_missing(&self) -> bool {
        self.missing.load(Ordering::Acquire)
    }

    /// Makes the reserve again if it is missing (writes succeed again); at
    /// try only when the file system has room for it and [`HEADROOM_BYTES`].
    pub(crate) fn restore(&self) {
        if !self.missing.load(Ordering::Acquire) {
            return;
        }
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        if free_bytes(dir).is_some_and(|free| free < RESERVE_BYTES as u64 + HEADROOM_BYTES) {
            return;
        }
        match self.write() {
            Ok(()) => {
                self.missing.store(false, Ordering::Release);
                info!(path = %self.path.display(), bytes = RESERVE_BYTES, "reserve file in place");
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.path);
                warn!(path = %self.path.display(), error = %e, "no room for the reserve file yet");
            }
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let mut f = std::fs::File::create(&self.path)?;
        // Real blocks (zeros written, not a sparse file).
        f.write_all(&vec![0u8; RESERVE_BYTES])?;
        f.sync_all()
    }
}

/// Bytes an unprivileged process may still write on the file system of
/// `dir`; `None` if it cannot be told.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs filled it in (rc == 0).
    let st = unsafe { st.assume_init() };
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
