//! `/tokens`: API tokens for integrations (the county platform, scripts).
//! A token is shown once, when made; only its hash is stored. Users see and
//! revoke their own tokens; admins everyone's.

use crate::auth::{new_token, Caller};
use crate::body::JsonBody;
use crate::body::List;
use crate::error::ApiError;
use crate::users::{audit, path_id};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, Utc};
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
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewTokenCreated)]
struct Created {
    #[serde(flatten)]
    info: TokenInfo,
    /// The token itself: shown this once, never again.
    token: String,
}

/// Make an API token for the caller; the token is in the answer, and only there.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, description = "Made", body = Created)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
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
    audit(
        &state,
        caller.audit("token.revoke", "token", id, serde_json::json!({})),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
