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
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_alerts::config::Organisation;
use xueliang_alerts::AlertService;
use xueliang_store::alerts::{Alert, Attempt, Delivery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(organisation))
        .routes(routes!(event_deliveries))
        .routes(routes!(alert))
        .routes(routes!(ack_link, ack_api))
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

/// The organisation, with who is on duty now.
#[derive(Serialize, ToSchema)]
struct OrganisationBody {
    #[serde(flatten)]
    organisation: Organisation,
    /// The roster entries whose shift covers now.
    on_duty_now: Vec<OnDuty>,
    /// The ids of the duty leaders whose shift covers now.
    duty_leaders_now: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct OnDuty {
    officer: String,
    villages: Vec<String>,
    grids: Vec<String>,
}

/// Villages, grids, officers, the duty roster and who is on duty now (operators).
#[utoipa::path(get, path = "/organisation", tag = "alerts",
    responses(
        (status = 200, description = "The organisation", body = OrganisationBody),
        (status = 403, description = "Not an operator (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "Alerts are not configured (`not_found`)", body = crate::error::ErrorBody),
    ))]
async fn organisation(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OrganisationBody>, ApiError> {
    // Officers' phone numbers are for the centre's staff, not viewers.
    caller.require(xueliang_core::Role::Operator)?;
    let svc = service(&state)?;
    let org = &svc.organisation;
    let now = Utc::now();
    let on_duty_now = org
        .roster
        .iter()
        .filter(|r| r.shift.covers(now))
        .map(|r| OnDuty {
            officer: r.officer.clone(),
            villages: r.villages.clone(),
            grids: r.grids.clone(),
        })
        .collect();
    let duty_leaders_now = org.leaders_at(now).iter().map(|o| o.id.clone()).collect();
    Ok(Json(OrganisationBody {
        organisation: org.clone(),
        on_duty_now,
        duty_leaders_now,
    }))
}

/// A delivery with its attempts.
#[derive(Serialize, ToSchema)]
struct DeliveryBody {
    #[serde(flatten)]
    delivery: Delivery,
    attempt_log: Vec<Attempt>,
}

/// An alert with its deliveries.
#[derive(Serialize, ToSchema)]
struct AlertBody {
    #[serde(flatten)]
    alert: Alert,
    #[schema(value_type = AlertStatus)]
    status: &'static str,
    deliveries: Vec<DeliveryBody>,
}

/// Where an alert stands.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // it describes `AlertBody::status`
enum AlertStatus {
    Open,
    Acknowledged,
    Escalated,
}

/// The alert an event opened or was merged into (`null`: none).
#[derive(Serialize, ToSchema)]
struct EventDeliveries {
    event_id: i64,
    alert: Option<AlertBody>,
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
#[utoipa::path(get, path = "/events/{id}/deliveries", tag = "alerts",
    params(("id" = i64, Path, minimum = 1, description = "the event's id")),
    responses(
        (status = 200, description = "The event's alert, if any", body = EventDeliveries),
        (status = 400, description = "Not an id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such event, not in the caller's villages, or alerts are not configured (`not_found`)", body = crate::error::ErrorBody),
    ))]
async fn event_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<EventDeliveries>, ApiError> {
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
    Ok(Json(EventDeliveries {
        event_id: id,
        alert,
    }))
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

/// An alert with its deliveries and their attempts.
#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts", params(("id" = i64, Path, minimum = 1, description = "the alert's id")),
    responses((status = 200, description = "The alert", body = AlertBody), (status = 400, description = "Not an id (`invalid_parameter`)", body = crate::error::ErrorBody), (status = 404, description = "No such alert, not in the caller's villages, or alerts are not configured (`not_found`)", body = crate::error::ErrorBody)))]
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
#[utoipa::path(post, path = "/alerts/{id}/ack", tag = "alerts", params(("id" = i64, Path, minimum = 1, description = "the alert's id")),
    responses(
        (status = 200, description = "Acknowledged (the first acknowledgement is kept)", body = AlertBody),
        (status = 400, description = "Not an id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an operator (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such alert, not in the caller's villages, or alerts are not configured (`not_found`)", body = crate::error::ErrorBody),
    ))]
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

/// The signed link in an alert message.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct AckLink {
    /// The officer the message went to.
    #[param(min_length = 1)]
    officer: String,
    /// The link's signature.
    #[param(min_length = 1)]
    sig: String,
}

/// `GET /alerts/{id}/ack?officer=..&sig=..`: the link in a message.
#[utoipa::path(get, path = "/alerts/{id}/ack", tag = "alerts", security(), params(("id" = i64, Path, minimum = 1, description = "the alert's id"), AckLink),
    responses(
        (status = 200, description = "Acknowledged: a page saying so", content_type = "text/html", body = String),
        (status = 400, description = "Not an id, or `officer` or `sig` missing (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "The signature is not valid: a page saying so", content_type = "text/html", body = String),
        (status = 404, description = "No such alert, not in the caller's villages, or alerts are not configured (`not_found`)", body = crate::error::ErrorBody),
    ))]
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
