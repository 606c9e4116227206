//! `GET /cameras`, `GET /cameras/{id}/health`, and the camera changes:
//! `POST /cameras`, `GET|PATCH|DELETE /cameras/{id}`, `GET /cameras/{id}/frame.jpg`.

use crate::auth::Caller;
use crate::body::List;
use crate::control::CameraChangeError;
use crate::error::{ApiError, ErrorCode};
use crate::forward::{to_runner, Lasting};
use crate::users::audit;
use crate::{AppState, CameraView};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{CameraHealth, CameraStats};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, update, delete))
        .routes(routes!(health))
        .routes(routes!(frame))
}

/// A camera's health and counters.
#[derive(Serialize, ToSchema)]
struct Health {
    #[serde(flatten)]
    health: CameraHealth,
    #[schema(minimum = 0)]
    seconds_in_state: i64,
    last_frame_at: Option<DateTime<Utc>>,
    reconnects: u64,
    frames_received: u64,
    bytes_received: u64,
    lost_packets: u64,
    frames_decoded: u64,
    decode_errors: u64,
    frames_dropped_decode: u64,
    frames_offered_to_detector: u64,
    frames_detected: u64,
    frames_dropped_detect: u64,
    /// No motion and nothing tracked: only key frames are decoded and detected.
    idle: bool,
    /// Frames never decoded because the camera was idle.
    frames_skipped_idle: u64,
    /// What the analytics need now: `full` (objects appear, are uncertain,
    /// or near a zone edge or line), `reduced` (every object settled and far
    /// from them: `detection.min_fps`), `none` (nothing tracked that needs it).
    detection_need: &'static str,
    /// Frames the full rate would have shown the model and the reduced rate did not.
    frames_reduced: u64,
    /// Frames shown to the model under a reduced need because something
    /// moved outside the tracked objects.
    frames_woken_by_motion: u64,
    /// Regions of detected frames the model looked at besides the whole
    /// frame (`detection.regions`): each one model run more.
    regions_detected: u64,
    /// CPU time spent inside the video decoder for this camera.
    decode_cpu_seconds: f64,
    /// CPU time spent converting this camera's pictures.
    convert_cpu_seconds: f64,
}

#[derive(Serialize, ToSchema)]
struct Camera {
    id: String,
    name: String,
    /// The stream URL (never with credentials: the config refuses them there).
    url: String,
    village: Option<String>,
    grid: Option<String>,
    location: Option<String>,
    enabled: bool,
    detection_fps: f64,
    health: Health,
}

fn health_of(cam: &CameraView) -> Health {
    let health = cam.health.borrow().clone();
    let s = &cam.stats;
    let get = CameraStats::get;
    Health {
        seconds_in_state: (Utc::now() - health.since).num_seconds().max(0),
        health,
        last_frame_at: s.last_frame_at(),
        reconnects: get(&s.reconnects),
        frames_received: get(&s.frames_received),
        bytes_received: get(&s.bytes_received),
        lost_packets: get(&s.lost_packets),
        frames_decoded: get(&s.frames_decoded),
        decode_errors: get(&s.decode_errors),
        frames_dropped_decode: get(&s.frames_dropped_decode),
        frames_offered_to_detector: get(&s.frames_offered),
        frames_detected: get(&s.frames_detected),
        frames_dropped_detect: get(&s.frames_dropped_detect),
        idle: s.idle(),
        frames_skipped_idle: get(&s.frames_skipped_idle),
        detection_need: s.need.need().as_str(),
        frames_reduced: get(&s.frames_reduced),
        frames_woken_by_motion: get(&s.frames_woken_by_motion),
        regions_detected: get(&s.regions_detected),
        decode_cpu_seconds: get(&s.decode_cpu_ns) as f64 / 1e9,
        convert_cpu_seconds: get(&s.convert_cpu_ns) as f64 / 1e9,
    }
}

/// The body of a camera (never its credentials).
fn camera_of(c: &CameraView) -> Camera {
    Camera {
        id: c.config.id.clone(),
        name: c.config.name.clone(),
        url: c.config.url.to_string(),
        village: c.config.village.clone(),
        grid: c.config.grid.clone(),
        location: c.config.location.clone(),
        enabled: c.config.enabled,
        detection_fps: c.config.detection.fps,
        health: health_of(c),
    }
}

/// The cameras the caller may see.
#[utoipa::path(get, path = "/cameras", tag = "cameras",
    responses((status = 200, description = "Cameras", body = List<Camera>)))]
async fn list(State(state): State<AppState>, caller: Caller) -> Json<List<Camera>> {
    let items: Vec<Camera> = state
        .cameras
        .list()
        .iter()
        .filter(|c| caller.sees_village(c.config.village.as_deref()))
        .map(camera_of)
        .collect();
    Json(List { items })
}

fn no_camera(id: &str) -> ApiError {
    ApiError::not_found(format!("no camera with id \"{id}\""))
}

/// The camera with this id if the caller may see it (404 otherwise).
pub fn visible_camera(state: &AppState, caller: &Caller, id: &str) -> Result<CameraView, ApiError> {
    state
        .cameras
        .get(id)
        .filter(|c| caller.sees_village(c.config.village.as_deref()))
        .ok_or_else(|| no_camera(id))
}

/// A camera.
#[utoipa::path(get, path = "/cameras/{id}", tag = "cameras", params(("id" = String, Path, description = "the camera's id")),
    responses((status = 200, description = "The camera", body = Camera), (status = 404, description = "No such camera, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody)))]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Camera>, ApiError> {
    Ok(Json(camera_of(&visible_camera(&state, &caller, &id)?)))
}

fn change_error(e: CameraChangeError) -> ApiError {
    match e {
        CameraChangeError::Invalid { field, message } => ApiError::invalid_camera(&field, message),
        CameraChangeError::NotFound(id) => no_camera(&id),
        CameraChangeError::Conflict(id) => ApiError::conflict(
            ErrorCode::Conflict,
            format!("a camera with id \"{id}\" exists already"),
        ),
        CameraChangeError::Internal(cause) => ApiError::internal(cause),
    }
}

/// A body that is not JSON at all. The rejection's text is not shown: it
/// may quote the body, and the body may hold a password.
fn bad_body(_: JsonRejection) -> ApiError {
    ApiError::invalid_camera(
        "body",
        "must be a JSON object (Content-Type: application/json)",
    )
}

/// The camera's body after a change (its health starts afresh).
fn changed(state: &AppState, id: &str) -> Result<Json<Camera>, ApiError> {
    let cam = state
        .cameras
        .get(id)
        .ok_or_else(|| ApiError::internal(format!("camera {id} missing after a change")))?;
    Ok(Json(camera_of(&cam)))
}

/// The credentials of a camera body, as the config file names them.
const CREDENTIALS: [&str; 3] = ["username", "password", "password_env"];

/// Refuses `password_env` in a body: the server would read any environment
/// variable an admin names, and the answer would say whether it is set.
/// (The config file, written by whoever runs the server, may use it.)
fn refuse_password_env(body: &serde_json::Value) -> Result<(), ApiError> {
    if body.get("password_env").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid_camera(
            "password_env",
            "field `password_env`: cannot be set through the API; send `password`",
        ));
    }
    Ok(())
}

/// A patch that moves a camera to another host drops the stored
/// credentials (they were for the old host) but those the patch gives.
fn drop_credentials_on_new_host(current: &CameraView, patch: &mut serde_json::Value) {
    let Some(url) = patch.get("url").and_then(|u| u.as_str()) else {
        return;
    };
    let host = |u: &url::Url| (u.host_str().map(str::to_owned), u.port_or_known_default());
    // An unparsable URL is refused later, naming `url`.
    let Ok(new) = url::Url::parse(url) else {
        return;
    };
    if host(&new) == host(&current.config.url) {
        return;
    }
    if let Some(fields) = patch.as_object_mut() {
        for name in CREDENTIALS {
            fields
                .entry(name.to_owned())
                .or_insert(serde_json::Value::Null);
        }
    }
}

/// The names of the fields a change touched, for the audit trail (never
/// their values: a password may be among them).
fn fields(body: &serde_json::Value) -> serde_json::Value {
    let names: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    serde_json::json!({ "fields": names })
}

/// Add a camera (admin): it starts at once and survives a restart.
///
/// `password_env` is refused (400 naming it): the server would read an
/// environment variable an admin names. Give `password`.
#[utoipa::path(post, path = "/cameras", tag = "cameras",
    request_body = xueliang_core::config::RawCamera,
    responses(
        (status = 201, description = "Added", body = Camera),
        (status = 400, description = "Not a valid camera; the message names the field (`invalid_camera`)", body = crate::error::ErrorBody), (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
        (status = 409, description = "A camera with this id exists (`conflict`)", body = crate::error::ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Camera>), ApiError> {
    caller.require(xueliang_core::Role::Admin)?;
    let Json(body) = body.map_err(bad_body)?;
    refuse_password_env(&body)?;
    let detail = fields(&body);
    let config = state.cameras.create(body).await.map_err(change_error)?;
    audit(
        &state,
        caller.audit("camera.create", "camera", &config.id, detail),
    )
    .await;
    Ok((StatusCode::CREATED, changed(&state, &config.id)?))
}

/// Change a camera (admin): a JSON merge patch (RFC 7396) over its
/// definition; `null` removes a field, `id` cannot change, a patch without
/// `password` keeps the stored one. The camera restarts with the new
/// definition, or stops when disabled. `password_env` is refused, as when
/// adding; a new host drops the stored credentials.
#[utoipa::path(patch, path = "/cameras/{id}", tag = "cameras", params(("id" = String, Path, description = "the camera's id")),
    request_body = xueliang_core::config::RawCamera,
    responses((status = 200, description = "Changed", body = Camera), (status = 400, description = "Not a valid camera; the message names the field (`invalid_camera`)", body = crate::error::ErrorBody), (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody), (status = 404, description = "No such camera, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    patch: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Camera>, ApiError> {
    caller.require(xueliang_core::Role::Admin)?;
    let Json(mut patch) = patch.map_err(bad_body)?;
    refuse_password_env(&patch)?;
    let detail = fields(&patch);
    if let Some(current) = state.cameras.get(&id) {
        drop_credentials_on_new_host(&current, &mut patch);
    }
    let config = state
        .cameras
        .update(&id, patch)
        .await
        .map_err(change_error)?;
    audit(
        &state,
        caller.audit("camera.update", "camera", &config.id, detail),
    )
    .await;
    changed(&state, &config.id)
}

/// Remove a camera (admin); its events stay.
#[utoipa::path(delete, path = "/cameras/{id}", tag = "cameras", params(("id" = String, Path, description = "the camera's id")),
    responses((status = 204, description = "Removed"), (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody), (status = 404, description = "No such camera, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(xueliang_core::Role::Admin)?;
    state.cameras.delete(&id).await.map_err(change_error)?;
    audit(
        &state,
        caller.audit("camera.delete", "camera", &id, serde_json::json!({})),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The camera's newest decoded frame.
#[utoipa::path(get, path = "/cameras/{id}/frame.jpg", tag = "cameras", params(("id" = String, Path, description = "the camera's id")),
    responses(
        (status = 200, description = "The frame", content_type = "image/jpeg", body = [u8]),
        (status = 404, description = "No such camera (`not_found`), or no decoded frame yet: disabled, connecting or offline (`no_frame`)", body = crate::error::ErrorBody),
    ))]
async fn frame(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_camera(&state, &caller, &id)?;
    let Some(jpeg) = state.cameras.latest_frame_jpeg(&id).await else {
        let elsewhere = Lasting::Total(FORWARDED_FRAME);
        if let Some(answer) = to_runner(&state, &headers, &id, "frame.jpg", elsewhere).await {
            return Ok(answer);
        }
        return Err(ApiError::not_found_code(
            ErrorCode::NoFrame,
            format!("camera \"{id}\" has no decoded frame yet (disabled, connecting or offline)"),
        ));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response())
}

/// How long a frame asked of the node that runs the camera may take.
const FORWARDED_FRAME: std::time::Duration = std::time::Duration::from_secs(10);

/// The camera's health and counters.
#[utoipa::path(get, path = "/cameras/{id}/health", tag = "cameras", params(("id" = String, Path, description = "the camera's id")),
    responses((status = 200, description = "Health", body = Health), (status = 404, description = "No such camera, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody)))]
async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Health>, ApiError> {
    Ok(Json(health_of(&visible_camera(&state, &caller, &id)?)))
}
