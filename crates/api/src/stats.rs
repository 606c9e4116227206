//! `GET /stats/events`: event counts per kind, village or camera, and per
//! hour or day (Beijing time by default), over a range.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::event_query;
use crate::params::{check_buckets, Params};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{Bucket, StatsKey, StatsQuery, StatsRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// How the counts are grouped: by some keys, and by time bucket.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct Grouping {
    /// Comma-separated keys: `kind`, `village`, `camera`.
    #[param(min_length = 1, default = "kind")]
    group_by: Option<String>,
    #[param(inline, default = "none")]
    bucket: Option<StatsBucket>,
    /// Buckets start at midnight (or the hour) of this offset from UTC.
    #[param(pattern = r"^[+-][0-9]{2}:[0-9]{2}$", default = "+08:00")]
    utc_offset: Option<String>,
}

/// Time buckets of the counts (`none`: one count per group).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // it describes the parameter; `events` reads it
enum StatsBucket {
    Hour,
    Day,
    None,
}

#[derive(Serialize, ToSchema)]
struct Stats {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    /// The buckets asked for (`hour` or `day`); `null` without.
    #[schema(value_type = Option<Bucket>)]
    bucket: Option<&'static str>,
    /// Like `+08:00`.
    utc_offset: String,
    total: u64,
    items: Vec<StatsRow>,
}

/// `+08:00` style offsets, within a day.
fn parse_offset(raw: &str) -> Result<i32, String> {
    let bad = || format!("\"{raw}\" is not an offset like +08:00");
    let (sign, rest) = match raw.as_bytes().first() {
        Some(b'+') | Some(b' ') => (1, &raw[1..]),
        Some(b'-') => (-1, &raw[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m) = (
        h.parse::<i32>().map_err(|_| bad())?,
        m.parse::<i32>().map_err(|_| bad())?,
    );
    if !(0..=14).contains(&h) || !(0..60).contains(&m) || h.to_string().len() > 2 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

fn format_offset(s: i32) -> String {
    let sign = if s < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", s.abs() / 3600, s.abs() % 3600 / 60)
}

/// Event counts per kind, village or camera and per hour or day, over a
/// range (default: the 7 days before `until`, which defaults to now).
///
/// At most 10000 buckets (400 naming `bucket`).
#[utoipa::path(get, path = "/stats/events", tag = "stats",
    params(crate::events::EventFilters, Grouping),
    responses((status = 200, description = "The counts", body = Stats), (status = 400, description = "A parameter is not valid, or over 10000 buckets (naming `bucket`) (`invalid_parameter`)", body = crate::error::ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Stats>, ApiError> {
    let known = [
        crate::events::FILTERS,
        &["group_by", "bucket", "utc_offset"],
    ]
    .concat();
    let p = Params::new(raw, &known)?;
    let mut events = event_query(&p, &caller)?;
    let until = events.until.unwrap_or_else(Utc::now);
    let since = events.since.unwrap_or(until - Duration::days(7));
    if since >= until {
        return Err(ApiError::bad_parameter("since", "must be before `until`"));
    }
    // Without `until` the store counts up to now with an open end, so the
    // newest hour comes from its hourly counts, not from the newest rows.
    events.since = Some(since);
    let group_by = match p.string("group_by")? {
        Some(g) => g
            .split(',')
            .map(|k| k.trim().parse::<StatsKey>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::bad_parameter("group_by", e))?,
        None => vec![StatsKey::Kind],
    };
    let bucket = match p.string("bucket")?.as_deref() {
        None | Some("none") => None,
        Some(b) => match b.parse::<Bucket>() {
            Ok(Bucket::Minute) | Err(_) => {
                return Err(ApiError::bad_parameter(
                    "bucket",
                    format!("unknown bucket `{b}` (known: hour, day, none)"),
                ))
            }
            Ok(b) => Some(b),
        },
    };
    if let Some(b) = bucket {
        check_buckets(since, until, b.millis())?;
    }
    let utc_offset_s = match p.string("utc_offset")? {
        Some(o) => parse_offset(&o).map_err(|e| ApiError::bad_parameter("utc_offset", e))?,
        None => 8 * 3600,
    };
    let items = state
        .access
        .event_stats(StatsQuery {
            events,
            group_by,
            bucket,
            utc_offset_s,
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(Stats {
        since,
        until,
        bucket: bucket.map(Bucket::as_str),
        utc_offset: format_offset(utc_offset_s),
        total: items.iter().map(|r| r.count).sum(),
        items,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00"), Ok(28_800));
        assert_eq!(parse_offset("-05:30"), Ok(-19_800));
        assert!(parse_offset("08:00").is_err());
        assert!(parse_offset("+25:00").is_err());
        assert_eq!(format_offset(28_800), "+08:00");
        assert_eq!(format_offset(-19_800), "-05:30");
    }
}
