//! The operators' dashboard: `GET /` (index.html) and `GET /assets/{file}`
//! (ES modules and CSS), embedded in the binary so that the single
//! executable is the whole product. The pages hold no data and are public;
//! the data comes from the authenticated API, with the session cookie.
//!
//! Every dashboard response carries a strict Content-Security-Policy (no
//! inline script or style, nothing from elsewhere) and the usual hardening
//! headers. Files are revalidated on every load (`no-cache` with an `ETag`),
//! so an upgrade is picked up at the next reload without stale modules.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::OnceLock;

use crate::AppState;

/// One embedded file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ctype:expr) => {
        Asset {
            name: $name,
            content_type: $ctype,
            body: include_bytes!(concat!("../dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `crates/api/dashboard/` (a test checks that none is missing).
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("i18n.js", JS),
    asset!("format.js", JS),
    asset!("camera-directory.js", JS),
    asset!("snapshot.js", JS),
    asset!("event-card.js", JS),
    asset!("login.js", JS),
    asset!("live-wall.js", JS),
    asset!("event-list.js", JS),
    asset!("event-detail.js", JS),
    asset!("camera-status.js", JS),
    asset!("live-player.js", JS),
    asset!("video-wall.js", JS),
    asset!("gb-devices.js", JS),
    asset!("gb-upstreams.js", JS),
    asset!("cluster-nodes.js", JS),
    asset!("bar-chart.js", JS),
    asset!("availability-report.js", JS),
    asset!("users.js", JS),
];

/// The policy of every dashboard page: only our own scripts, styles and
/// connections; pictures from us (or data:/blob: URLs we make), video
/// from the blob: URLs of Media Source Extensions.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .layer(map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    response
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    // index.html is served at `/` only, so that there is one address for it.
    if file == "index.html" {
        return not_found();
    }
    serve(&file, &headers)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "not found\n",
    )
        .into_response()
}

/// The ETag of each asset, computed once: FNV-1a over the bytes (stable
/// across processes and nodes running the same build).
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = a.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    });
    &tags[index]
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return not_found();
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let cache = [(header::CACHE_CONTROL, "no-cache"), (header::ETAG, tag)];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.body,
    )
        .into_response()
}
