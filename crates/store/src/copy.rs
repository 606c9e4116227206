//! `xueliang migrate`: copies a SQLite store into an empty PostgreSQL one,
//! every table and every row with its id, in one PostgreSQL transaction (a
//! failure leaves the target as empty as it was), then checks the row
//! counts before committing.

use crate::{PgStore, SqliteStore, StoreError};
use sqlx::{Postgres, QueryBuilder, Row};

/// Every table, parents before the tables that refer to them.
pub const TABLES: &[&str] = &[
    "events",
    "snapshots",
    "clips",
    "health_samples",
    "alert_outbox",
    "alerts",
    "alert_deliveries",
    "alert_attempts",
    "line_crossings",
    "users",
    "tokens",
    "audit_log",
    "cameras",
];

/// Rows per insert for tables of small rows; pictures and clips (up to
/// hundreds of KB and MB) go a few at a time.
const BATCH: i64 = 500;
const MEDIA_BATCH: i64 = 8;

/// A column and how PostgreSQL types it.
struct Column {
    name: String,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Integer,
    Real,
    Text,
    Bytes,
}

/// Copies every row of `from` into `to`, which must hold no rows;
/// `progress(table, rows)` after each table. Returns the rows per table.
pub async fn copy_sqlite_to_postgres(
    from: &SqliteStore,
    to: &PgStore,
    mut progress: impl FnMut(&str, u64),
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    for table in TABLES {
        let any: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
            .fetch_one(&to.pool)
            .await?;
        if any {
            return Err(StoreError::Conflict(format!(
                "the target database already has rows in `{table}`; migrate copies into an \
                 empty database only (nothing was copied)"
            )));
        }
    }
    let mut tx = to.pool.begin().await?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let columns = columns(&mut tx, table).await?;
        let batch = if columns.iter().any(|c| matches!(c.kind, Kind::Bytes)) {
            MEDIA_BATCH
        } else {
            BATCH
        };
        let list = columns
            .iter()
            .map(|c| quoted(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let (mut after, mut rows) = (i64::MIN, 0u64);
        loop {
            let page = sqlx::query(&format!(
                "SELECT rowid AS xl_rowid, {list} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            ))
            .bind(after)
            .bind(batch)
            .fetch_all(&from.pool)
            .await?;
            let Some(last) = page.last() else { break };
            after = last.try_get("xl_rowid")?;
            let mut insert: QueryBuilder<Postgres> =
                QueryBuilder::new(format!("INSERT INTO {table} ({list}) "));
            let mut failed = None;
            insert.push_values(&page, |mut b, row| {
                for (i, c) in columns.iter().enumerate() {
                    // Column 0 is the rowid. SQLite's types are per value,
                    // so read each as the target column's type.
                    let i = i + 1;
                    let bound = match c.kind {
                        Kind::Integer => row.try_get_unchecked::<Option<i64>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                        Kind::Real => row.try_get_unchecked::<Option<f64>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                        Kind::Text => row.try_get_unchecked::<Option<String>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                        Kind::Bytes => row.try_get_unchecked::<Option<Vec<u8>>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                    };
                    if let Err(e) = bound {
                        failed.get_or_insert(e);
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
            insert.build().execute(&mut *tx).await?;
            rows += page.len() as u64;
        }
        let source: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&from.pool)
            .await?;
        let target: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await?;
        if source != target || target as u64 != rows {
            return Err(StoreError::Corrupt(format!(
                "`{table}`: {source} rows in the source, {target} copied; nothing was committed \
                 (was the service still writing? stop it first)"
            )));
        }
        // New rows continue after the copied ids.
        if columns
            .iter()
            .any(|c| c.name == "id" && matches!(c.kind, Kind::Integer))
        {
            let sequence: Option<String> =
                sqlx::query_scalar("SELECT pg_get_serial_sequence($1, 'id')")
                    .bind(*table)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(sequence) = sequence {
                sqlx::query(&format!(
                    "SELECT setval($1, COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                ))
                .bind(sequence)
                .execute(&mut *tx)
                .await?;
            }
        }
        progress(table, rows);
        copied.push((*table, rows));
    }
    tx.commit().await?;
    Ok(copied)
}

/// The columns of `table` in the PostgreSQL schema, in order.
async fn columns(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    table: &str,
) -> Result<Vec<Column>, StoreError> {
    let rows = sqlx::query(
        "SELECT column_name::TEXT AS name, data_type::TEXT AS type FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name")?;
            let kind = match r.try_get::<String, _>("type")?.as_str() {
                "bigint" | "integer" | "smallint" => Kind::Integer,
                "double precision" | "real" => Kind::Real,
                "text" => Kind::Text,
                "bytea" => Kind::Bytes,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "`{table}.{name}`: no copy for the type {other}"
                    )))
                }
            };
            Ok(Column { name, kind })
        })
        .collect()
}

/// A column name as both databases read it (`user` is reserved in PostgreSQL).
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}
