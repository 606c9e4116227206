//! `/tokens`: API tokens for integrations (the county platform, scripts).
//! A token is shown once, when made; only its hash is stored. Users see and
//! revoke their own tokens; admins everyone's. A token cannot make a token
//! that outlives it (a 12-hour session minting a token for ever) unless the
//! caller is an admin or gives their password again.

use crate::auth::{new_token, verify_login, Caller, ClientAddr};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::users::{audit, path_id};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::DateTime;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use xueliang_core::{Role, TokenInfo, TokenKind};
use xueliang_store::NewToken;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let whose = (caller.user.role != Role::Admin).then_some(caller.user.id);
    let tokens = state
        .access
        .list_tokens(whose)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "items": tokens })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    /// Days until it expires (1..=3650); absent: never.
    expires_in_days: Option<i64>,
    /// The caller's password: needed (unless admin) for a token that would
    /// outlive the token making it.
    password: Option<String>,
}

#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    info: TokenInfo,
    /// The token itself: shown this once, never again.
    token: String,
}

/// Whether a token expiring at `new` outlives one expiring at `current`
/// (`None`: never expires).
fn outlives(new: Option<DateTime<Utc>>, current: Option<DateTime<Utc>>) -> bool {
    match (new, current) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(n), Some(c)) => n > c,
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(ip): ClientAddr,
    JsonBody(req): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_parameter("name", "must be 1-64 characters"));
    }
    let expires_at = match req.expires_in_days {
        Some(d) if (1..=3650).contains(&d) => Some(Utc::now() + Duration::days(d)),
        Some(_) => {
            return Err(ApiError::bad_parameter(
                "expires_in_days",
                "must be 1..=3650",
            ))
        }
        None => None,
    };
    if outlives(expires_at, caller.token.expires_at) && caller.user.role != Role::Admin {
        let Some(password) = req.password else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_required",
                "this token would outlive the one making it: give your `password`, or a shorter `expires_in_days`",
            ));
        };
        // A wrong password is 403, not 401: the caller's session is fine.
        verify_login(&state, &caller.user.username, password, ip)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::UNAUTHORIZED {
                    ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "wrong password")
                } else {
                    e
                }
            })?;
    }
    let (token, token_hash) = new_token();
    let info = state
        .access
        .insert_token(NewToken {
            user_id: caller.user.id,
            kind: TokenKind::Api,
            name: name.to_owned(),
            token_hash,
            expires_at,
        })
        .await
        .map_err(ApiError::internal)?;
    let detail = serde_json::json!({ "name": info.name, "expires_at": info.expires_at });
    audit(
        &state,
        caller.audit("token.create", "token", info.id, detail),
    )
    .await;
    Ok((StatusCode::CREATED, Json(Created { info, token })))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&raw)?;
    let token = state
        .access
        .get_token(id)
        .await
        .map_err(ApiError::internal)?;
    // Someone else's token is "not found" to a non-admin: ids tell nothing.
    let visible =
        token.is_some_and(|t| caller.user.role == Role::Admin || t.user_id == caller.user.id);
    if !visible
        || !state
            .access
            .revoke_token(id, Utc::now())
            .await
            .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found(format!("no valid token {id}")));
    }
    state.access_changed();
    audit(
        &state,
        caller.audit("token.revoke", "token", id, serde_json::json!({})),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
