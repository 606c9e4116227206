//! `/users`: accounts of the monitoring centre (admin only). Passwords are
//! hashed with argon2 and never returned; every change is audited.

use crate::auth::{check_password, hash_password, Caller};
use crate::body::JsonBody;
use crate::body::List;
use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{NewUser, Role, User, UserPatch};
use xueliang_store::StoreError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, update, remove))
}

/// A path id: a positive integer, else 400 naming `id`.
pub fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::bad_parameter("id", format!("\"{raw}\" is not an id")))
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_parameter(
            "username",
            "1-64 letters, digits, '_', '-', '.' or '@'",
        ))
    }
}

fn check_villages(villages: &[String]) -> Result<(), ApiError> {
    if villages
        .iter()
        .any(|v| v.trim().is_empty() || v.len() > 128)
    {
        return Err(ApiError::bad_parameter(
            "villages",
            "each village must be a non-empty name",
        ));
    }
    Ok(())
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse().map_err(|e| ApiError::bad_parameter("role", e))
}

/// Hashes a new password on one of the hashing permits.
async fn hash(state: &AppState, password: String) -> Result<String, ApiError> {
    check_password(&password).map_err(|e| ApiError::bad_parameter("password", e))?;
    state
        .limiter
        .hashing(move || hash_password(&password))
        .await?
        .map_err(ApiError::internal)
}

/// Users (admin).
#[utoipa::path(get, path = "/users", tag = "users",
    responses(
        (status = 200, description = "Users", body = List<User>),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
    ))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<List<User>>, ApiError> {
    caller.require(Role::Admin)?;
    let users = state
        .access
        .list_users()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(List { items: users }))
}

/// A user (admin).
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = i64, Path, minimum = 1, description = "the user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "Not an id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`not_found`)", body = crate::error::ErrorBody),
    ))]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<User>, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(&raw)?;
    state
        .access
        .get_user(id)
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
struct CreateUser {
    /// Letters, digits, `_`, `-`, `.` or `@`.
    #[schema(min_length = 1, max_length = 64)]
    username: String,
    /// At least 8 characters, at most 1024 bytes.
    #[schema(min_length = 8)]
    password: String,
    #[schema(value_type = Role)]
    role: String,
    /// Villages the user may see (each a non-empty name of at most 128
    /// bytes); empty: every village.
    #[serde(default)]
    villages: Vec<String>,
}

/// Make a user (admin).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses(
        (status = 201, description = "Made", body = User),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
        (status = 409, description = "The username is taken (`conflict`)", body = crate::error::ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require(Role::Admin)?;
    check_username(&req.username)?;
    let role = parse_role(&req.role)?;
    check_villages(&req.villages)?;
    let password_hash = hash(&state, req.password).await?;
    let user = state
        .access
        .create_user(NewUser {
            username: req.username,
            password_hash,
            role,
            villages: req.villages,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::conflict(ErrorCode::Conflict, m),
            e => ApiError::internal(e),
        })?;
    let detail = serde_json::json!({ "username": user.username, "role": user.role, "villages": user.villages });
    audit(&state, caller.audit("user.create", "user", user.id, detail)).await;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes to a user: absent or `null` fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserPatch)]
struct UpdateUser {
    /// At least 8 characters, at most 1024 bytes.
    #[schema(min_length = 8)]
    password: Option<String>,
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Villages the user may see (each a non-empty name of at most 128
    /// bytes); empty: every village.
    villages: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// Change a user (admin); every change is audited.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = i64, Path, minimum = 1, description = "the user's id")), request_body = UpdateUser,
    responses(
        (status = 200, description = "Changed", body = User),
        (status = 400, description = "Not an id, or a field is not valid (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`not_found`)", body = crate::error::ErrorBody),
        (status = 409, description = "It would leave no active admin (`last_admin`)", body = crate::error::ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(&raw)?;
    let role = req.role.as_deref().map(parse_role).transpose()?;
    if let Some(v) = &req.villages {
        check_villages(v)?;
    }
    let demotes = role.is_some_and(|r| r != Role::Admin) || req.disabled == Some(true);
    if demotes {
        guard_last_admin(&state, id).await?;
    }
    let password_hash = match req.password {
        Some(p) => Some(hash(&state, p).await?),
        None => None,
    };
    let detail = serde_json::json!({
        "role": role,
        "villages": req.villages,
        "disabled": req.disabled,
        "password_changed": password_hash.is_some(),
    });
    let user = state
        .access
        .update_user(
            id,
            UserPatch {
                password_hash,
                role,
                villages: req.villages,
                disabled: req.disabled,
            },
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
    state.access_changed();
    audit(&state, caller.audit("user.update", "user", id, detail)).await;
    Ok(Json(user))
}

/// Delete a user (admin).
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = i64, Path, minimum = 1, description = "the user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not an id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`not_found`)", body = crate::error::ErrorBody),
        (status = 409, description = "It is the last active admin (`last_admin`)", body = crate::error::ErrorBody),
    ))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(&raw)?;
    guard_last_admin(&state, id).await?;
    if !state
        .access
        .delete_user(id)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found(format!("no user {id}")));
    }
    state.access_changed();
    audit(
        &state,
        caller.audit("user.delete", "user", id, serde_json::json!({})),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses to demote, disable or delete the last active admin: nobody could
/// manage users afterwards but from the command line.
async fn guard_last_admin(state: &AppState, id: i64) -> Result<(), ApiError> {
    let target = state
        .access
        .get_user(id)
        .await
        .map_err(ApiError::internal)?;
    let is_active_admin = target.is_some_and(|u| u.role == Role::Admin && !u.disabled);
    if is_active_admin
        && state
            .access
            .count_admins()
            .await
            .map_err(ApiError::internal)?
            <= 1
    {
        return Err(ApiError::conflict(
            ErrorCode::LastAdmin,
            "this is the last active admin; make another admin first",
        ));
    }
    Ok(())
}

/// Records an audit line; a failure to record is logged, not shown (the
/// change itself is done).
pub async fn audit(state: &AppState, entry: xueliang_core::NewAuditEntry) {
    if let Err(e) = state.access.audit(entry).await {
        tracing::error!(error = %e, "cannot write the audit trail");
    }
}
