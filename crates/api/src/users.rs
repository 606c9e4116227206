//! `/users`: accounts of the monitoring centre (admin only). Passwords are
//! hashed with argon2 and never returned; every change is audited.

use crate::auth::{check_password, hash_password, Caller};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use xueliang_core::{NewUser, Role, User, UserPatch};
use xueliang_store::StoreError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(one).patch(update).delete(remove))
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

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    let users = state
        .access
        .list_users()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "items": users })))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    username: String,
    password: String,
    role: String,
    #[serde(default)]
    villages: Vec<String>,
}

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
            StoreError::Conflict(m) => ApiError::conflict("conflict", m),
            e => ApiError::internal(e),
        })?;
    let detail = serde_json::json!({ "username": user.username, "role": user.role, "villages": user.villages });
    audit(&state, caller.audit("user.create", "user", user.id, detail)).await;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    password: Option<String>,
    role: Option<String>,
    villages: Option<Vec<String>>,
    disabled: Option<bool>,
}

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
            "last_admin",
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
