//! The event store at scale (issue #17): fills a database of each backend
//! with a site's events (1,000 cameras in 20 villages over 90 days by
//! default), then measures, through the store's own API, event writes as the
//! pipeline makes them (insert at the start, end later) against what 1,000
//! busy cameras need, and the latency of the API's event queries against
//! the 10 ms p99 target. docs/performance.md, "Event store at 10 M events
//! (#17)", has the method, the assumptions and the figures.
//!
//! cargo bench -p xueliang-store --bench events -- --events 10000000 --backends sqlite,postgres
//!
//! PostgreSQL: a fresh database on the tests' server (`XUELIANG_TEST_POSTGRES`,
//! or the role scripts/setup.sh makes), dropped afterwards unless `--keep`.

#[path = "events/fill.rs"]
mod fill;
#[path = "events/load.rs"]
mod load;
#[path = "events/site.rs"]
mod site;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use load::{Filled, QueryFigures, Shape, WriteLoad};
use serde::Serialize;
use site::Site;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use xueliang_store::testing::TestDatabase;
use xueliang_store::Store;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    about = "Event store at scale: bulk fill, insert throughput and query latency per backend"
)]
struct Args {
    /// Events each database is filled with.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Backends to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<BackendName>,
    #[arg(long, default_value_t = 1_000)]
    cameras: usize,
    #[arg(long, default_value_t = 20)]
    villages: usize,
    #[arg(long, default_value_t = 5)]
    grids_per_village: usize,
    /// Days the fill's events are spread over (ending now).
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// Points of an object's track written at its end (the pipeline keeps up
    /// to 100; fewer keep the database small).
    #[arg(long, default_value_t = 10)]
    track_points: usize,
    /// Concurrent writers of the insert phase.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Length of the insert phase.
    #[arg(long, default_value_t = 10.0)]
    insert_seconds: f64,
    /// Snapshot size of the events written through the store (KiB).
    #[arg(long, default_value_t = 30)]
    snapshot_kib: usize,
    /// The need: one event per camera every this many seconds (busy hour).
    #[arg(long, default_value_t = 10.0)]
    camera_event_every_s: f64,
    /// Events/s written (with their ends) while the queries run; default:
    /// the need. 0: none.
    #[arg(long)]
    background_rate: Option<f64>,
    /// Times each query shape runs (after 5 rounds not counted).
    #[arg(long, default_value_t = 200)]
    repeats: usize,
    /// The query latency target (p99), ms.
    #[arg(long, default_value_t = 10.0)]
    target_ms: f64,
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Directory for the SQLite database (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the databases (and print how to measure them again).
    #[arg(long)]
    keep: bool,
    /// Measure this SQLite database (`sqlite://path`): filled first if empty;
    /// a database the bench filled before (same --events, --seed, --cameras,
    /// --villages, --days) is measured as it is, after the store's open has
    /// applied any new migration.
    #[arg(long)]
    sqlite_url: Option<String>,
    /// The same for PostgreSQL (`postgres://...`, an existing database).
    #[arg(long)]
    postgres_url: Option<String>,
    /// Leave out ANALYZE after the fill (the store itself never runs it on SQLite).
    #[arg(long)]
    no_analyze: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum BackendName {
    Sqlite,
    Postgres,
}

#[derive(Serialize)]
struct BackendFigures {
    backend: BackendName,
    events: u64,
    /// `None` when a filled database was measured again.
    fill: Option<fill::FillTimes>,
    /// Opening the store (its migrations; on a filled database, new indexes).
    open_s: f64,
    database_bytes: u64,
    inserts: load::InsertFigures,
    background_events: u64,
    background_errors: u64,
    /// Events a second the background writers reached (asked: the need).
    background_per_s: f64,
    queries: Vec<QueryFigures>,
    load_before: String,
    load_after: String,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    args: Args,
    backends: Vec<BackendFigures>,
}

/// Where a run's database lives, and what keeps it.
enum Database {
    Sqlite {
        url: String,
        dir: Option<tempfile::TempDir>,
    },
    Postgres {
        url: String,
        db: Option<TestDatabase>,
    },
}

impl Database {
    async fn new(backend: BackendName, args: &Args) -> anyhow::Result<Database> {
        Ok(match backend {
            BackendName::Sqlite => match &args.sqlite_url {
                Some(url) => Database::Sqlite {
                    url: url.clone(),
                    dir: None,
                },
                None => {
                    let dir = match &args.dir {
                        Some(d) => tempfile::tempdir_in(d)?,
                        None => tempfile::tempdir()?,
                    };
                    let url = format!("sqlite://{}", dir.path().join("events.db").display());
                    Database::Sqlite {
                        url,
                        dir: Some(dir),
                    }
                }
            },
            BackendName::Postgres => match &args.postgres_url {
                Some(url) => Database::Postgres {
                    url: url.clone(),
                    db: None,
                },
                None => {
                    let db = TestDatabase::create().await;
                    Database::Postgres {
                        url: db.url.clone(),
                        db: Some(db),
                    }
                }
            },
        })
    }

    fn url(&self) -> &str {
        match self {
            Database::Sqlite { url, .. } | Database::Postgres { url, .. } => url,
        }
    }

    async fn size(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Database::Sqlite { url, .. } => {
                let file = PathBuf::from(url.trim_start_matches("sqlite://"));
                let mut wal = file.clone().into_os_string();
                wal.push("-wal");
                std::fs::metadata(&file)?.len() + std::fs::metadata(wal).map_or(0, |m| m.len())
            }
            Database::Postgres { url, .. } => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await?;
                let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await?;
                n as u64
            }
        })
    }

    /// Keeps the database past the run; returns the flag that measures it again.
    fn keep(self) -> String {
        match self {
            Database::Sqlite { url, dir } => {
                if let Some(d) = dir {
                    let _ = d.keep();
                }
                format!("--sqlite-url {url}")
            }
            Database::Postgres { url, db } => {
                if let Some(db) = db {
                    std::mem::forget(db);
                }
                format!("--postgres-url {}", xueliang_store::redact(&url))
            }
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// The fill's time range ends at a whole minute: now's for a fresh fill;
/// for a filled database, the minute after its last fill event.
fn minute(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

async fn run(backend: BackendName, args: &Args, site: Arc<Site>) -> anyhow::Result<BackendFigures> {
    println!("== {backend:?}: {} events", args.events);
    let load_before = load_average();
    let db = Database::new(backend, args).await?;
    let t = Instant::now();
    let store: Arc<dyn Store> = xueliang_store::open(db.url())
        .await
        .with_context(|| format!("opening {}", xueliang_store::redact(db.url())))?;
    let open_s = t.elapsed().as_secs_f64();
    let (fill, end_ms) = match store.get_event(args.events as i64).await? {
        Some(last) => {
            let end_ms = minute(last.started_at.timestamp_millis()) + 60_000;
            println!("filled before: measuring it again (opened in {open_s:.1} s)");
            if !args.no_analyze {
                let s = fill::analyze(db.url()).await?;
                println!("analyze: {s:.1} s");
            }
            (None, end_ms)
        }
        None => {
            if store.get_event(1).await?.is_some() {
                bail!(
                    "{} holds fewer than {} events: use an empty database",
                    xueliang_store::redact(db.url()),
                    args.events
                );
            }
            let end_ms = minute(chrono::Utc::now().timestamp_millis());
            let plan = fill::Plan {
                site: site.clone(),
                seed: args.seed,
                total: args.events,
                days: args.days,
                end_ms,
                track_points: args.track_points,
                analyze: !args.no_analyze,
            };
            let times = match backend {
                BackendName::Sqlite => fill::sqlite(db.url(), &plan).await?,
                BackendName::Postgres => fill::postgres(db.url(), &plan).await?,
            };
            println!(
                "fill: {:.1} s ({:.0} events/s): rows {:.1} s, indexes {:.1} s, snapshots, outbox and hourly counts {:.1} s, {} {:.1} s",
                times.total_s,
                args.events as f64 / times.total_s,
                times.rows_s,
                times.indexes_s,
                times.snapshots_outbox_s,
                if args.no_analyze { "checkpoint" } else { "analyze" },
                times.analyze_s
            );
            (Some(times), end_ms)
        }
    };
    let database_bytes = db.size().await?;
    println!("database: {:.2} GB", database_bytes as f64 / 1e9);

    let need_per_s = args.cameras as f64 / args.camera_event_every_s;
    let write = WriteLoad {
        writers: args.writers,
        seconds: args.insert_seconds,
        snapshot_bytes: args.snapshot_kib * 1024,
        track_points: args.track_points,
        need_per_s,
        seed: args.seed,
    };
    let inserts = load::inserts(store.clone(), site.clone(), &write).await;
    println!(
        "inserts: {} writers, {:.1} s: {:.0} events/s ({} events, {} ends, {} errors); insert p50 {:.1} / p99 {:.1} ms, end p50 {:.1} / p99 {:.1} ms",
        inserts.writers,
        inserts.seconds,
        inserts.events_per_s,
        inserts.events,
        inserts.ends,
        inserts.errors,
        inserts.insert_p50_ms,
        inserts.insert_p99_ms,
        inserts.end_p50_ms,
        inserts.end_p99_ms
    );
    println!(
        "  need: {} cameras x 1 event / {} s = {:.0} events/s; measured / need = {:.1}",
        args.cameras, args.camera_event_every_s, need_per_s, inserts.ratio_to_need
    );

    let rate = args.background_rate.unwrap_or(need_per_s);
    let background = load::Background::start(store.clone(), site.clone(), &write, rate);
    let span = Filled {
        events: args.events,
        end_ms,
        days: args.days,
    };
    let t = Instant::now();
    let mix = load::QueryMix {
        shapes: &Shape::ALL,
        repeats: args.repeats,
        warmup: 5,
        seed: args.seed,
        target_ms: args.target_ms,
    };
    let queries = load::queries(&*store, &site, &span, &mix).await?;
    let (background_events, background_errors, background_per_s) = background.stop().await;
    println!(
        "queries: {} runs of each shape in {:.0} s, one at a time, while {} events ({} errors) were written: {background_per_s:.0} events/s of the {rate} asked",
        args.repeats,
        t.elapsed().as_secs_f64(),
        background_events,
        background_errors
    );
    println!(
        "  {:<30} {:>6} {:>8} {:>8} {:>8} {:>9}",
        "query", "rows", "p50 ms", "p99 ms", "max ms", "p99/target"
    );
    for q in &queries {
        println!(
            "  {:<30} {:>6.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2}{}",
            q.shape,
            q.rows,
            q.p50_ms,
            q.p99_ms,
            q.max_ms,
            q.p99_to_target,
            if q.p99_to_target > 1.0 {
                "  MISSED"
            } else {
                ""
            }
        );
    }
    drop(store);
    let load_after = load_average();
    println!("load average: {load_before} before, {load_after} after");
    if args.keep {
        println!("kept: measure again with {}", db.keep());
    }
    Ok(BackendFigures {
        backend,
        events: args.events,
        fill,
        open_s,
        database_bytes,
        inserts,
        background_events,
        background_errors,
        background_per_s,
        queries,
        load_before,
        load_after,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine = machine();
    println!("{machine}; load average {}", load_average());
    let site = Arc::new(Site::new(
        args.seed,
        args.cameras,
        args.villages,
        args.grids_per_village,
    ));
    let mut report = Report {
        machine,
        args: args.clone(),
        backends: Vec::new(),
    };
    for &backend in &args.backends {
        report
            .backends
            .push(run(backend, &args, site.clone()).await?);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
