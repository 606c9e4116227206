//! `GET /events` (filters, cursor pages), `GET /events/{id}`, its snapshot,
//! the operators' workflow (`/events/{id}/actions`) and the live feed
//! (`/events/stream`). Everything is limited to the caller's villages.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::event_body::EventBody;
use crate::live::LiveItem;
use crate::params::{next_cursor, Params};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use xueliang_core::{
    Event, EventKind, EventQuery, EventStatus, Role, WorkflowAction, WorkflowState, WorkflowStep,
};
use xueliang_store::StepOutcome;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list))
        .route("/events/stream", get(stream))
        .route("/events/{id}", get(one))
        .route("/events/{id}/actions", get(actions).post(act))
        .route("/events/{id}/snapshot.jpg", get(snapshot))
}

#[derive(Serialize)]
struct Page {
    items: Vec<EventBody>,
    next_cursor: Option<String>,
}

/// The filters [`event_query`] reads (listings add the page, stats their groups).
#[rustfmt::skip]
pub const FILTERS: &[&str] = &[
    "zone", "rule", "camera", "village", "grid", "kind", "label", "status", "workflow",
    "min_score", "since", "until",
];

/// The filters of an event listing (and of stats), with the caller's scope.
pub fn event_query(p: &Params, caller: &Caller) -> Result<EventQuery, ApiError> {
    let min_score = p.parsed::<f32>("min_score")?;
    if min_score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
        return Err(ApiError::bad_parameter("min_score", "must be 0..=1"));
    }
    let query = EventQuery {
        camera_id: p.string("camera")?,
        village: p.string("village")?,
        grid: p.string("grid")?,
        kind: p.parsed::<EventKind>("kind")?,
        label: p.string("label")?,
        zone: p.string("zone")?,
        rule: p.string("rule")?,
        status: p.parsed::<EventStatus>("status")?,
        workflow: p.parsed::<WorkflowState>("workflow")?,
        min_score,
        villages: caller.scope(),
        since: p.time("since")?,
        until: p.time("until")?,
        before_id: None,
        limit: 0,
    };
    if let (Some(s), Some(u)) = (query.since, query.until) {
        if s >= u {
            return Err(ApiError::bad_parameter("until", "must be after `since`"));
        }
    }
    Ok(query)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Page>, ApiError> {
    let p = Params::new(raw, &[FILTERS, &["cursor", "limit"]].concat())?;
    let limit = p.limit()?;
    let query = EventQuery {
        before_id: p.cursor()?,
        // One more than the page: its presence says another page follows.
        limit: limit + 1,
        ..event_query(&p, &caller)?
    };
    let mut events = state
        .store
        .list_events(query)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = next_cursor(&mut events, limit, |e| e.id);
    Ok(Json(Page {
        items: events.into_iter().map(EventBody::from).collect(),
        next_cursor,
    }))
}

/// The event with this id if the caller may see it; 404 otherwise (an
/// event of another village is as absent as one that never was).
async fn visible_event(state: &AppState, caller: &Caller, raw: &str) -> Result<Event, ApiError> {
    visible_event_id(state, caller, event_id(raw)?).await
}

pub(crate) async fn visible_event_id(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<Event, ApiError> {
    match state
        .store
        .get_event(id)
        .await
        .map_err(ApiError::internal)?
    {
        Some(e) if caller.sees_village(e.village.as_deref()) => Ok(e),
        _ => Err(ApiError::not_found(format!("no event {id}"))),
    }
}

fn event_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::bad_parameter("id", format!("\"{raw}\" is not an event id")))
}

async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventBody>, ApiError> {
    Ok(Json(visible_event(&state, &caller, &id).await?.into()))
}

async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = visible_event(&state, &caller, &id).await?.id;
    match state.store.snapshot(id).await.map_err(ApiError::internal)? {
        Some(jpeg) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            jpeg,
        )),
        None => Err(ApiError::not_found(format!("no snapshot for event {id}"))),
    }
}

const STREAM_KNOWN: &[&str] = &["camera", "kind", "label", "village"];

/// `GET /events/stream`: Server-Sent Events, one per change to an event
/// (`event: started|improved|ended`, `data:` the event as JSON), filtered like
/// the list. A client that falls behind gets `event: lagged` with the number
/// of changes it missed, and should reload the list. Every subscriber shares
/// one read of each change ([`crate::live`]).
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let p = Params::new(raw, STREAM_KNOWN)?;
    let filter = StreamFilter {
        camera: p.string("camera")?,
        kind: p.parsed::<EventKind>("kind")?,
        label: p.string("label")?,
        village: p.string("village")?,
        caller,
    };
    let feed = state.live.subscribe(&state.store);
    let lagged = |n: u64| SseEvent::default().event("lagged").data(n.to_string());
    let events = futures::stream::unfold((feed, filter), move |(mut rx, filter)| async move {
        loop {
            let event = match rx.recv().await {
                Ok(LiveItem::Changed(e)) if filter.matches(&e.body.event) => SseEvent::default()
                    .event(e.change.as_str())
                    .id(e.body.event.id.to_string())
                    .data(&e.json),
                Ok(LiveItem::Changed(_)) => continue,
                Ok(LiveItem::Lagged(n)) | Err(RecvError::Lagged(n)) => lagged(n),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), (rx, filter)));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

struct StreamFilter {
    camera: Option<String>,
    kind: Option<EventKind>,
    label: Option<String>,
    village: Option<String>,
    /// The subscriber: only events of their villages reach them.
    caller: Caller,
}

impl StreamFilter {
    fn matches(&self, e: &Event) -> bool {
        self.caller.sees_village(e.village.as_deref())
            && self.camera.as_ref().is_none_or(|c| *c == e.camera_id)
            && self.kind.is_none_or(|k| k == e.kind)
            && self.label.as_ref().is_none_or(|l| *l == e.label)
            && self
                .village
                .as_ref()
                .is_none_or(|v| e.village.as_ref() == Some(v))
    }
}

/// `GET /events/{id}/actions`: the event's audit trail, oldest first.
async fn actions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = visible_event(&state, &caller, &id).await?.id;
    let mut items = state
        .access
        .list_audit(
            Some(("event".into(), id.to_string())),
            None,
            xueliang_store::MAX_PAGE,
        )
        .await
        .map_err(ApiError::internal)?;
    items.reverse();
    let items: Vec<serde_json::Value> = items
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "at": a.at,
                "user": a.user,
                "action": a.action,
                "assignee": a.detail.get("assignee"),
                "note": a.detail.get("note"),
                "from": a.detail.get("from"),
                "to": a.detail.get("to"),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: WorkflowAction,
    assignee: Option<String>,
    note: Option<String>,
}

/// Longest note or assignee name kept.
const MAX_TEXT: usize = 2000;

fn text(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if v.as_ref().is_some_and(|s| s.chars().count() > MAX_TEXT) {
        return Err(ApiError::bad_parameter(
            name,
            format!("at most {MAX_TEXT} characters"),
        ));
    }
    Ok(v)
}

/// `POST /events/{id}/actions`: acknowledge, assign, resolve, mark a false
/// alarm or add a note; recorded with the caller and time. Acknowledging
/// also acknowledges the event's alert, which stops its escalation.
async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ActionRequest>,
) -> Result<Json<EventBody>, ApiError> {
    caller.require(Role::Operator)?;
    let id = visible_event(&state, &caller, &id).await?.id;
    let assignee = text("assignee", req.assignee)?;
    let note = text("note", req.note)?;
    match req.action {
        WorkflowAction::Assign if assignee.is_none() => {
            return Err(ApiError::bad_parameter("assignee", "required to assign"))
        }
        WorkflowAction::Note if note.is_none() => {
            return Err(ApiError::bad_parameter("note", "required for a note"))
        }
        _ => {}
    }
    let step = WorkflowStep {
        event_id: id,
        action: req.action,
        by: caller.user.username.clone(),
        assignee,
        note,
        at: chrono::Utc::now(),
    };
    let event = match state
        .access
        .workflow_step(step)
        .await
        .map_err(ApiError::internal)?
    {
        StepOutcome::Done(e) => *e,
        StepOutcome::NoSuchEvent => return Err(ApiError::not_found(format!("no event {id}"))),
        StepOutcome::Refused(why) => return Err(ApiError::conflict("invalid_transition", why)),
    };
    if req.action == WorkflowAction::Acknowledge {
        acknowledge_alert(&state, id, &caller.user.username).await;
    }
    Ok(Json(event.into()))
}

async fn acknowledge_alert(state: &AppState, event_id: i64, by: &str) {
    let Some(alerts) = &state.alerts else { return };
    let result = async {
        if let Some(alert) = alerts.store.alert_of_event(event_id).await? {
            alerts
                .store
                .ack_alert(
                    alert.id,
                    by.to_owned(),
                    "dashboard".into(),
                    chrono::Utc::now(),
                )
                .await?;
        }
        Ok::<_, xueliang_store::StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, event_id, "cannot acknowledge the event's alert");
    }
}
