//! `GET /events`, `GET /events/{id}`, `GET /events/{id}/snapshot.jpg`.

use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use xueliang_core::{Event, EventKind, EventQuery, EventStatus};

/// Page size when the caller gives none.
const DEFAULT_LIMIT: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list))
        .route("/events/stream", get(stream))
        .route("/events/{id}", get(one))
        .route("/events/{id}/snapshot.jpg", get(snapshot))
}

#[derive(Serialize)]
struct EventBody {
    #[serde(flatten)]
    event: Event,
    snapshot_url: Option<String>,
}

impl From<Event> for EventBody {
    fn from(event: Event) -> Self {
        let snapshot_url = event
            .has_snapshot
            .then(|| format!("/api/v1/events/{}/snapshot.jpg", event.id));
        EventBody {
            event,
            snapshot_url,
        }
    }
}

#[derive(Serialize)]
struct Page {
    items: Vec<EventBody>,
    next_cursor: Option<String>,
}

const KNOWN: &[&str] = &[
    "zone", "rule", "camera", "village", "kind", "label", "status", "since", "until", "cursor",
    "limit",
];

async fn list(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Page>, ApiError> {
    let p = Params::new(raw, KNOWN)?;
    let limit = p.parsed::<u32>("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=xueliang_store::MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_parameter(
            "limit",
            format!("must be 1..={}", xueliang_store::MAX_PAGE),
        ));
    }
    let cursor = p.parsed::<i64>("cursor")?;
    if cursor.is_some_and(|c| c <= 0) {
        return Err(ApiError::bad_parameter(
            "cursor",
            "not a cursor this API gave out",
        ));
    }
    let query = EventQuery {
        camera_id: p.string("camera")?,
        village: p.string("village")?,
        kind: p.parsed::<EventKind>("kind")?,
        label: p.string("label")?,
        zone: p.string("zone")?,
        rule: p.string("rule")?,
        status: p.parsed::<EventStatus>("status")?,
        since: p.time("since")?,
        until: p.time("until")?,
        before_id: cursor,
        // One more than the page: its presence says another page follows.
        limit: limit + 1,
    };
    if let (Some(s), Some(u)) = (query.since, query.until) {
        if s >= u {
            return Err(ApiError::bad_parameter("until", "must be after `since`"));
        }
    }
    let mut events = state
        .store
        .list_events(query)
        .await
        .map_err(ApiError::internal)?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next_cursor = more
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(Page {
        items: events.into_iter().map(EventBody::from).collect(),
        next_cursor,
    }))
}

fn event_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::bad_parameter("id", format!("\"{raw}\" is not an event id")))
}

async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventBody>, ApiError> {
    let id = event_id(&id)?;
    match state
        .store
        .get_event(id)
        .await
        .map_err(ApiError::internal)?
    {
        Some(e) => Ok(Json(e.into())),
        None => Err(ApiError::not_found(format!("no event {id}"))),
    }
}

async fn snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = event_id(&id)?;
    match state.store.snapshot(id).await.map_err(ApiError::internal)? {
        Some(jpeg) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "max-age=86400"),
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
/// of changes it missed, and should reload the list.
async fn stream(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let p = Params::new(raw, STREAM_KNOWN)?;
    let filter = StreamFilter {
        camera: p.string("camera")?,
        kind: p.parsed::<EventKind>("kind")?,
        label: p.string("label")?,
        village: p.string("village")?,
    };
    let changes = state.store.subscribe();
    let store = state.store.clone();
    let events = futures::stream::unfold(
        (changes, store, filter),
        |(mut rx, store, filter)| async move {
            loop {
                let change = match rx.recv().await {
                    Ok(c) => c,
                    Err(RecvError::Lagged(n)) => {
                        let e = SseEvent::default().event("lagged").data(n.to_string());
                        return Some((Ok(e), (rx, store, filter)));
                    }
                    Err(RecvError::Closed) => return None,
                };
                let Ok(Some(event)) = store.get_event(change.id).await else {
                    continue;
                };
                if !filter.matches(&event) {
                    continue;
                }
                let body = serde_json::to_string(&EventBody::from(event)).unwrap_or_default();
                let e = SseEvent::default()
                    .event(change.change.as_str())
                    .id(change.id.to_string())
                    .data(body);
                return Some((Ok(e), (rx, store, filter)));
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

struct StreamFilter {
    camera: Option<String>,
    kind: Option<EventKind>,
    label: Option<String>,
    village: Option<String>,
}

impl StreamFilter {
    fn matches(&self, e: &Event) -> bool {
        self.camera.as_ref().is_none_or(|c| *c == e.camera_id)
            && self.kind.is_none_or(|k| k == e.kind)
            && self.label.as_ref().is_none_or(|l| *l == e.label)
            && self
                .village
                .as_ref()
                .is_none_or(|v| e.village.as_ref() == Some(v))
    }
}
