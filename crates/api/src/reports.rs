//! `GET /reports/availability`: the online rate (在线率) per camera, village,
//! grid or for the whole township over a time range.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::params::{check_buckets, Params, MAX_RANGE_DAYS};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{AvailabilityGroup, AvailabilityRow, Bucket, CrossingCount};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(availability))
        .routes(routes!(line_crossings))
}

/// The range of a report: default the 24 hours before `to`, `to` now.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct Range {
    from: Option<DateTime<Utc>>,
    /// After `from`.
    to: Option<DateTime<Utc>>,
}

/// Which crossings, and their buckets.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct CrossingQuery {
    /// Crossings of this camera (its id).
    #[param(min_length = 1)]
    camera: Option<String>,
    /// Crossings of this line (its name).
    #[param(min_length = 1)]
    line: Option<String>,
    #[param(inline, default = "hour")]
    bucket: Option<Bucket>,
}

#[derive(Serialize, ToSchema)]
struct CrossingReport {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    #[schema(value_type = Bucket)]
    bucket: &'static str,
    items: Vec<CrossingCount>,
}

/// Crossings of counting lines per direction and time bucket (UTC-aligned).
///
/// `from`..`to` covers at most 366 days, and at most 10000 buckets (400
/// naming `from` or `bucket`).
#[utoipa::path(get, path = "/reports/line-crossings", tag = "reports", params(CrossingQuery, Range),
    responses(
        (status = 200, description = "The counts", body = CrossingReport),
        (status = 400, description = "A parameter is not valid, the range is over 366 days (naming `from`), or over 10000 buckets (naming `bucket`) (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such camera, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody),
    ))]
async fn line_crossings(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<CrossingReport>, ApiError> {
    let p = Params::new(raw, &["camera", "line", "from", "to", "bucket"])?;
    let (from, to) = range(&p)?;
    let bucket = p.parsed::<Bucket>("bucket")?.unwrap_or(Bucket::Hour);
    check_buckets(from, to, bucket.millis())?;
    let camera = p.string("camera")?;
    if let Some(id) = &camera {
        crate::cameras::visible_camera(&state, &caller, id)?;
    }
    let visible = VisibleCameras::of(&state, &caller);
    let mut items = state
        .store
        .crossing_counts(camera, p.string("line")?, from, to, bucket)
        .await
        .map_err(ApiError::internal)?;
    items.retain(|c| visible.camera(&c.camera_id));
    Ok(Json(CrossingReport {
        from,
        to,
        bucket: bucket.as_str(),
        items,
    }))
}

/// `from` and `to` of a report: default the 24 hours before `to`, `to` now;
/// at most [`MAX_RANGE_DAYS`] apart.
fn range(p: &Params) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = p.time("to")?.unwrap_or_else(Utc::now);
    let from = p.time("from")?.unwrap_or(to - chrono::Duration::days(1));
    if from >= to {
        return Err(ApiError::bad_parameter("to", "must be after `from`"));
    }
    if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::bad_parameter(
            "from",
            format!("the range is longer than {MAX_RANGE_DAYS} days; ask for less at a time"),
        ));
    }
    Ok((from, to))
}

/// How the availability report is grouped.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct AvailabilityQuery {
    #[param(inline, default = "camera")]
    group_by: Option<AvailabilityGroup>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = AvailabilityReport)]
struct Report {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    #[schema(value_type = AvailabilityGroup)]
    group_by: &'static str,
    items: Vec<AvailabilityRow>,
}

/// The online rate (在线率) per camera, village, grid or for the township.
///
/// `from`..`to` covers at most 366 days, and at most 10000 buckets (400
/// naming `from` or `bucket`).
#[utoipa::path(get, path = "/reports/availability", tag = "reports", params(Range, AvailabilityQuery),
    responses(
        (status = 200, description = "The report", body = Report),
        (status = 400, description = "A parameter is not valid, the range is over 366 days (naming `from`), or over 10000 buckets (naming `bucket`) (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "The township figure asked by a user limited to some villages (`forbidden`)", body = crate::error::ErrorBody),
    ))]
async fn availability(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Report>, ApiError> {
    let p = Params::new(raw, &["from", "to", "group_by"])?;
    let (from, to) = range(&p)?;
    let group = p
        .parsed::<AvailabilityGroup>("group_by")?
        .unwrap_or(AvailabilityGroup::Camera);
    let group_by = group.as_str();
    if caller.scope().is_some() && group == AvailabilityGroup::Township {
        return Err(ApiError::forbidden(
            "the township figure covers villages outside your scope; use group_by=village",
        ));
    }
    let visible = VisibleCameras::of(&state, &caller);
    let mut items = state
        .store
        .availability(from, to, group)
        .await
        .map_err(ApiError::internal)?;
    items.retain(|row| {
        let key = row.key.as_deref();
        match group {
            AvailabilityGroup::Camera => key.is_some_and(|k| visible.camera(k)),
            AvailabilityGroup::Village => caller.sees_village(key),
            AvailabilityGroup::Grid => visible.grid(key),
            AvailabilityGroup::Township => true,
        }
    });
    Ok(Json(Report {
        from,
        to,
        group_by,
        items,
    }))
}

/// What a caller may see of report rows keyed by camera or grid, from the
/// cameras' villages. Unscoped callers see every row, including cameras that
/// have been removed since.
struct VisibleCameras {
    /// `None`: everything.
    cameras: Option<Vec<(String, Option<String>)>>,
}

impl VisibleCameras {
    fn of(state: &AppState, caller: &Caller) -> Self {
        let cameras = caller.scope().map(|_| {
            state
                .cameras
                .list()
                .into_iter()
                .filter(|c| caller.sees_village(c.config.village.as_deref()))
                .map(|c| (c.config.id, c.config.grid))
                .collect()
        });
        VisibleCameras { cameras }
    }

    fn camera(&self, id: &str) -> bool {
        self.cameras
            .as_ref()
            .is_none_or(|cams| cams.iter().any(|(c, _)| c == id))
    }

    /// A grid is visible when one of the caller's cameras is in it.
    fn grid(&self, grid: Option<&str>) -> bool {
        self.cameras.as_ref().is_none_or(|cams| {
            grid.is_some_and(|g| cams.iter().any(|(_, cg)| cg.as_deref() == Some(g)))
        })
    }
}
