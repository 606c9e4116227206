//! Alerts: the organisation (villages, grids, officers, duty roster),
//! an event's alert and deliveries with their attempts, acknowledgement
//! (`POST` from the centre, or the signed link in a message).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::visible_event_id;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use xueliang_alerts::AlertService;
use xueliang_store::alerts::{Alert, Attempt, Delivery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/organisation", get(organisation))
        .route("/events/{id}/deliveries", get(event_deliveries))
        .route("/alerts/{id}", get(alert))
        .route("/alerts/{id}/ack", get(ack_link).post(ack_api))
}

fn service(state: &AppState) -> Result<&Arc<AlertService>, ApiError> {
    state
        .alerts
        .as_ref()
        .ok_or_else(|| ApiError::not_found("alerts are not configured"))
}

fn id_param(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::bad_parameter("id", format!("\"{raw}\" is not an id")))
}

async fn organisation(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Officers' phone numbers are for the centre's staff, not viewers.
    caller.require(xueliang_core::Role::Operator)?;
    let svc = service(&state)?;
    let org = &svc.organisation;
    let now = Utc::now();
    let on_duty: Vec<serde_json::Value> = org
        .roster
        .iter()
        .filter(|r| org.covers(&r.shift, now))
        .map(|r| serde_json::json!({ "officer": r.officer, "villages": r.villages, "grids": r.grids }))
        .collect();
    let leaders: Vec<&str> = org.leaders_at(now).iter().map(|o| o.id.as_str()).collect();
    let mut body = serde_json::to_value(org).map_err(ApiError::internal)?;
    body["on_duty_now"] = serde_json::json!(on_duty);
    body["duty_leaders_now"] = serde_json::json!(leaders);
    Ok(Json(body))
}

#[derive(Serialize)]
struct DeliveryBody {
    #[serde(flatten)]
    delivery: Delivery,
    attempt_log: Vec<Attempt>,
}

#[derive(Serialize)]
struct AlertBody {
    #[serde(flatten)]
    alert: Alert,
    /// `open`, `acknowledged` or `escalated`.
    status: &'static str,
    deliveries: Vec<DeliveryBody>,
}

async fn alert_body(svc: &AlertService, alert: Alert) -> Result<AlertBody, ApiError> {
    let deliveries = svc
        .store
        .deliveries(alert.id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|(delivery, attempt_log)| DeliveryBody {
            delivery,
            attempt_log,
        })
        .collect();
    let status = if alert.acked_at.is_some() {
        "acknowledged"
    } else if alert.escalated_at.is_some() {
        "escalated"
    } else {
        "open"
    };
    Ok(AlertBody {
        alert,
        status,
        deliveries,
    })
}

/// `{"event_id": .., "alert": {...} | null}`: the alert the event opened or
/// was merged into, with every delivery and attempt.
async fn event_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = id_param(&raw)?;
    let svc = service(&state)?;
    visible_event_id(&state, &caller, id).await?;
    let alert = match svc
        .store
        .alert_of_event(id)
        .await
        .map_err(ApiError::internal)?
    {
        Some(a) => Some(alert_body(svc, a).await?),
        None => None,
    };
    Ok(Json(serde_json::json!({ "event_id": id, "alert": alert })))
}

/// The alert if the caller may see the event that opened it; 404 otherwise.
async fn visible_alert(
    state: &AppState,
    svc: &AlertService,
    caller: &Caller,
    id: i64,
) -> Result<Alert, ApiError> {
    let missing = || ApiError::not_found(format!("no alert {id}"));
    let a = svc
        .store
        .get_alert(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(missing)?;
    visible_event_id(state, caller, a.event_id)
        .await
        .map_err(|_| missing())?;
    Ok(a)
}

async fn alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<AlertBody>, ApiError> {
    let id = id_param(&raw)?;
    let svc = service(&state)?;
    let a = visible_alert(&state, svc, &caller, id).await?;
    Ok(Json(alert_body(svc, a).await?))
}

/// `POST /alerts/{id}/ack`: the caller acknowledges the alert.
async fn ack_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<AlertBody>, ApiError> {
    caller.require(xueliang_core::Role::Operator)?;
    let id = id_param(&raw)?;
    let svc = service(&state)?;
    visible_alert(&state, svc, &caller, id).await?;
    let a = svc
        .store
        .ack_alert(id, caller.user.username.clone(), "api".into(), Utc::now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(alert_body(svc, a).await?))
}

/// `GET /alerts/{id}/ack?officer=..&sig=..`: the link in a message.
async fn ack_link(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let id = id_param(&raw)?;
    let svc = service(&state)?;
    let p = Params::new(q, &["officer", "sig"])?;
    let officer = p
        .string("officer")?
        .ok_or_else(|| ApiError::bad_parameter("officer", "required"))?;
    let sig = p
        .string("sig")?
        .ok_or_else(|| ApiError::bad_parameter("sig", "required"))?;
    if !svc.verify_ack_link(id, &officer, &sig) {
        return Ok((
            StatusCode::FORBIDDEN,
            Html(
                "<!doctype html><meta charset=utf-8><title>链接无效</title><p>确认链接无效。</p>"
                    .to_owned(),
            ),
        ));
    }
    let a = svc
        .store
        .ack_alert(id, officer, "link".into(), Utc::now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let by = html_escape(a.acked_by.as_deref().unwrap_or_default());
    Ok((
        StatusCode::OK,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>已确认</title><p>告警 {} 已确认（{by}）。</p>",
            a.id
        )),
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
