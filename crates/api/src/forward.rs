//! With several nodes (`[cluster]`), a camera's live video and newest frame
//! are on the node that runs it. Another node asked for them forwards the
//! request there (`[cluster] api_url` of the runner), with the caller's
//! credentials (tokens and sessions are in the shared database, so the
//! runner checks them again), and relays the answer as it streams. One hop
//! at most: a forwarded request is never forwarded again.

use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use std::time::Duration;
use tracing::warn;

/// Set on a forwarded request: the node that forwarded it.
const FORWARDED_BY: HeaderName = HeaderName::from_static("x-xueliang-forwarded-by");
/// How long a node waits to reach the runner.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .expect("a plain HTTP client")
    })
}

/// What a forwarded request may take at most in all (`None`: a stream).
pub(crate) enum Lasting {
    Total(Duration),
    Stream,
}

/// Forwards `GET /api/v1/cameras/{id}/{what}` to the node that runs `id`
/// when that is another node and it said where it answers; `None` when
/// there is nowhere to forward to (the caller answers as this node would).
pub(crate) async fn to_runner(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    what: &str,
    lasting: Lasting,
) -> Option<Response> {
    let directory = state.cluster.as_ref()?;
    if headers.contains_key(&FORWARDED_BY) {
        return None;
    }
    let runner = match directory.runner(id).await {
        Ok(r) => r?,
        Err(e) => {
            warn!(camera = %id, error = %e, "cannot read which node runs the camera");
            return None;
        }
    };
    if runner.node_id == directory.this_node() {
        return None;
    }
    let Some(base) = runner.api_url else {
        return Some(
            ApiError::not_found_code(
                ErrorCode::NoFrame,
                format!(
                    "camera \"{id}\" runs on node \"{}\", which did not give its address ([cluster] api_url)",
                    runner.node_id
                ),
            )
            .into_response(),
        );
    };
    let mut request = client()
        .get(format!("{base}/api/v1/cameras/{id}/{what}"))
        .header(&FORWARDED_BY, directory.this_node());
    if let Lasting::Total(limit) = lasting {
        request = request.timeout(limit);
    }
    for name in [header::AUTHORIZATION, header::COOKIE] {
        for value in headers.get_all(&name) {
            request = request.header(&name, value);
        }
    }
    match request.send().await {
        Ok(answer) => Some(relay(answer)),
        Err(e) => {
            warn!(camera = %id, node = %runner.node_id, error = %e, "the camera's node does not answer");
            Some(
                ApiError::not_found_code(
                    ErrorCode::NoFrame,
                    format!(
                        "camera \"{id}\" runs on node \"{}\", which does not answer at {base}",
                        runner.node_id
                    ),
                )
                .into_response(),
            )
        }
    }
}

/// The runner's answer, streamed on: its status and the headers that
/// describe the body.
fn relay(answer: reqwest::Response) -> Response {
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in [
        header::CONTENT_TYPE,
        header::CACHE_CONTROL,
        header::RETRY_AFTER,
    ] {
        if let Some(v) = answer.headers().get(&name) {
            response = response.header(&name, v.as_bytes());
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}
