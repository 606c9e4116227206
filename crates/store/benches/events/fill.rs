//! The fill: the site's events written in bulk straight into a database the
//! store made (its migrations), in the columns and encodings the store's own
//! writes use (`insert_event`, `end_event`, the workflow steps; see
//! src/sqlite.rs, src/postgres.rs and src/rows.rs). Setup, not measurement:
//! the events table's secondary indexes are dropped and made again after
//! the rows (their definitions read back from the database, so a new
//! migration's index is made too), then every event but the health events
//! gets a snapshot row (a 4-byte stand-in for the JPEG) and every event its
//! alert outbox row (routed), then the planner's statistics.

use crate::site::{Fill, Row, Site};
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{Connection, Executor, PgConnection, QueryBuilder, Sqlite, SqliteConnection};
use std::str::FromStr;
use std::time::Instant;
use tokio::sync::mpsc;
use xueliang_core::EventStatus;
use xueliang_store::RECOUNT_EVENTS;

/// Rows per message from the generating thread.
const CHUNK: usize = 10_000;
/// Rows per multi-row INSERT on SQLite (24 columns; SQLite takes 32766 parameters).
const SQLITE_ROWS_PER_INSERT: usize = 1_000;
/// Rows per transaction (SQLite) or COPY (PostgreSQL).
const ROWS_PER_COMMIT: usize = 200_000;

const COLUMNS: &str = "id, camera_id, village, grid, kind, label, score, started_at, ended_at, \
     status, detail, frame_width, frame_height, boxes, recorded_at, zone, rule, object_id, track, \
     workflow, assignee, workflow_at, workflow_by, keep";

/// The stand-in for a snapshot: a JPEG's start and end markers.
pub const SNAPSHOT_STANDIN: &str = "FFD8FFD9";

/// How long each part of the fill took, seconds.
#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct FillTimes {
    pub rows_s: f64,
    pub indexes_s: f64,
    pub snapshots_outbox_s: f64,
    pub analyze_s: f64,
    pub total_s: f64,
}

/// The site's rows, made on a thread of their own (generating them costs
/// about as much as writing them) and handed over in chunks.
fn generate(
    site: std::sync::Arc<Site>,
    seed: u64,
    total: u64,
    days: u32,
    end_ms: i64,
    track_points: usize,
) -> mpsc::Receiver<Vec<Row>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::Builder::new()
        .name("fill-rows".into())
        .spawn(move || {
            let mut rows = Fill::new(&site, seed, total, days, end_ms, track_points);
            loop {
                let chunk: Vec<Row> = rows.by_ref().take(CHUNK).collect();
                if chunk.is_empty() || tx.blocking_send(chunk).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the row generator");
    rx
}

pub struct Plan {
    pub site: std::sync::Arc<Site>,
    pub seed: u64,
    pub total: u64,
    pub days: u32,
    pub end_ms: i64,
    pub track_points: usize,
    pub analyze: bool,
}

fn progress(done: u64, total: u64, started: Instant) {
    if done % 1_000_000 < CHUNK as u64 || done == total {
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "  {done} / {total} rows, {s:.0} s ({:.0} rows/s)",
            done as f64 / s
        );
    }
}

pub async fn sqlite(url: &str, plan: &Plan) -> anyhow::Result<FillTimes> {
    let all = Instant::now();
    let options = SqliteConnectOptions::from_str(url)?
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-524288")
        .pragma("threads", "2");
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await?;
    for (name, _) in &indexes {
        conn.execute(format!("DROP INDEX {name}").as_str()).await?;
    }
    // The hourly counts' triggers go too; the counts are made after the rows.
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
    )
    .fetch_all(&mut conn)
    .await?;
    for (name, _) in &triggers {
        conn.execute(format!("DROP TRIGGER {name}").as_str())
            .await?;
    }
    let mut times = FillTimes::default();
    let t = Instant::now();
    let mut rx = generate(
        plan.site.clone(),
        plan.seed,
        plan.total,
        plan.days,
        plan.end_ms,
        plan.track_points,
    );
    let mut done = 0u64;
    let mut tx = conn.begin().await?;
    let mut in_tx = 0;
    while let Some(chunk) = rx.recv().await {
        for rows in chunk.chunks(SQLITE_ROWS_PER_INSERT) {
            let mut b: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("INSERT INTO events ({COLUMNS}) "));
            b.push_values(rows, |mut v, r| {
                let cam = &plan.site.cameras[r.camera];
                v.push_bind(r.id)
                    .push_bind(cam.id.as_str())
                    .push_bind(plan.site.villages[cam.village].as_str())
                    .push_bind(plan.site.grids[cam.grid].as_str())
                    .push_bind(r.kind.as_str())
                    .push_bind(r.label)
                    .push_bind(r.score as f64)
                    .push_bind(r.started_at)
                    .push_bind(r.ended_at)
                    .push_bind(status(r))
                    .push_bind(r.detail.as_deref())
                    .push_bind(r.width as i64)
                    .push_bind(r.height as i64)
                    .push_bind(r.boxes.as_str())
                    .push_bind(r.recorded_at)
                    .push_bind(r.zone)
                    .push_bind(r.rule)
                    .push_bind(r.object_id.map(|v| v as i64))
                    .push_bind(r.track.as_deref())
                    .push_bind(r.workflow.as_str())
                    .push_bind(r.assignee.as_deref())
                    .push_bind(r.workflow_at)
                    .push_bind(r.workflow_by.as_deref())
                    .push_bind(r.keep as i64);
            });
            b.build().execute(&mut *tx).await?;
        }
        done += chunk.len() as u64;
        in_tx += chunk.len();
        if in_tx >= ROWS_PER_COMMIT {
            tx.commit().await?;
            tx = conn.begin().await?;
            in_tx = 0;
        }
        progress(done, plan.total, t);
    }
    tx.commit().await?;
    times.rows_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for (name, sql) in &indexes {
        let i = Instant::now();
        conn.execute(sql.as_str()).await?;
        eprintln!("  index {name}: {:.1} s", i.elapsed().as_secs_f64());
    }
    times.indexes_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut tx = conn.begin().await?;
    tx.execute(
        format!(
            "INSERT INTO snapshots (event_id, jpeg) SELECT id, X'{SNAPSHOT_STANDIN}' FROM events \
             WHERE label <> '{}'",
            xueliang_core::HEALTH_LABEL
        )
        .as_str(),
    )
    .await?;
    tx.execute(
        "INSERT INTO alert_outbox (event_id, created_at, alert_id, processed_at) \
         SELECT id, recorded_at, NULL, recorded_at + 20 FROM events",
    )
    .await?;
    tx.execute(RECOUNT_EVENTS).await?;
    for (_, sql) in &triggers {
        tx.execute(sql.as_str()).await?;
    }
    tx.commit().await?;
    times.snapshots_outbox_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    if plan.analyze {
        conn.execute("ANALYZE").await?;
    }
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    times.analyze_s = t.elapsed().as_secs_f64();
    conn.close().await?;
    times.total_s = all.elapsed().as_secs_f64();
    Ok(times)
}

pub async fn postgres(url: &str, plan: &Plan) -> anyhow::Result<FillTimes> {
    let all = Instant::now();
    let mut conn = PgConnection::connect(url).await?;
    conn.execute("SET synchronous_commit = off").await?;
    conn.execute("SET maintenance_work_mem = '1GB'").await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
         AND tablename = 'events' AND indexname <> 'events_pkey'",
    )
    .fetch_all(&mut conn)
    .await?;
    for (name, _) in &indexes {
        conn.execute(format!("DROP INDEX {name}").as_str()).await?;
    }
    // The hourly counts' trigger is off during the load; the counts are made
    // after the rows.
    conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        .await?;
    let mut times = FillTimes::default();
    let t = Instant::now();
    let mut rx = generate(
        plan.site.clone(),
        plan.seed,
        plan.total,
        plan.days,
        plan.end_ms,
        plan.track_points,
    );
    let mut done = 0u64;
    let mut buf = String::new();
    let statement = format!("COPY events ({COLUMNS}) FROM STDIN");
    let mut next = rx.recv().await;
    while next.is_some() {
        let mut copy = conn.copy_in_raw(&statement).await?;
        let mut in_copy = 0;
        while let Some(chunk) = next.take() {
            buf.clear();
            for r in &chunk {
                copy_line(&mut buf, &plan.site, r);
            }
            copy.send(buf.as_bytes()).await?;
            done += chunk.len() as u64;
            in_copy += chunk.len();
            progress(done, plan.total, t);
            next = rx.recv().await;
            if in_copy >= ROWS_PER_COMMIT {
                break;
            }
        }
        copy.finish().await?;
    }
    // Ids were given: the identity goes on after the last.
    conn.execute(
        "SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT MAX(id) FROM events))",
    )
    .await?;
    times.rows_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for (name, sql) in &indexes {
        let i = Instant::now();
        conn.execute(sql.as_str()).await?;
        eprintln!("  index {name}: {:.1} s", i.elapsed().as_secs_f64());
    }
    times.indexes_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    conn.execute(
        format!(
            "INSERT INTO snapshots (event_id, jpeg) SELECT id, '\\x{SNAPSHOT_STANDIN}'::bytea FROM events \
             WHERE label <> '{}'",
            xueliang_core::HEALTH_LABEL
        )
        .as_str(),
    )
    .await?;
    conn.execute(
        "INSERT INTO alert_outbox (event_id, created_at, alert_id, processed_at) \
         SELECT id, recorded_at, NULL, recorded_at + 20 FROM events",
    )
    .await?;
    conn.execute(RECOUNT_EVENTS).await?;
    conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
        .await?;
    times.snapshots_outbox_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    // What autovacuum does to an insert-only table on a live site: the
    // statistics, and the visibility map that index-only scans read.
    if plan.analyze {
        conn.execute("VACUUM (ANALYZE) events").await?;
        conn.execute("VACUUM (ANALYZE) snapshots").await?;
        conn.execute("VACUUM (ANALYZE) alert_outbox").await?;
        conn.execute("VACUUM (ANALYZE) event_counts").await?;
    }
    times.analyze_s = t.elapsed().as_secs_f64();
    conn.close().await?;
    times.total_s = all.elapsed().as_secs_f64();
    Ok(times)
}

/// Refreshes the planner's statistics of a filled database (after a new
/// migration's indexes); seconds taken.
pub async fn analyze(url: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    if xueliang_store::is_postgres(url) {
        let mut conn = PgConnection::connect(url).await?;
        conn.execute("ANALYZE events").await?;
        conn.close().await?;
    } else {
        let mut conn = SqliteConnection::connect(url).await?;
        conn.execute("ANALYZE").await?;
        conn.close().await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

fn status(r: &Row) -> &'static str {
    match r.ended_at {
        Some(_) => EventStatus::Ended.as_str(),
        None => EventStatus::Active.as_str(),
    }
}

/// One row of COPY's text format.
fn copy_line(buf: &mut String, site: &Site, r: &Row) {
    use std::fmt::Write;
    let cam = &site.cameras[r.camera];
    let text = |buf: &mut String, v: Option<&str>| {
        match v {
            None => buf.push_str("\\N"),
            Some(s) => {
                for c in s.chars() {
                    match c {
                        '\\' => buf.push_str("\\\\"),
                        '\t' => buf.push_str("\\t"),
                        '\n' => buf.push_str("\\n"),
                        '\r' => buf.push_str("\\r"),
                        c => buf.push(c),
                    }
                }
            }
        }
        buf.push('\t');
    };
    let int = |buf: &mut String, v: Option<i64>| {
        match v {
            None => buf.push_str("\\N"),
            Some(v) => write!(buf, "{v}").expect("to a string"),
        }
        buf.push('\t');
    };
    int(buf, Some(r.id));
    text(buf, Some(&cam.id));
    text(buf, Some(&site.villages[cam.village]));
    text(buf, Some(&site.grids[cam.grid]));
    text(buf, Some(r.kind.as_str()));
    text(buf, Some(r.label));
    write!(buf, "{}\t", r.score as f64).expect("to a string");
    int(buf, Some(r.started_at));
    int(buf, r.ended_at);
    text(buf, Some(status(r)));
    text(buf, r.detail.as_deref());
    int(buf, Some(r.width as i64));
    int(buf, Some(r.height as i64));
    text(buf, Some(&r.boxes));
    int(buf, Some(r.recorded_at));
    text(buf, r.zone);
    text(buf, r.rule);
    int(buf, r.object_id.map(|v| v as i64));
    text(buf, r.track.as_deref());
    text(buf, Some(r.workflow.as_str()));
    text(buf, r.assignee.as_deref());
    int(buf, r.workflow_at);
    text(buf, r.workflow_by.as_deref());
    int(buf, Some(r.keep as i64));
    // The last column's tab ends the line instead.
    buf.pop();
    buf.push('\n');
}
