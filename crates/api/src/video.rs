//! Live video: `GET /cameras/{id}/live.mp4`, the camera's own H.264/H.265
//! remuxed to fragmented MP4 by the pipeline and streamed as one endless
//! HTTP response (design/live-view.md says why not WebSocket or LL-HLS).
//!
//! The pipeline keeps one muxer per watched camera and hands every viewer
//! the same pieces ([`LiveFeed`]): the init segment, the media segments
//! since the last key frame (so the picture starts at once), then each new
//! segment as it is made. A viewer that falls behind skips to the next key
//! frame; the stream ends when the camera stops, when nothing arrives for
//! [`SILENCE`], when the codec changes (the client reconnects and learns
//! the new one), or when the caller's access ends (re-checked like the
//! event feed's).

use crate::auth::Caller;
use crate::cameras::visible_camera;
use crate::error::{ApiError, ErrorCode};
use crate::forward::{to_runner, Lasting};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A live stream ends when no piece arrived for this long (the camera went
/// silent); the client reconnects.
pub const SILENCE: Duration = Duration::from_secs(10);
/// How long a request waits for the camera's first init segment (a camera
/// that has not sent a key frame since the first viewer came).
const FIRST_INIT: Duration = Duration::from_secs(10);

/// One piece of a camera's fragmented MP4, as the muxer made it.
#[derive(Clone, Debug)]
pub enum LivePiece {
    /// `ftyp` + `moov`; `mime` is `video/mp4; codecs="..."`.
    Init { mime: Arc<str>, data: Bytes },
    /// `moof` + `mdat`; `key` when it starts with a key frame.
    Media { data: Bytes, key: bool },
}

/// What a new viewer gets: where the shared stream is now, and the rest.
pub struct LiveFeed {
    /// The current init segment, if the camera has sent a key frame.
    pub init: Option<(Arc<str>, Bytes)>,
    /// Media segments from the last key frame up to now.
    pub backlog: Vec<Bytes>,
    pub pieces: broadcast::Receiver<LivePiece>,
    /// Bytes sent to viewers, for the metrics.
    pub sent: Arc<AtomicU64>,
    /// Held while the viewer watches: dropping it counts the viewer out
    /// (and stops the muxer after the last one).
    pub guard: Box<dyn Send + Sync>,
}

/// Why a live stream was not started.
#[derive(Debug, PartialEq, Eq)]
pub enum LiveRefusal {
    /// Disabled, or stopped.
    NotRunning,
    /// `[live] max_viewers_per_camera` viewers watch this camera.
    CameraFull(usize),
    /// `[live] max_viewers` viewers watch in all.
    ServerFull(usize),
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live))
}

/// Live video of a camera: its own H.264/H.265, not transcoded, as an endless
/// fragmented MP4 (`Content-Type` names the codec for
/// `MediaSource.isTypeSupported`). The stream starts at the last key frame.
/// It ends when the camera stops or goes silent for 10 s, when its codec
/// changes, and when the caller's token is revoked or their access changes;
/// reconnect to go on.
#[utoipa::path(get, path = "/cameras/{id}/live.mp4", tag = "cameras", params(("id" = String, Path, description = "the camera's id")),
    responses(
        (status = 200, description = "Fragmented MP4 (an init segment, then `moof`+`mdat` pairs), until it ends", content_type = "video/mp4", body = [u8]),
        (status = 404, description = "No such camera, or not in the caller's villages (`not_found`); not running or no key frame within 10 s (`no_frame`)", body = crate::error::ErrorBody),
        (status = 503, description = "Too many viewers of this camera or of the server (`too_many_viewers`), with `Retry-After`", body = crate::error::ErrorBody),
    ))]
async fn live(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_camera(&state, &caller, &id)?;
    let mut feed = match state.cameras.live(&id) {
        Ok(feed) => feed,
        Err(LiveRefusal::NotRunning) => {
            // Maybe another node of the cluster runs it.
            if let Some(answer) =
                to_runner(&state, &headers, &id, "live.mp4", Lasting::Stream).await
            {
                return Ok(answer);
            }
            return Err(refused(&id, LiveRefusal::NotRunning));
        }
        Err(r) => return Err(refused(&id, r)),
    };
    let (mime, init) = match feed.init.take() {
        Some(init) => init,
        None => first_init(&mut feed.pieces).await.ok_or_else(|| {
            ApiError::not_found_code(
                ErrorCode::NoFrame,
                format!(
                    "camera \"{id}\" sent no key frame within {} s",
                    FIRST_INIT.as_secs()
                ),
            )
        })?,
    };
    let mut first = Vec::with_capacity(1 + feed.backlog.len());
    first.push(init);
    first.append(&mut feed.backlog);
    let mut recheck = tokio::time::interval(state.live_recheck);
    recheck.reset();
    let stream = Stream {
        access: state.watch_access(),
        recheck,
        state,
        caller,
        mime: mime.clone(),
        first: first.into(),
        feed,
        skipping: false,
    };
    let body = futures::stream::unfold(stream, |mut s| async move {
        let data = s.next().await?;
        s.feed.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
        Some((Ok::<_, std::convert::Infallible>(data), s))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &*mime)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(body))
        .map_err(ApiError::internal)
}

fn refused(id: &str, r: LiveRefusal) -> ApiError {
    match r {
        LiveRefusal::NotRunning => ApiError::not_found_code(
            ErrorCode::NoFrame,
            format!("camera \"{id}\" is not running (disabled or stopped)"),
        ),
        LiveRefusal::CameraFull(n) => ApiError::unavailable(
            ErrorCode::TooManyViewers,
            format!(
                "camera \"{id}\" has {n} viewers, the most allowed ([live] max_viewers_per_camera)"
            ),
            10,
        ),
        LiveRefusal::ServerFull(n) => ApiError::unavailable(
            ErrorCode::TooManyViewers,
            format!("{n} live viewers watch already, the most allowed ([live] max_viewers)"),
            10,
        ),
    }
}

/// Waits for the first init segment of a camera that has sent none yet.
async fn first_init(pieces: &mut broadcast::Receiver<LivePiece>) -> Option<(Arc<str>, Bytes)> {
    let wait = async {
        loop {
            match pieces.recv().await {
                Ok(LivePiece::Init { mime, data }) => return Some((mime, data)),
                Ok(LivePiece::Media { .. }) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    };
    tokio::time::timeout(FIRST_INIT, wait).await.ok().flatten()
}

/// One viewer's stream.
struct Stream {
    state: AppState,
    caller: Caller,
    mime: Arc<str>,
    /// The init segment and the backlog, still to send.
    first: std::collections::VecDeque<Bytes>,
    feed: LiveFeed,
    /// Lagged: media is skipped up to the next key frame.
    skipping: bool,
    access: tokio::sync::watch::Receiver<u64>,
    recheck: tokio::time::Interval,
}

impl Stream {
    /// The next bytes to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(b) = self.first.pop_front() {
            return Some(b);
        }
        loop {
            let piece = tokio::select! {
                biased;
                _ = self.access.changed() => {
                    crate::events::caller_still_allowed(&self.state, &self.caller).await.ok()?;
                    continue;
                }
                _ = self.recheck.tick() => {
                    crate::events::caller_still_allowed(&self.state, &self.caller).await.ok()?;
                    continue;
                }
                piece = tokio::time::timeout(SILENCE, self.feed.pieces.recv()) => piece.ok()?,
            };
            match piece {
                Ok(LivePiece::Media { data, key }) => {
                    if self.skipping && !key {
                        continue;
                    }
                    self.skipping = false;
                    return Some(data);
                }
                // A new resolution with the same codec string plays on.
                Ok(LivePiece::Init { mime, data }) if mime == self.mime => return Some(data),
                // Another codec: the client must set up anew.
                Ok(LivePiece::Init { .. }) => return None,
                Err(RecvError::Lagged(_)) => self.skipping = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
