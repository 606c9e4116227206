//! `xueliang migrate --from sqlite://... --to postgres://...`: moves a site
//! from the embedded database to PostgreSQL (docs/deployment.md, "Moving to
//! PostgreSQL"). The service must be stopped while it runs.

use anyhow::{bail, Context};
use std::process::ExitCode;
use xueliang_store::{is_postgres, redact, PgStore, SqliteStore};

pub fn run(from: &str, to: &str) -> ExitCode {
    crate::offline::block_on(copy(from, to))
}

async fn copy(from: &str, to: &str) -> anyhow::Result<()> {
    if is_postgres(from) || !is_postgres(to) {
        bail!("migrate copies a SQLite database (--from sqlite://<file>) into PostgreSQL (--to postgres://...)");
    }
    let source = SqliteStore::open_existing(from)
        .await
        .context("--from")?
        .with_context(|| format!("--from: no database at {from}"))?;
    let target = PgStore::open(to).await.context("--to")?;
    let started = std::time::Instant::now();
    let copied = xueliang_store::copy::copy_sqlite_to_postgres(&source, &target, |table, rows| {
        println!("{table:>16}: {rows} rows")
    })
    .await
    .context("nothing was copied")?;
    let rows: u64 = copied.iter().map(|(_, n)| n).sum();
    println!(
        "copied {rows} rows in {:.1} s from {from} to {}; point [storage] url at it and start the service",
        started.elapsed().as_secs_f64(),
        redact(to)
    );
    Ok(())
}
