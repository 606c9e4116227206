//! Query-string parsing with errors that name the parameter; unknown
//! parameters are refused so a typo does not silently widen a query.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::str::FromStr;

pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    pub fn new(map: HashMap<String, String>, known: &[&str]) -> Result<Params, ApiError> {
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_parameter(
                k,
                format!("unknown parameter (known: {})", known.join(", ")),
            ));
        }
        Ok(Params { map })
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.get(name) {
            Some(v) if v.is_empty() => Err(ApiError::bad_parameter(name, "must not be empty")),
            v => Ok(v.cloned()),
        }
    }

    pub fn parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T::Err: std::fmt::Display,
    {
        self.string(name)?
            .map(|v| v.parse::<T>().map_err(|e| ApiError::bad_parameter(name, e)))
            .transpose()
    }

    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.string(name)?
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::bad_parameter(
                            name,
                            format!("\"{v}\" is not an RFC 3339 time ({e})"),
                        )
                    })
            })
            .transpose()
    }
}

/// Longest range a report covers in one answer.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Most time buckets in one answer (reports and stats).
pub const MAX_BUCKETS: i64 = 10_000;

/// Refuses more than [`MAX_BUCKETS`] buckets of `bucket_ms` between `from`
/// and `to`, naming the parameter `bucket`.
pub fn check_buckets(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_ms: i64,
) -> Result<(), ApiError> {
    let buckets = (to - from).num_milliseconds() / bucket_ms.max(1);
    if buckets > MAX_BUCKETS {
        return Err(ApiError::bad_parameter(
            "bucket",
            format!("{buckets} buckets for this range, at most {MAX_BUCKETS}; use a larger bucket or a shorter range"),
        ));
    }
    Ok(())
}

/// A page of a listing, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The page a listing asks for (read by [`Params::limit`] and [`Params::cursor`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    #[param(minimum = 1)]
    cursor: Option<i64>,
    /// Items per page: 1..=`MAX_PAGE` (500), default [`DEFAULT_LIMIT`] (50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
}

/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 50;

impl Params {
    /// `limit`: 1..=`MAX_PAGE`, default [`DEFAULT_LIMIT`].
    pub fn limit(&self) -> Result<u32, ApiError> {
        let limit = self.parsed::<u32>("limit")?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=xueliang_store::MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_parameter(
                "limit",
                format!("must be 1..={}", xueliang_store::MAX_PAGE),
            ));
        }
        Ok(limit)
    }

    /// `cursor`: an id this API gave out as `next_cursor`.
    pub fn cursor(&self) -> Result<Option<i64>, ApiError> {
        let cursor = self.parsed::<i64>("cursor")?;
        if cursor.is_some_and(|c| c <= 0) {
            return Err(ApiError::bad_parameter(
                "cursor",
                "not a cursor this API gave out",
            ));
        }
        Ok(cursor)
    }
}

/// Cuts a listing fetched with `limit + 1` rows to `limit` and returns the
/// cursor of the next page, if there is one.
pub fn next_cursor<T>(items: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Option<String> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    more.then(|| items.last().map(|e| id(e).to_string()))
        .flatten()
}
