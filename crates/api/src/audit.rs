//! `GET /audit`: the audit trail (admin): who did what to which event,
//! camera, user or token, and when.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::params::Params;
use crate::params::{Page, PageQuery};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{AuditEntry, Role};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

const TARGETS: &[&str] = &["event", "camera", "user", "token"];

/// The lines about one target: give both or neither.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct Target {
    /// `event`, `camera`, `user` or `token`.
    #[param(min_length = 1)]
    target_kind: Option<String>,
    #[param(min_length = 1)]
    target_id: Option<String>,
}

/// The audit trail, newest first (admin).
#[utoipa::path(get, path = "/audit", tag = "audit", params(Target, PageQuery),
    responses(
        (status = 200, description = "A page of audit lines", body = Page<AuditEntry>),
        (status = 400, description = "A parameter is not valid (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    caller.require(Role::Admin)?;
    let p = Params::new(raw, &["target_kind", "target_id", "cursor", "limit"])?;
    let target = match (p.string("target_kind")?, p.string("target_id")?) {
        (Some(k), Some(id)) if TARGETS.contains(&k.as_str()) => Some((k, id)),
        (Some(k), Some(_)) => {
            return Err(ApiError::bad_parameter(
                "target_kind",
                format!("unknown target `{k}` (known: {})", TARGETS.join(", ")),
            ))
        }
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_parameter(
                "target_id",
                "give both `target_kind` and `target_id`, or neither",
            ))
        }
    };
    let limit = p.limit()?;
    let before = p.cursor()?;
    let mut items = state
        .access
        .list_audit(target, before, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let next = crate::params::next_cursor(&mut items, limit, |e| e.id);
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}
