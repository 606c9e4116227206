//! `GET /audit`: the audit trail (admin): who did what to which event,
//! camera, user or token, and when.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use xueliang_core::Role;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

const TARGETS: &[&str] = &["event", "camera", "user", "token"];

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(
        serde_json::json!({ "items": items, "next_cursor": next }),
    ))
}
