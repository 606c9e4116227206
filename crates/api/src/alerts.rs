//! Alerts: the organisation (villages, grids, officers, duty roster),
//! an event's alert and deliveries with their attempts, acknowledgement
//! (`POST` from the centre, or the signed link in a message).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::visible_event_id;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_alerts::config::Organisation;
use xueliang_alerts::message::{kind_zh, local_time, zone_name};
use xueliang_alerts::{AckLink, AlertService};
use xueliang_store::alerts::{Alert, Attempt, Delivery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(organisation))
        .routes(routes!(event_deliveries))
        .routes(routes!(alert))
        .routes(routes!(ack_link, ack_post))
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
///
/// A user limited to villages sees only those villages and their grids, the
/// roster entries covering them, the duty leaders, and the officers these
/// name. Shifts are written as in the configuration: `days` (`"mon-fri"`),
/// `from` and `to` (`"HH:MM"`), in `[detection] timezone`.
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
    // A village user sees their villages' part of it.
    let scoped = caller
        .scope()
        .map(|villages| svc.organisation.scoped(&villages));
    let org = scoped.as_ref().unwrap_or(&svc.organisation);
    let now = Utc::now();
    let on_duty_now = org
        .roster
        .iter()
        .filter(|r| org.covers(&r.shift, now))
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

/// The signed link's query on the confirm button's `POST` (absent from the centre).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct AckPostQuery {
    /// The signed link's officer id (with `exp` and `sig`).
    #[param(min_length = 1)]
    officer: Option<String>,
    /// When the link stops working (Unix seconds; signed).
    exp: Option<i64>,
    /// The signed link's signature: present, the request needs no token and
    /// is answered with an HTML page.
    #[param(min_length = 1)]
    sig: Option<String>,
}

/// `POST /alerts/{id}/ack`: the caller acknowledges the alert; with the
/// signed link's query (`officer`, `exp`, `sig`), the confirm button of the
/// link's page (no token: the signature is the credential).
#[utoipa::path(post, path = "/alerts/{id}/ack", tag = "alerts", params(("id" = i64, Path, minimum = 1, description = "the alert's id"), AckPostQuery),
    responses(
        (status = 200, description = "Acknowledged (the first acknowledgement is kept): the alert; through the link, a page saying so", content((AlertBody = "application/json"), (String = "text/html"))),
        (status = 400, description = "Not an id, or a link's `officer`, `exp` or `sig` missing (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 401, description = "Neither a signed link nor a token (`unauthenticated`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an operator (`forbidden`); through the link, the signature is not valid (a page)", content((crate::error::ErrorBody = "application/json"), (String = "text/html"))),
        (status = 404, description = "No such alert, not in the caller's villages, or alerts are not configured (`not_found`); through the link, a page", content((crate::error::ErrorBody = "application/json"), (String = "text/html"))),
        (status = 410, description = "The link has expired (`[alerts] ack_link_days`): a page", content_type = "text/html", body = String),
    ))]
async fn ack_post(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if q.contains_key("sig") {
        return ack_by_link(&state, &raw, q).await;
    }
    let caller = caller.ok_or_else(|| ApiError::unauthenticated("log in or send a token"))?;
    caller.require(xueliang_core::Role::Operator)?;
    let id = id_param(&raw)?;
    Params::new(q, &[])?;
    let svc = service(&state)?;
    visible_alert(&state, svc, &caller, id).await?;
    let a = svc
        .store
        .ack_alert(id, caller.user.username.clone(), "api".into(), Utc::now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(alert_body(svc, a).await?).into_response())
}

/// The signed link in an alert message.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct AckLinkQuery {
    /// The officer the message went to.
    #[param(min_length = 1)]
    officer: String,
    /// When the link stops working (Unix seconds; signed).
    exp: i64,
    /// The link's signature.
    #[param(min_length = 1)]
    sig: String,
}

/// A signed link's alert id and officer, once its signature and expiry are
/// checked; otherwise the page that says why.
async fn checked_link(
    state: &AppState,
    raw: &str,
    q: HashMap<String, String>,
) -> Result<Result<(i64, String, Alert), Response>, ApiError> {
    let id = id_param(raw)?;
    let svc = service(state)?;
    let p = Params::new(q, &["officer", "exp", "sig"])?;
    let required = |name: &str| {
        p.string(name)?
            .ok_or_else(|| ApiError::bad_parameter(name, "required"))
    };
    let officer = required("officer")?;
    let sig = required("sig")?;
    let expires = p
        .parsed::<i64>("exp")?
        .ok_or_else(|| ApiError::bad_parameter("exp", "required"))?;
    let refused = |status, title: &str, text: &str| page(status, title, &format!("<p>{text}</p>"));
    match svc.check_ack_link(id, &officer, expires, &sig, Utc::now()) {
        AckLink::Invalid => {
            return Ok(Err(refused(
                StatusCode::FORBIDDEN,
                "链接无效",
                "确认链接无效。",
            )))
        }
        AckLink::Expired => {
            return Ok(Err(refused(
                StatusCode::GONE,
                "链接已过期",
                "确认链接已过期，请登录监控中心处理该告警。",
            )))
        }
        AckLink::Valid => {}
    }
    let Some(alert) = svc.store.get_alert(id).await.map_err(ApiError::internal)? else {
        return Ok(Err(refused(
            StatusCode::NOT_FOUND,
            "告警不存在",
            "该告警不存在。",
        )));
    };
    Ok(Ok((id, officer, alert)))
}

/// `GET /alerts/{id}/ack?officer=..&exp=..&sig=..`: the link in a message
/// shows the alert and a confirm button; it changes nothing (link
/// previews and mail scanners open links).
#[utoipa::path(get, path = "/alerts/{id}/ack", tag = "alerts", security(), params(("id" = i64, Path, minimum = 1, description = "the alert's id"), AckLinkQuery),
    responses(
        (status = 200, description = "The alert and, unless acknowledged already, a form that POSTs to this same URL (a page)", content_type = "text/html", body = String),
        (status = 400, description = "Not an id, or `officer`, `exp` or `sig` missing (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "The signature is not valid: a page saying so", content_type = "text/html", body = String),
        (status = 404, description = "Alerts are not configured (`not_found`); no such alert: a page", content((crate::error::ErrorBody = "application/json"), (String = "text/html"))),
        (status = 410, description = "The link has expired (`[alerts] ack_link_days`): a page", content_type = "text/html", body = String),
    ))]
async fn ack_link(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (_, _, alert) = match checked_link(&state, &raw, q).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let event = state
        .store
        .get_event(alert.event_id)
        .await
        .map_err(ApiError::internal)?;
    let mut rows = vec![("告警", format!("#{}", alert.id))];
    if let Some(e) = &event {
        let camera = state
            .cameras
            .get(&e.camera_id)
            .map(|c| c.config.name)
            .unwrap_or_else(|| e.camera_id.clone());
        let place: Vec<&str> = [e.village.as_deref(), e.grid.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        rows.push(("类型", kind_zh(e.kind.as_str(), &e.label)));
        rows.push(("摄像头", camera));
        if !place.is_empty() {
            rows.push(("地点", place.join(" ")));
        }
        if let Some(alerts) = &state.alerts {
            let tz = alerts.organisation.tz;
            let at = local_time(e.started_at, tz);
            rows.push(("时间", format!("{at}（{}）", zone_name(tz))));
        }
    }
    let status = match (&alert.acked_at, &alert.acked_by) {
        (Some(_), by) => format!("已确认（{}）", by.as_deref().unwrap_or_default()),
        (None, _) => "未确认".to_owned(),
    };
    rows.push(("状态", status));
    let table: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{}</td></tr>", html_escape(v)))
        .collect();
    // No `action`: the form posts to this same URL, signed query included.
    let button = if alert.acked_at.is_none() {
        "<form method=post><button type=submit>确认收到</button></form>"
    } else {
        ""
    };
    Ok(page(
        StatusCode::OK,
        "告警确认",
        &format!("<h1>告警确认</h1><table>{table}</table>{button}"),
    ))
}

/// The confirm button of the link's page.
async fn ack_by_link(
    state: &AppState,
    raw: &str,
    q: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (id, officer, _) = match checked_link(state, raw, q).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let svc = service(state)?;
    let a = svc
        .store
        .ack_alert(id, officer, "link".into(), Utc::now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let by = html_escape(a.acked_by.as_deref().unwrap_or_default());
    Ok(page(
        StatusCode::OK,
        "已确认",
        &format!("<p>告警 #{} 已确认（{by}）。</p>", a.id),
    ))
}

/// A small page for people on phones: no script, not framable, forms only
/// to this server.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=zh-CN><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}th{{text-align:left;padding-right:1em}}\
         button{{font-size:1.2em;padding:.5em 2em;margin-top:1em}}</style>\
         <body>{body}</body></html>"
    );
    (
        status,
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )],
        Html(html),
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
