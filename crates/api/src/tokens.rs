//! `/tokens`: API tokens for integrations (the county platform, scripts).
//! A token is shown once, when made; only its hash is stored. Users see and
//! revoke their own tokens; admins everyone's. A token cannot make a token
//! that outlives it (a 12-hour session minting a token for ever) unless the
//! caller is an admin or gives their password again.

use crate::auth::{new_token, verify_login, Caller, ClientAddr};
use crate::body::JsonBody;
use crate::body::List;
use crate::error::{ApiError, ErrorCode};
use crate::users::{audit, path_id};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{Role, TokenInfo, TokenKind};
use xueliang_store::NewToken;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Tokens: the caller's own (admins: everyone's), never the tokens themselves.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, description = "Tokens", body = List<TokenInfo>)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<TokenInfo>>, ApiError> {
    let whose = (caller.user.role != Role::Admin).then_some(caller.user.id);
    let tokens = state
        .access
        .list_tokens(whose)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(List { items: tokens }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewToken)]
struct CreateToken {
    /// 1-64 characters, trimmed.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// Days until it expires (1..=3650); absent or `null`: never.
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
    /// The caller's password: needed (unless admin) for a token that would
    /// outlive the token making it.
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewTokenCreated)]
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

/// Make an API token for the caller; the token is in the answer, and only there.
///
/// A token cannot make a token that outlives it unless the caller is an
/// admin or gives `password`.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses(
        (status = 201, description = "Made", body = Created),
        (status = 400, description = "`name` or `expires_in_days` not valid (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "The token would outlive the caller's own (a session's expiry) and `password` is missing (`password_required`) or wrong (`wrong_password`)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed password checks (`too_many_attempts`)", body = crate::error::ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds to wait"))),
    ))]
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
                ErrorCode::PasswordRequired,
                "this token would outlive the one making it: give your `password`, or a shorter `expires_in_days`",
            ));
        };
        // A wrong password is 403, not 401: the caller's session is fine.
        verify_login(&state, &caller.user.username, password, ip)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::UNAUTHORIZED {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        ErrorCode::WrongPassword,
                        "wrong password",
                    )
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

/// Revoke a token (one's own; admins: anyone's).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, minimum = 1, description = "the token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Not an id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such valid token of the caller's (`not_found`)", body = crate::error::ErrorBody),
    ))]
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
