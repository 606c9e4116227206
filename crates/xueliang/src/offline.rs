//! What the offline subcommands (`user`, `camera`) share: a runtime, the
//! configured store opened as `serve` opens it, and audit entries by `cli`.

use anyhow::Context;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use xueliang_core::{Config, NewAuditEntry};
use xueliang_store::Store;

/// A single-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a command; an error is printed.
pub fn block_on(command: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    match runtime().and_then(|r| r.block_on(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xueliang: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configured database, made if missing (with its data directory).
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "[storage] data_dir: cannot create {}",
            config.storage.data_dir.display()
        )
    })?;
    xueliang_store::open(&config.storage.database_url())
        .await
        .context("[storage]")
}

/// An audit entry for a change made from the command line.
pub fn audit(
    action: &str,
    target_kind: &str,
    target_id: impl ToString,
    detail: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry::now("cli", action, target_kind, target_id, detail)
}
