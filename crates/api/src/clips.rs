//! `GET /events/{id}/clip.mp4`: an event's video clip, with Range requests
//! (a browser's `<video>` seeks with them). One range per request; a
//! request for several gets the whole clip (RFC 9110 allows it).

use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::events::visible_event;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::ops::Range;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(clip))
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq)]
enum Wanted {
    All,
    Part(Range<usize>),
    /// Nothing of the body is in the range: 416.
    Unsatisfiable,
}

/// Reads `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header that is not a
/// byte range, or names several, asks for everything.
fn wanted(header: Option<&str>, len: usize) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::All;
    };
    let number = |s: &str| s.trim().parse::<usize>().ok();
    let range = match (first.trim().is_empty(), number(first), number(last)) {
        // The last n bytes.
        (true, _, Some(n)) if n > 0 => len.saturating_sub(n)..len,
        (true, _, _) => return Wanted::Unsatisfiable,
        (false, Some(a), None) if last.trim().is_empty() => a..len,
        (false, Some(a), Some(b)) if a <= b => a..(b.saturating_add(1)).min(len),
        _ => return Wanted::All,
    };
    if range.start >= len {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(range)
    }
}

/// The event's video: from `[clips] pre_s` before its start to `post_s` after
/// its end (capped by `max_s`), the camera's own H.264/H.265 in an MP4 with
/// its index first. Written after the event ends; 404 until then.
#[utoipa::path(get, path = "/events/{id}/clip.mp4", tag = "events", params(("id" = i64, Path, description = "the event's id"),
        ("Range" = Option<String>, Header, description = "one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`)")),
    responses(
        (status = 200, description = "The clip", content_type = "video/mp4", body = [u8]),
        (status = 206, description = "The part of the clip the Range asked for, with `Content-Range`", content_type = "video/mp4", body = [u8]),
        (status = 400, description = "Not an event id (`invalid_parameter`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such event, or it has no clip (yet) (`not_found`)", body = crate::error::ErrorBody),
        (status = 416, description = "The range starts after the clip's end (`invalid_parameter`), with `Content-Range: bytes */<size>`", body = crate::error::ErrorBody),
    ))]
async fn clip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = visible_event(&state, &caller, &id).await?.id;
    let mp4 = state
        .store
        .clip(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no clip for event {id} (yet)")))?;
    let len = mp4.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let common = [
        (header::CONTENT_TYPE, "video/mp4".to_owned()),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
    ];
    Ok(match wanted(range, len) {
        Wanted::All => (common, mp4).into_response(),
        Wanted::Part(r) => {
            let content_range = format!("bytes {}-{}/{len}", r.start, r.end - 1);
            (
                StatusCode::PARTIAL_CONTENT,
                common,
                [(header::CONTENT_RANGE, content_range)],
                mp4[r].to_vec(),
            )
                .into_response()
        }
        Wanted::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::InvalidParameter,
                format!("header `Range`: the clip has {len} bytes"),
            )
            .into_response();
            if let Ok(v) = format!("bytes */{len}").parse() {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            response
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(wanted(None, 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-9"), 100), Wanted::Part(0..10));
        assert_eq!(wanted(Some("bytes=90-"), 100), Wanted::Part(90..100));
        assert_eq!(wanted(Some("bytes=-10"), 100), Wanted::Part(90..100));
        assert_eq!(wanted(Some("bytes=-200"), 100), Wanted::Part(0..100));
        assert_eq!(wanted(Some("bytes=50-500"), 100), Wanted::Part(50..100));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,5-9"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=9-0"), 100), Wanted::All);
        assert_eq!(wanted(Some("items=0-9"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=x-9"), 100), Wanted::All);
    }
}
