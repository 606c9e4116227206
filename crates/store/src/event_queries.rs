//! The event listing and the event counts, written once for both backends
//! (their SQL is the same but for placeholders, which [`QueryBuilder`]
//! writes).
//!
//! A listing selects the page's ids first and only then reads the columns of
//! those rows: a range of one hour deep in the past is ~4,600 rows that must
//! be sorted by id, and reading every column of each (three subqueries
//! included) before the sort made it 60 ms at 10 M events on SQLite and 1.5 s
//! on PostgreSQL; ids alone come from the indexes.
//!
//! Counts come from `event_counts` (events per UTC hour, village and kind,
//! kept by triggers) or, without a village in the query, `site_event_counts`
//! (per hour and kind) where the query allows: filters and groups among
//! village and kind, buckets of whole hours in a zone a whole number of hours
//! from UTC. The parts of the range before its first and after its last
//! whole hour are counted from the events, and the parts added up.

use crate::rows::{
    event_from_row, millis, push_filters, push_village_filters, time, Fields, COLUMNS,
};
use crate::{StoreError, MAX_PAGE};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{Database, PgPool, QueryBuilder, SqlitePool};
use std::collections::BTreeMap;
use xueliang_core::{Bucket, Event, EventQuery, StatsKey, StatsQuery, StatsRow};

const HOUR_MS: i64 = 3_600_000;

/// A stats row's bucket and group keys, as they sort.
type RowKey = (Option<DateTime<Utc>>, Vec<Option<String>>);
/// Since (inclusive) and until (exclusive).
type TimeRange = (DateTime<Utc>, DateTime<Utc>);

/// Counts every stored event into `event_counts` again, as the migrations
/// that made the table did (for a bulk load that went around its triggers).
pub const RECOUNT_EVENTS: &str = "DELETE FROM event_counts; \
    INSERT INTO event_counts (hour, village, kind, n) \
    SELECT (started_at / 3600000) * 3600000, COALESCE(village, ''), kind, COUNT(*) \
    FROM events GROUP BY 1, 2, 3; \
    DELETE FROM site_event_counts; \
    INSERT INTO site_event_counts (hour, kind, n) \
    SELECT hour, kind, SUM(n) FROM event_counts GROUP BY 1, 2";

/// A pool that runs a built query: each backend's own, where the query's
/// argument lifetimes are concrete.
pub(crate) trait Rows: Sync {
    type DB: Database;
    /// Whether the planner works without statistics (SQLite: the store never
    /// runs ANALYZE), so a query must not leave it the choice of a bad index.
    const PLANS_WITHOUT_STATISTICS: bool;
    fn rows<'a>(
        &'a self,
        b: QueryBuilder<'a, Self::DB>,
    ) -> BoxFuture<'a, Result<Vec<<Self::DB as Database>::Row>, sqlx::Error>>;
}

impl Rows for SqlitePool {
    type DB = sqlx::Sqlite;
    const PLANS_WITHOUT_STATISTICS: bool = true;
    fn rows<'a>(
        &'a self,
        mut b: QueryBuilder<'a, sqlx::Sqlite>,
    ) -> BoxFuture<'a, Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error>> {
        async move { b.build().fetch_all(self).await }.boxed()
    }
}

impl Rows for PgPool {
    type DB = sqlx::Postgres;
    const PLANS_WITHOUT_STATISTICS: bool = false;
    fn rows<'a>(
        &'a self,
        mut b: QueryBuilder<'a, sqlx::Postgres>,
    ) -> BoxFuture<'a, Result<Vec<sqlx::postgres::PgRow>, sqlx::Error>> {
        async move { b.build().fetch_all(self).await }.boxed()
    }
}

/// One page of events, newest first.
pub(crate) async fn list_events<P>(pool: &P, q: &EventQuery) -> Result<Vec<Event>, StoreError>
where
    P: Rows,
    <P::DB as Database>::Row: Fields,
    for<'q> String: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
    for<'q> i64: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
    for<'q> f64: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
{
    let mut b: QueryBuilder<P::DB> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM events WHERE id IN (SELECT id FROM events WHERE 1 = 1"
    ));
    push_filters(&mut b, q);
    if let Some(v) = q.before_id {
        b.push(" AND id < ").push_bind(v);
    }
    b.push(" ORDER BY id DESC LIMIT ")
        .push_bind(q.limit.clamp(1, MAX_PAGE + 1) as i64)
        .push(") ORDER BY id DESC");
    let rows = pool.rows(b).await?;
    rows.iter().map(event_from_row).collect()
}

/// The counts a stats query asks for, in the order of its bucket and then its
/// keys as grouped (events of cameras without a village first).
pub(crate) async fn event_stats<P>(pool: &P, q: &StatsQuery) -> Result<Vec<StatsRow>, StoreError>
where
    P: Rows,
    <P::DB as Database>::Row: Fields,
    for<'q> String: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
    for<'q> i64: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
    for<'q> f64: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
{
    let mut parts = Vec::new();
    match CountedRange::of(q) {
        None => parts.push(counted_from_events(pool, q, false).await?),
        Some(range) => {
            for (since, until) in range.edges()? {
                let mut edge = q.clone();
                edge.events.since = Some(since);
                edge.events.until = Some(until);
                let time_first = P::PLANS_WITHOUT_STATISTICS;
                parts.push(counted_from_events(pool, &edge, time_first).await?);
            }
            let rows = pool.rows(hourly_counts(q, range.hours)).await?;
            parts.push(
                rows.iter()
                    .map(|r| stats_row(r, q))
                    .collect::<Result<_, _>>()?,
            );
        }
    }
    Ok(merge(q, parts))
}

/// Counts from the events table. `time_first`: the range is short (an edge
/// of under an hour) and the planner must read it through the time index:
/// the village filters go through `COALESCE`, which no index serves. Without
/// statistics SQLite otherwise takes the village's index for an equality and
/// walks the village's whole history (p50 59 ms at 10 M events) instead of
/// the hour's few thousand rows.
async fn counted_from_events<P>(
    pool: &P,
    q: &StatsQuery,
    time_first: bool,
) -> Result<Vec<StatsRow>, StoreError>
where
    P: Rows,
    <P::DB as Database>::Row: Fields,
    for<'q> String: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
    for<'q> i64: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
    for<'q> f64: sqlx::Encode<'q, P::DB> + sqlx::Type<P::DB>,
{
    let (select, groups) = grouped_columns(q, "started_at", |key| key.column().to_owned());
    let mut b: QueryBuilder<P::DB> = QueryBuilder::new(format!(
        "SELECT {select}COUNT(*) AS n FROM events WHERE 1 = 1"
    ));
    if time_first {
        let mut rest = q.events.clone();
        push_village_filters(&mut b, "COALESCE(village, '')", &rest);
        (rest.village, rest.villages) = (None, None);
        push_filters(&mut b, &rest);
    } else {
        push_filters(&mut b, &q.events);
    }
    if !groups.is_empty() {
        b.push(format!(" GROUP BY {groups}"));
    }
    let rows = pool.rows(b).await?;
    rows.iter().map(|r| stats_row(r, q)).collect()
}

/// The count of `event_counts` rows in `hours` (start inclusive, end
/// exclusive; `None` open), filtered and grouped as the query asks.
fn hourly_counts<'a, DB>(q: &StatsQuery, hours: (Option<i64>, Option<i64>)) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let (select, groups) = grouped_columns(q, "hour", |key| match key {
        StatsKey::Village => "NULLIF(village, '') AS village".to_owned(),
        other => other.column().to_owned(),
    });
    let e = &q.events;
    let by_village =
        e.village.is_some() || e.villages.is_some() || q.group_by.contains(&StatsKey::Village);
    let table = if by_village {
        "event_counts"
    } else {
        "site_event_counts"
    };
    let mut b: QueryBuilder<DB> = QueryBuilder::new(format!(
        "SELECT {select}CAST(SUM(n) AS BIGINT) AS n FROM {table} WHERE 1 = 1"
    ));
    // An empty scope sees nothing; '' (no village) is in no scope.
    push_village_filters(&mut b, "village", e);
    if let Some(v) = e.kind {
        b.push(" AND kind = ").push_bind(v.as_str().to_owned());
    }
    if let Some(from) = hours.0 {
        b.push(" AND hour >= ").push_bind(from);
    }
    if let Some(to) = hours.1 {
        b.push(" AND hour < ").push_bind(to);
    }
    if !groups.is_empty() {
        b.push(format!(" GROUP BY {groups}"));
    }
    b.push(" HAVING SUM(n) > 0");
    b
}

/// The grouped columns (`expression AS name, ` each, the bucket first, in
/// local time) and the GROUP BY list, with times read from `time_column`.
fn grouped_columns(
    q: &StatsQuery,
    time_column: &str,
    column: impl Fn(StatsKey) -> String,
) -> (String, String) {
    let offset_ms = q.utc_offset_s as i64 * 1000;
    let mut select = String::new();
    let mut groups = Vec::new();
    if let Some(bucket) = q.bucket {
        let size = bucket.millis();
        select.push_str(&format!(
            "(({time_column} + {offset_ms}) / {size}) * {size} - {offset_ms} AS bucket, "
        ));
        groups.push("bucket".to_owned());
    }
    for key in &q.group_by {
        select.push_str(&format!("{}, ", column(*key)));
        groups.push(key.column().to_owned());
    }
    (select, groups.join(", "))
}

fn stats_row(r: &impl Fields, q: &StatsQuery) -> Result<StatsRow, StoreError> {
    let grouped = |key| q.group_by.contains(&key);
    Ok(StatsRow {
        bucket: match q.bucket {
            Some(_) => Some(time(r.get("bucket")?)?),
            None => None,
        },
        kind: grouped(StatsKey::Kind).then(|| r.get("kind")).transpose()?,
        village: grouped(StatsKey::Village)
            .then(|| r.get::<Option<String>>("village"))
            .transpose()?,
        camera_id: grouped(StatsKey::Camera)
            .then(|| r.get("camera_id"))
            .transpose()?,
        count: r.get::<i64>("n")?.max(0) as u64,
    })
}

/// The parts' counts added up per group, in the order of the bucket and the
/// keys as grouped (`None` first, text by its bytes), the same on both
/// backends whatever their collation.
/// A query without groups or buckets answers one row, a count of 0 too.
fn merge(q: &StatsQuery, parts: Vec<Vec<StatsRow>>) -> Vec<StatsRow> {
    let total = q.group_by.is_empty() && q.bucket.is_none();
    let mut sum: BTreeMap<RowKey, StatsRow> = BTreeMap::new();
    for row in parts.into_iter().flatten() {
        sum.entry((row.bucket, group_key(q, &row)))
            .and_modify(|r| r.count += row.count)
            .or_insert(row);
    }
    if total && sum.is_empty() {
        return vec![StatsRow {
            bucket: None,
            kind: None,
            village: None,
            camera_id: None,
            count: 0,
        }];
    }
    sum.into_values().filter(|r| total || r.count > 0).collect()
}

fn group_key(q: &StatsQuery, row: &StatsRow) -> Vec<Option<String>> {
    q.group_by
        .iter()
        .map(|k| match k {
            StatsKey::Kind => row.kind.clone(),
            StatsKey::Village => row.village.clone().flatten(),
            StatsKey::Camera => row.camera_id.clone(),
        })
        .collect()
}

/// A query's range split where `event_counts` can answer it: whole hours
/// from the table, the hour fractions at either end from the events.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CountedRange {
    /// The query's own ends (`None` open).
    since: Option<i64>,
    until: Option<i64>,
    /// The whole hours within them.
    hours: (Option<i64>, Option<i64>),
}

impl CountedRange {
    /// `None` when the table cannot answer the query: a filter or group it
    /// does not keep, minute buckets, a zone not a whole number of hours
    /// from UTC, or no whole hour in the range.
    fn of(q: &StatsQuery) -> Option<CountedRange> {
        let e = &q.events;
        let unkept_filter = e.camera_id.is_some()
            || e.grid.is_some()
            || e.label.is_some()
            || e.zone.is_some()
            || e.rule.is_some()
            || e.status.is_some()
            || e.workflow.is_some()
            || e.min_score.is_some();
        let whole_hours = match q.bucket {
            None => true,
            Some(Bucket::Minute) => false,
            Some(Bucket::Hour | Bucket::Day) => q.utc_offset_s % 3600 == 0,
        };
        if unkept_filter || q.group_by.contains(&StatsKey::Camera) || !whole_hours {
            return None;
        }
        let since = e.since.map(millis);
        // An end after now bounds nothing stored (events are stored once
        // they start): the newest hours come whole from the counts instead
        // of from the newest rows, which PostgreSQL reads from the heap until
        // a vacuum marks their pages all-visible (the current hour of a busy
        // site: p50 7.6 ms at 10 M events for a week's counts).
        let now = Utc::now().timestamp_millis();
        let until = e.until.map(millis).filter(|&t| t <= now);
        let hours = (
            since.map(|t| -(-t).div_euclid(HOUR_MS) * HOUR_MS),
            until.map(|t| t.div_euclid(HOUR_MS) * HOUR_MS),
        );
        if let (Some(from), Some(to)) = hours {
            if from >= to {
                return None;
            }
        }
        Some(CountedRange {
            since,
            until,
            hours,
        })
    }

    /// The ranges before the first and after the last whole hour that are
    /// not empty, to count from the events.
    fn edges(&self) -> Result<Vec<TimeRange>, StoreError> {
        let mut edges = Vec::new();
        if let (Some(since), Some(from)) = (self.since, self.hours.0) {
            if since < from {
                edges.push((time(since)?, time(from)?));
            }
        }
        if let (Some(until), Some(to)) = (self.until, self.hours.1) {
            if to < until {
                edges.push((time(to)?, time(until)?));
            }
        }
        Ok(edges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn q(since: Option<(u32, u32)>, until: Option<(u32, u32)>) -> StatsQuery {
        let at = |(h, m)| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        StatsQuery {
            events: EventQuery {
                since: since.map(at),
                until: until.map(at),
                ..Default::default()
            },
            group_by: vec![StatsKey::Kind, StatsKey::Village],
            bucket: Some(Bucket::Day),
            utc_offset_s: 8 * 3600,
        }
    }

    fn hour(h: i64) -> i64 {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
            + h * HOUR_MS
    }

    #[test]
    fn whole_hours_come_from_the_counts_and_the_ends_from_the_events() {
        let r = CountedRange::of(&q(Some((5, 17)), Some((9, 41)))).unwrap();
        assert_eq!(r.hours, (Some(hour(6)), Some(hour(9))));
        let edges = r.edges().unwrap();
        assert_eq!(edges.len(), 2);
        assert_eq!(millis(edges[0].0), hour(5) + 17 * 60_000);
        assert_eq!(millis(edges[0].1), hour(6));
        assert_eq!(millis(edges[1].0), hour(9));

        let aligned = CountedRange::of(&q(Some((5, 0)), Some((9, 0)))).unwrap();
        assert_eq!(aligned.hours, (Some(hour(5)), Some(hour(9))));
        assert!(aligned.edges().unwrap().is_empty());

        let open = CountedRange::of(&q(None, None)).unwrap();
        assert_eq!(open.hours, (None, None));
    }

    #[test]
    fn what_the_counts_do_not_keep_is_counted_from_the_events() {
        assert_eq!(CountedRange::of(&q(Some((5, 10)), Some((5, 50)))), None);
        assert_eq!(CountedRange::of(&q(Some((5, 10)), Some((6, 50)))), None);
        let mut by_camera = q(None, None);
        by_camera.group_by.push(StatsKey::Camera);
        assert_eq!(CountedRange::of(&by_camera), None);
        let mut label = q(None, None);
        label.events.label = Some("person".into());
        assert_eq!(CountedRange::of(&label), None);
        let mut india = q(None, None);
        india.utc_offset_s = 19_800;
        assert_eq!(CountedRange::of(&india), None);
        let mut minutes = q(None, None);
        minutes.bucket = Some(Bucket::Minute);
        assert_eq!(CountedRange::of(&minutes), None);
    }
}
