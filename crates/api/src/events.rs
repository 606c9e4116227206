//! `GET /events` (filters, cursor pages), `GET /events/{id}`, its snapshot,
//! the operators' workflow (`/events/{id}/actions`) and the live feed
//! (`/events/stream`). Everything is limited to the caller's villages.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::body::List;
use crate::error::{ApiError, ErrorCode};
use crate::event_body::EventBody;
use crate::live::{History, LiveItem, Replay};
use crate::params::{next_cursor, Page, PageQuery, Params};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{
    Event, EventChange, EventKind, EventQuery, EventStatus, Role, WorkflowAction, WorkflowState,
    WorkflowStep,
};
use xueliang_store::StepOutcome;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream))
        .routes(routes!(one))
        .routes(routes!(actions, act))
        .routes(routes!(snapshot))
}

/// The filters of an event listing, as [`event_query`] reads them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
pub(crate) struct EventFilters {
    /// Events in this zone (or at this counting line).
    #[param(min_length = 1)]
    zone: Option<String>,
    /// Events of this rule.
    #[param(min_length = 1)]
    rule: Option<String>,
    /// Events of this camera (its id).
    #[param(min_length = 1)]
    camera: Option<String>,
    #[param(min_length = 1)]
    village: Option<String>,
    #[param(min_length = 1)]
    grid: Option<String>,
    #[param(inline)]
    kind: Option<EventKind>,
    /// Events of this detected label (`person`, `car`, ...; `camera` for health events).
    #[param(min_length = 1)]
    label: Option<String>,
    #[param(inline)]
    status: Option<EventStatus>,
    #[param(inline)]
    workflow: Option<WorkflowState>,
    /// Events whose best score is at least this.
    #[param(minimum = 0, maximum = 1)]
    min_score: Option<f32>,
    /// Events that started at or after this time.
    since: Option<DateTime<Utc>>,
    /// Events that started before this time (after `since`).
    until: Option<DateTime<Utc>>,
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

/// Events the caller may see, newest first, a page at a time.
#[utoipa::path(get, path = "/events", tag = "events", params(EventFilters, PageQuery),
    responses(
        (status = 200, description = "A page of events", body = Page<EventBody>),
        (status = 400, description = "A parameter is not valid (`invalid_parameter`)", body = crate::error::ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Page<EventBody>>, ApiError> {
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
pub(crate) async fn visible_event(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<Event, ApiError> {
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

/// An event.
#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = i64, Path, description = "the event's id")),
    responses((status = 200, description = "The event", body = EventBody), (status = 400, description = "Not an event id (`invalid_parameter`)", body = crate::error::ErrorBody), (status = 404, description = "No such event, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody)))]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventBody>, ApiError> {
    Ok(Json(visible_event(&state, &caller, &id).await?.into()))
}

/// The snapshot of the frame the event started on (its best one, for object events).
#[utoipa::path(get, path = "/events/{id}/snapshot.jpg", tag = "events", params(("id" = i64, Path, description = "the event's id")),
    responses(
        (status = 200, description = "The snapshot", content_type = "image/jpeg", body = [u8]),
        (status = 400, description = "Not an event id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such event, or it has no snapshot (`not_found`)", body = crate::error::ErrorBody),
    ))]
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

/// The filters of the live feed.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // it describes the query string; `Params` reads it
struct StreamFilters {
    #[param(min_length = 1)]
    camera: Option<String>,
    #[param(inline)]
    kind: Option<EventKind>,
    #[param(min_length = 1)]
    label: Option<String>,
    #[param(min_length = 1)]
    village: Option<String>,
}

/// `GET /events/stream`: Server-Sent Events, one per change to an event
/// (`event: started|improved|ended`, `id: <epoch>-<seq>`, `data:` the event
/// as JSON), filtered like the list. `Last-Event-ID` (sent by browsers when
/// they reconnect) resumes the feed: the events changed since that id come
/// first, each once in its latest state. A client that falls behind, or
/// whose id cannot be resumed, gets `event: lagged` with the number of
/// changes it missed (`unknown` after a restart) and should reload the list.
/// The feed ends (`event: closed`, `data:` why) when its token is revoked or
/// expires, or its user is disabled, deleted or given other villages or
/// another role: it re-checks when the API changes a token or user, and
/// every [`crate::LIVE_RECHECK`]. Every subscriber shares one read of each
/// change ([`crate::live`]).
#[utoipa::path(get, path = "/events/stream", tag = "events", params(StreamFilters,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received (`<epoch>-<seq>`): the feed resumes after it")),
    responses(
        (status = 200, description = "Server-Sent Events: `event: started|improved|ended|updated` with `id: <epoch>-<seq>` and the event as JSON in `data:`; `event: lagged` with the number of changes missed (`unknown` after a restart); `event: closed` with why, when the caller's access ends", content_type = "text/event-stream", body = String),
        (status = 400, description = "A parameter is not valid (`invalid_parameter`)", body = crate::error::ErrorBody),
    ))]
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
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
    // Subscribe before reading the history: nothing falls between the two.
    let rx = state.live.subscribe(&state.store);
    let history = state.live.history.clone();
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (backlog, seen) = match last_id {
        Some(id) => replay(&state, &filter, &history.since(&id)).await,
        None => (VecDeque::new(), history.last()),
    };
    let mut recheck = tokio::time::interval(state.live_recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        access: state.watch_access(),
        state,
        filter,
        rx,
        history,
        backlog,
        seen,
        recheck,
        ended: false,
    };
    let events = futures::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn lagged(missed: Option<u64>) -> SseEvent {
    let data = missed.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    SseEvent::default().event("lagged").data(data)
}

/// The events to send first to a client resuming after `replay`, and the
/// sequence number they bring it to.
async fn replay(
    state: &AppState,
    filter: &StreamFilter,
    replay: &Replay,
) -> (VecDeque<SseEvent>, u64) {
    let history = &state.live.history;
    let (changes, last) = match replay {
        Replay::Lost(missed, last) => {
            return (
                VecDeque::from([lagged(*missed).id(history.id(*last))]),
                *last,
            )
        }
        Replay::Since(changes, last) => (changes, *last),
    };
    // Each event once, at its latest change, in the order of those changes.
    let mut latest: Vec<(u64, EventChange)> = Vec::new();
    for (seq, change) in changes.iter().rev() {
        if !latest.iter().any(|(_, c)| c.id == change.id) {
            latest.push((*seq, *change));
        }
    }
    latest.reverse();
    let mut out = VecDeque::new();
    for (seq, change) in latest {
        let Ok(Some(event)) = state.store.get_event(change.id).await else {
            continue;
        };
        if !filter.matches(&event) {
            continue;
        }
        let body = EventBody::from(event);
        out.push_back(
            SseEvent::default()
                .event(change.change.as_str())
                .id(history.id(seq))
                .data(serde_json::to_string(&body).unwrap_or_default()),
        );
    }
    (out, last)
}

/// One subscriber's feed.
struct Feed {
    state: AppState,
    filter: StreamFilter,
    rx: broadcast::Receiver<LiveItem>,
    history: Arc<History>,
    /// Replayed events still to send.
    backlog: VecDeque<SseEvent>,
    /// Changes up to this sequence number were sent (or replayed).
    seen: u64,
    access: tokio::sync::watch::Receiver<u64>,
    recheck: tokio::time::Interval,
    ended: bool,
}

impl Feed {
    async fn next(&mut self) -> Option<SseEvent> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                biased;
                _ = self.access.changed() => {
                    if let Some(end) = self.check_caller().await {
                        return Some(end);
                    }
                }
                _ = self.recheck.tick() => {
                    if let Some(end) = self.check_caller().await {
                        return Some(end);
                    }
                }
                item = self.rx.recv() => match item {
                    Ok(LiveItem::Changed(e)) if e.seq > self.seen => {
                        self.seen = e.seq;
                        if self.filter.matches(&e.body.event) {
                            return Some(
                                SseEvent::default()
                                    .event(e.change.as_str())
                                    .id(self.history.id(e.seq))
                                    .data(&e.json),
                            );
                        }
                    }
                    Ok(LiveItem::Changed(_)) => {}
                    Ok(LiveItem::Lagged(n, seq)) => {
                        self.seen = self.seen.max(seq);
                        return Some(lagged(Some(n)).id(self.history.id(seq)));
                    }
                    Err(RecvError::Lagged(n)) => {
                        let last = self.history.last();
                        self.seen = self.seen.max(last);
                        return Some(lagged(Some(n)).id(self.history.id(last)));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Whether the feed's token and user still allow it; if not, the last
    /// event to send (`event: closed`, `data:` why), and the feed ends.
    async fn check_caller(&mut self) -> Option<SseEvent> {
        let reason = caller_still_allowed(&self.state, &self.filter.caller)
            .await
            .err()?;
        self.ended = true;
        Some(SseEvent::default().event("closed").data(reason))
    }
}

/// Whether an open stream's token and user still allow it (not revoked,
/// expired or disabled; the same role and villages); if not, why. Asked by
/// the event feed and by live video.
pub(crate) async fn caller_still_allowed(
    state: &AppState,
    caller: &Caller,
) -> Result<(), &'static str> {
    let access = &state.access;
    let reason = match (
        access.get_token(caller.token.id).await,
        access.get_user(caller.user.id).await,
    ) {
        (Ok(Some(token)), Ok(Some(user))) => {
            let now = chrono::Utc::now();
            if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| e <= now) {
                "token_revoked"
            } else if user.disabled {
                "user_disabled"
            } else if user.villages != caller.user.villages || user.role != caller.user.role {
                "access_changed"
            } else {
                return Ok(());
            }
        }
        (Ok(_), Ok(_)) => "token_revoked",
        // Unable to tell: end it; the client reconnects and is checked anew.
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "live stream: cannot re-check the caller");
            "recheck_failed"
        }
    };
    Err(reason)
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

/// One workflow step taken on an event.
#[derive(Serialize, ToSchema)]
struct EventAction {
    id: i64,
    at: DateTime<Utc>,
    user: String,
    #[schema(value_type = WorkflowAction)]
    action: String,
    #[schema(value_type = Option<String>)]
    assignee: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    note: Option<serde_json::Value>,
    /// The state before.
    #[schema(value_type = Option<WorkflowState>)]
    from: Option<serde_json::Value>,
    /// The state after.
    #[schema(value_type = Option<WorkflowState>)]
    to: Option<serde_json::Value>,
}

/// `GET /events/{id}/actions`: the event's audit trail, oldest first.
#[utoipa::path(get, path = "/events/{id}/actions", tag = "events", params(("id" = i64, Path, description = "the event's id")),
    responses((status = 200, description = "The workflow steps, oldest first", body = List<EventAction>), (status = 400, description = "Not an event id (`invalid_parameter`)", body = crate::error::ErrorBody), (status = 404, description = "No such event, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody)))]
async fn actions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<List<EventAction>>, ApiError> {
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
    let items = items
        .into_iter()
        .map(|a| EventAction {
            id: a.id,
            at: a.at,
            user: a.user,
            action: a.action,
            assignee: a.detail.get("assignee").cloned(),
            note: a.detail.get("note").cloned(),
            from: a.detail.get("from").cloned(),
            to: a.detail.get("to").cloned(),
        })
        .collect();
    Ok(Json(List { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: WorkflowAction,
    /// Required to assign.
    #[schema(max_length = 2000)]
    assignee: Option<String>,
    /// Required for a note.
    #[schema(max_length = 2000)]
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
/// alarm, add a note, keep or unkeep; recorded with the caller and time.
///
/// Acknowledging also acknowledges the event's alert, which stops its
/// escalation. `keep` marks the event to keep (a case file): retention and
/// the disk budget never delete it; `unkeep` takes the mark off.
#[utoipa::path(post, path = "/events/{id}/actions", tag = "events", params(("id" = i64, Path, description = "the event's id")), request_body = ActionRequest,
    responses(
        (status = 200, description = "Done: the event after it", body = EventBody),
        (status = 400, description = "Not an event id, or a field is missing or too long (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 403, description = "Not an operator (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such event, or not in the caller's villages (`not_found`)", body = crate::error::ErrorBody),
        (status = 409, description = "The event's state does not allow it (`invalid_transition`)", body = crate::error::ErrorBody),
    ))]
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
        StepOutcome::Refused(why) => {
            return Err(ApiError::conflict(ErrorCode::InvalidTransition, why))
        }
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
