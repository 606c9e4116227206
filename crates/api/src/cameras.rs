//! `GET /cameras`, `GET /cameras/{id}/health`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, CameraView};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use xueliang_core::{CameraHealth, CameraStats};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cameras", get(list))
        .route("/cameras/{id}/health", get(health))
}

#[derive(Serialize)]
struct Health {
    #[serde(flatten)]
    health: CameraHealth,
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
}

#[derive(Serialize)]
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
    }
}

/// The camera with this id if the caller may see it (404 otherwise).
pub fn visible_camera(state: &AppState, caller: &Caller, id: &str) -> Result<CameraView, ApiError> {
    state
        .cameras
        .get(id)
        .filter(|c| caller.sees_village(c.config.village.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("no camera with id \"{id}\"")))
}

async fn list(State(state): State<AppState>, caller: Caller) -> Json<serde_json::Value> {
    let items: Vec<Camera> = state
        .cameras
        .list()
        .iter()
        .filter(|c| caller.sees_village(c.config.village.as_deref()))
        .map(|c| Camera {
            id: c.config.id.clone(),
            name: c.config.name.clone(),
            url: c.config.url.to_string(),
            village: c.config.village.clone(),
            grid: c.config.grid.clone(),
            location: c.config.location.clone(),
            enabled: c.config.enabled,
            detection_fps: c.config.detection.fps,
            health: health_of(c),
        })
        .collect();
    Json(serde_json::json!({ "items": items }))
}

async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Health>, ApiError> {
    let cam = visible_camera(&state, &caller, &id)?;
    Ok(Json(health_of(&cam)))
}
