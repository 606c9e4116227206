//! What both backends share: turning rows into the core's types, the
//! column lists those read, and the event filters. The two schemas have the
//! same columns with the same meaning (BIGINT/INTEGER milliseconds, 0/1
//! flags, JSON text), so one mapping serves both.

use crate::alerts::{parse_level, parse_status, Alert, Delivery};
use crate::cameras::StoredCamera;
use crate::StoreError;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, Postgres, QueryBuilder, Row, Sqlite};
use xueliang_core::{
    AuditEntry, AvailabilityGroup, AvailabilityRow, BoxRecord, Bucket, ClipInfo, Crossing,
    CrossingCount, Event, EventQuery, HealthSample, Role, TokenInfo, TokenKind, User, Workflow,
};

/// A column value both backends can decode.
pub(crate) trait Column:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A row of either backend, read by column name.
pub(crate) trait Fields {
    fn get<T: Column>(&self, column: &str) -> Result<T, sqlx::Error>;
}

impl Fields for SqliteRow {
    fn get<T: Column>(&self, column: &str) -> Result<T, sqlx::Error> {
        self.try_get(column)
    }
}

impl Fields for PgRow {
    fn get<T: Column>(&self, column: &str) -> Result<T, sqlx::Error> {
        self.try_get(column)
    }
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("time {ms} out of range")))
}

pub(crate) fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

pub(crate) const COLUMNS: &str = "id, camera_id, village, grid, kind, label, score, started_at, ended_at, status, detail, recorded_at, zone, rule, object_id, track, \
     frame_width, frame_height, boxes, workflow, assignee, workflow_at, workflow_by, keep, COALESCE((SELECT TRUE FROM snapshots s WHERE s.event_id = events.id), FALSE) AS has_snapshot, \
     (SELECT duration_ms FROM clips c WHERE c.event_id = events.id) AS clip_ms, \
     (SELECT bytes FROM clips c WHERE c.event_id = events.id) AS clip_bytes";

pub(crate) fn event_from_row(row: &impl Fields) -> Result<Event, StoreError> {
    let kind: String = row.get("kind")?;
    let status: String = row.get("status")?;
    let boxes: String = row.get("boxes")?;
    let ended_at: Option<i64> = row.get("ended_at")?;
    Ok(Event {
        id: row.get("id")?,
        camera_id: row.get("camera_id")?,
        village: row.get("village")?,
        grid: row.get("grid")?,
        kind: kind.parse().map_err(|e| corrupt("kind", e))?,
        label: row.get("label")?,
        score: row.get::<f64>("score")? as f32,
        started_at: time(row.get("started_at")?)?,
        ended_at: ended_at.map(time).transpose()?,
        status: status.parse().map_err(|e| corrupt("status", e))?,
        detail: row.get("detail")?,
        recorded_at: row
            .get::<Option<i64>>("recorded_at")?
            .map(time)
            .transpose()?,
        zone: row.get("zone")?,
        rule: row.get("rule")?,
        object_id: row.get::<Option<i64>>("object_id")?.map(|v| v as u64),
        track: match row.get::<Option<String>>("track")? {
            Some(t) => serde_json::from_str(&t).map_err(|e| corrupt("track", e.to_string()))?,
            None => Vec::new(),
        },
        frame_width: row.get::<i64>("frame_width")? as u32,
        frame_height: row.get::<i64>("frame_height")? as u32,
        boxes: serde_json::from_str(&boxes).map_err(|e| corrupt("boxes", e.to_string()))?,
        has_snapshot: row.get("has_snapshot")?,
        clip: match (
            row.get::<Option<i64>>("clip_ms")?,
            row.get::<Option<i64>>("clip_bytes")?,
        ) {
            (Some(ms), Some(bytes)) => Some(ClipInfo {
                duration_s: ms as f64 / 1000.0,
                bytes: bytes.max(0) as u64,
            }),
            _ => None,
        },
        workflow: Workflow {
            state: row
                .get::<String>("workflow")?
                .parse()
                .map_err(|e| corrupt("workflow", e))?,
            assignee: row.get("assignee")?,
            updated_at: row
                .get::<Option<i64>>("workflow_at")?
                .map(time)
                .transpose()?,
            updated_by: row.get("workflow_by")?,
        },
        keep: row.get::<i64>("keep")? != 0,
    })
}

/// The `AND ...` conditions of an event query (everything but the cursor).
pub(crate) fn push_filters<'a, DB: Database>(b: &mut QueryBuilder<'a, DB>, q: &EventQuery)
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let text = |b: &mut QueryBuilder<'a, DB>, column: &str, v: &Option<String>| {
        if let Some(v) = v {
            b.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    };
    text(b, "camera_id", &q.camera_id);
    text(b, "grid", &q.grid);
    text(b, "label", &q.label);
    text(b, "zone", &q.zone);
    text(b, "rule", &q.rule);
    if let Some(v) = q.kind {
        b.push(" AND kind = ").push_bind(v.as_str().to_owned());
    }
    if let Some(v) = q.status {
        b.push(" AND status = ").push_bind(v.as_str().to_owned());
    }
    if let Some(v) = q.workflow {
        b.push(" AND workflow = ").push_bind(v.as_str().to_owned());
    }
    if let Some(v) = q.min_score {
        b.push(" AND score >= ").push_bind(v as f64);
    }
    push_village_filters(b, "village", q);
    if let Some(v) = q.since {
        b.push(" AND started_at >= ").push_bind(millis(v));
    }
    if let Some(v) = q.until {
        b.push(" AND started_at < ").push_bind(millis(v));
    }
}

/// The query's village and villages (a user's scope) on `column`: the
/// events' `village`, or an expression of it.
pub(crate) fn push_village_filters<'a, DB: Database>(
    b: &mut QueryBuilder<'a, DB>,
    column: &str,
    q: &EventQuery,
) where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(v) = &q.village {
        b.push(format!(" AND {column} = ")).push_bind(v.clone());
    }
    if let Some(villages) = &q.villages {
        // An empty scope sees nothing (not everything).
        b.push(format!(" AND {column} IN (NULL"));
        for v in villages {
            b.push(", ").push_bind(v.clone());
        }
        b.push(")");
    }
}

pub(crate) fn boxes_json(boxes: &[BoxRecord]) -> String {
    serde_json::to_string(boxes).expect("boxes serialise")
}

pub(crate) const USER_COLUMNS: &str = "id, username, role, villages, disabled, created_at";
pub(crate) const TOKEN_COLUMNS: &str =
    "t.id, t.user_id, u.username, t.kind, t.name, t.created_at, \
     t.expires_at, t.last_used_at, t.revoked_at";

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn opt_time_of(
    row: &impl Fields,
    column: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    opt_time(row.get::<Option<i64>>(column)?)
}

pub(crate) fn user_from_row(row: &impl Fields) -> Result<User, StoreError> {
    let villages: String = row.get("villages")?;
    Ok(User {
        id: row.get("id")?,
        username: row.get("username")?,
        role: row
            .get::<String>("role")?
            .parse::<Role>()
            .map_err(|e| corrupt("role", e))?,
        villages: serde_json::from_str(&villages).map_err(|e| corrupt("villages", e))?,
        disabled: row.get::<i64>("disabled")? != 0,
        created_at: time(row.get("created_at")?)?,
    })
}

pub(crate) fn token_from_row(row: &impl Fields) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        username: row.get("username")?,
        kind: row
            .get::<String>("kind")?
            .parse::<TokenKind>()
            .map_err(|e| corrupt("kind", e))?,
        name: row.get("name")?,
        created_at: time(row.get("created_at")?)?,
        expires_at: opt_time_of(row, "expires_at")?,
        last_used_at: opt_time_of(row, "last_used_at")?,
        revoked_at: opt_time_of(row, "revoked_at")?,
    })
}

pub(crate) fn audit_from_row(row: &impl Fields) -> Result<AuditEntry, StoreError> {
    let detail: String = row.get("detail")?;
    Ok(AuditEntry {
        id: row.get("id")?,
        at: time(row.get("at")?)?,
        user: row.get("user")?,
        action: row.get("action")?,
        target_kind: row.get("target_kind")?,
        target_id: row.get("target_id")?,
        detail: serde_json::from_str(&detail).map_err(|e| corrupt("detail", e))?,
    })
}

pub(crate) fn villages_json(villages: &[String]) -> String {
    serde_json::to_string(villages).expect("strings serialise")
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) const ALERT_COLUMNS: &str =
    "id, event_id, camera_id, rule_key, count, created_at, last_event_at, \
     last_event_id, flood_until, escalate_at, escalated_at, acked_at, acked_by, acked_via";

pub(crate) fn alert_from_row(r: &impl Fields) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: r.get("id")?,
        event_id: r.get("event_id")?,
        camera_id: r.get("camera_id")?,
        rule_key: r.get("rule_key")?,
        count: r.get("count")?,
        created_at: time(r.get("created_at")?)?,
        last_event_at: time(r.get("last_event_at")?)?,
        last_event_id: r.get("last_event_id")?,
        flood_until: time(r.get("flood_until")?)?,
        escalate_at: opt_time(r.get("escalate_at")?)?,
        escalated_at: opt_time(r.get("escalated_at")?)?,
        acked_at: opt_time(r.get("acked_at")?)?,
        acked_by: r.get("acked_by")?,
        acked_via: r.get("acked_via")?,
    })
}

pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.alert_id, a.event_id, d.channel, d.officer, d.level, \
     d.idempotency_key, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at, d.delivered_at";

pub(crate) fn delivery_from_row(r: &impl Fields) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.get("id")?,
        alert_id: r.get("alert_id")?,
        event_id: r.get("event_id")?,
        channel: r.get("channel")?,
        officer: r.get("officer")?,
        level: parse_level(&r.get::<String>("level")?)?,
        idempotency_key: r.get("idempotency_key")?,
        status: parse_status(&r.get::<String>("status")?)?,
        attempts: r.get("attempts")?,
        next_attempt_at: time(r.get("next_attempt_at")?)?,
        last_error: r.get("last_error")?,
        created_at: time(r.get("created_at")?)?,
        delivered_at: opt_time(r.get("delivered_at")?)?,
    })
}

pub(crate) const CAMERA_COLUMNS: &str = "id, definition, deleted, created_at, updated_at, position";

pub(crate) fn camera_from_row(r: &impl Fields) -> Result<StoredCamera, StoreError> {
    let id: String = r.get("id")?;
    let definition: String = r.get("definition")?;
    Ok(StoredCamera {
        // Never show the definition in the error: it holds the password.
        definition: serde_json::from_str(&definition)
            .map_err(|_| StoreError::Corrupt(format!("camera \"{id}\": definition is not JSON")))?,
        id,
        deleted: r.get::<i64>("deleted")? != 0,
        created_at: time(r.get("created_at")?)?,
        updated_at: time(r.get("updated_at")?)?,
        position: r.get("position")?,
    })
}

/// An insert of line crossings, for either backend's query builder.
pub(crate) fn insert_crossings<'a, DB: Database>(crossings: Vec<Crossing>) -> QueryBuilder<'a, DB>
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut b =
        QueryBuilder::new("INSERT INTO line_crossings (camera_id, line, direction, label, at) ");
    b.push_values(crossings, |mut row, c| {
        row.push_bind(c.camera_id)
            .push_bind(c.line)
            .push_bind(c.direction.as_str().to_owned())
            .push_bind(c.label)
            .push_bind(millis(c.at));
    });
    b
}

/// Crossings per camera, line, direction and bucket (`from <= at < to`).
pub(crate) fn count_crossings<'a, DB: Database>(
    camera_id: Option<String>,
    line: Option<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
) -> QueryBuilder<'a, DB>
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let size = bucket.millis();
    let mut b = QueryBuilder::new(format!(
        "SELECT camera_id, line, direction, (at / {size}) * {size} AS bucket, COUNT(*) AS n \
         FROM line_crossings WHERE at >= "
    ));
    b.push_bind(millis(from))
        .push(" AND at < ")
        .push_bind(millis(to));
    if let Some(c) = camera_id {
        b.push(" AND camera_id = ").push_bind(c);
    }
    if let Some(l) = line {
        b.push(" AND line = ").push_bind(l);
    }
    b.push(" GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, 2, 3");
    b
}

pub(crate) fn crossing_count_from_row(r: &impl Fields) -> Result<CrossingCount, StoreError> {
    let direction: String = r.get("direction")?;
    Ok(CrossingCount {
        camera_id: r.get("camera_id")?,
        line: r.get("line")?,
        direction: direction.parse().map_err(StoreError::Corrupt)?,
        bucket_start: time(r.get("bucket")?)?,
        count: r.get::<i64>("n")? as u64,
    })
}

/// An insert of one sampling round of camera states.
pub(crate) fn insert_health_samples<'a, DB: Database>(
    samples: Vec<HealthSample>,
) -> QueryBuilder<'a, DB>
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut b = QueryBuilder::new(
        "INSERT INTO health_samples (camera_id, village, grid, at, state, interval_ms) ",
    );
    b.push_values(samples, |mut row, s| {
        row.push_bind(s.camera_id)
            .push_bind(s.village)
            .push_bind(s.grid)
            .push_bind(millis(s.at))
            .push_bind(s.state.as_str().to_owned())
            .push_bind(s.interval_ms);
    });
    b
}

/// The online rate per `group` over samples with `from <= at < to`; binds
/// `from` and `to` as `$1`/`$2` (SQLite takes numbered parameters too).
/// Rows without a key (the township, or cameras without a village) first.
pub(crate) fn availability_sql(group: AvailabilityGroup) -> String {
    let key = match group {
        AvailabilityGroup::Camera => "camera_id",
        AvailabilityGroup::Village => "village",
        AvailabilityGroup::Grid => "grid",
        AvailabilityGroup::Township => "CAST(NULL AS TEXT)",
    };
    format!(
        "SELECT {key} AS key, COUNT(DISTINCT camera_id) AS cameras, \
         CAST(SUM(interval_ms) AS BIGINT) AS sampled, \
         CAST(SUM(CASE WHEN state IN ('online', 'degraded') THEN interval_ms ELSE 0 END) AS BIGINT) AS online \
         FROM health_samples WHERE at >= $1 AND at < $2 GROUP BY 1 ORDER BY 1 NULLS FIRST"
    )
}

pub(crate) fn availability_from_row(r: &impl Fields) -> Result<AvailabilityRow, StoreError> {
    let sampled: i64 = r.get("sampled")?;
    let online: i64 = r.get("online")?;
    Ok(AvailabilityRow {
        key: r.get("key")?,
        cameras: r.get::<i64>("cameras")? as u32,
        sampled_s: sampled as f64 / 1000.0,
        online_s: online as f64 / 1000.0,
        online_rate: if sampled > 0 {
            online as f64 / sampled as f64
        } else {
            0.0
        },
    })
}

/// The idempotency key of a delivery: it names the alert, level, channel and
/// officer, so a replayed plan cannot make a second message.
pub(crate) fn delivery_key(
    alert_id: i64,
    level: crate::alerts::DeliveryLevel,
    d: &crate::alerts::PlannedDelivery,
) -> String {
    format!(
        "xl-alert{alert_id}-{}-{}-{}",
        level.as_str(),
        d.channel,
        d.officer.as_deref().unwrap_or("-")
    )
}

/// A delivery's state after an attempt: its status, when to try next, and
/// when it was delivered (the attempt's end, for a success).
pub(crate) fn after_attempt(
    r: &crate::alerts::AttemptRecord,
) -> (
    crate::alerts::DeliveryStatus,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
) {
    use crate::alerts::{AttemptOutcome, DeliveryStatus};
    let (status, next) = match (r.outcome, r.retry_at) {
        (AttemptOutcome::Ok, _) => (DeliveryStatus::Delivered, r.at),
        (AttemptOutcome::Retriable, Some(t)) => (DeliveryStatus::Pending, t),
        _ => (DeliveryStatus::Failed, r.at),
    };
    let done = r.at + chrono::Duration::milliseconds(r.duration_ms);
    (
        status,
        next,
        (status == DeliveryStatus::Delivered).then_some(done),
    )
}

/// The audit line of a workflow step that took an event from `from` to `to`.
pub(crate) fn step_audit(
    step: &xueliang_core::WorkflowStep,
    from: xueliang_core::WorkflowState,
    to: xueliang_core::WorkflowState,
) -> xueliang_core::NewAuditEntry {
    let mut detail = serde_json::Map::new();
    detail.insert("from".into(), from.as_str().into());
    detail.insert("to".into(), to.as_str().into());
    if let Some(keep) = step.action.keep() {
        detail.insert("keep".into(), keep.into());
    }
    if let Some(a) = &step.assignee {
        detail.insert("assignee".into(), a.clone().into());
    }
    if let Some(n) = &step.note {
        detail.insert("note".into(), n.clone().into());
    }
    xueliang_core::NewAuditEntry {
        at: step.at,
        user: step.by.clone(),
        action: step.action.as_str().into(),
        target_kind: "event".into(),
        target_id: step.event_id.to_string(),
        detail: serde_json::Value::Object(detail),
    }
}
