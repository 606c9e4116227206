//! The monitoring centre's HTTP API (JSON under `/api/v1`). Each area has its
//! own `router()`; [`app`] puts them together so tests can serve the same app
//! on a port of their own. The operators' dashboard (`/`, `/assets/...`) is
//! served by the same app.

mod alerts;
mod audit;
pub mod auth;
mod body;
mod cameras;
mod control;
mod dashboard;
mod error;
mod event_body;
mod events;
mod hashing;
pub mod limiter;
mod live;
mod metrics;
mod params;
mod reports;
mod stats;
mod tokens;
mod users;

use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use xueliang_core::{CameraConfig, CameraHealth, CameraStats};
use xueliang_store::retention::RetentionTotals;
use xueliang_store::{AccessStore, EventStore, TroubleKind};

pub use control::{CameraChangeError, CameraControl, FixedCameras};
pub use error::ApiError;

/// A camera as the API sees it: its configuration, its health as the health
/// monitor publishes it, and its counters.
#[derive(Clone)]
pub struct CameraView {
    pub config: CameraConfig,
    pub health: watch::Receiver<CameraHealth>,
    pub stats: Arc<CameraStats>,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    /// The running cameras, and the changes an administrator can make.
    pub cameras: Arc<dyn CameraControl>,
    /// The alerts stage (organisation, deliveries, acknowledgement); `None`
    /// when it is not running.
    pub alerts: Option<Arc<xueliang_alerts::AlertService>>,
    /// Users, tokens, the audit trail and event workflow.
    pub access: Arc<dyn AccessStore>,
    /// Failed logins and the password-hashing permits, shared by every request.
    pub limiter: Arc<limiter::LoginLimiter>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`[server] trusted_proxies`).
    pub trusted_proxies: xueliang_core::TrustedProxies,
    /// How often an open live feed re-checks its token and user (besides
    /// being woken by [`AppState::access_changed`]).
    pub live_recheck: Duration,
    /// Bumped when a token is revoked or a user changed through the API, so
    /// open live feeds re-check their caller at once.
    access_changes: Arc<watch::Sender<u64>>,
    /// The live feed of event changes, shared by every subscriber.
    live: Arc<live::LiveFeed>,
    /// What retention removed (for the metrics); `None` when it does not run.
    pub retention: Option<Arc<RetentionTotals>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn EventStore>,
        access: Arc<dyn AccessStore>,
        cameras: Arc<dyn CameraControl>,
        alerts: Option<Arc<xueliang_alerts::AlertService>>,
    ) -> Self {
        AppState {
            store,
            cameras,
            alerts,
            access,
            limiter: Default::default(),
            trusted_proxies: Default::default(),
            live_recheck: LIVE_RECHECK,
            access_changes: Arc::new(watch::channel(0).0),
            live: Default::default(),
            retention: None,
        }
    }

    /// The same state, with retention's totals shown in the metrics.
    pub fn with_retention(mut self, totals: Arc<RetentionTotals>) -> Self {
        self.retention = Some(totals);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies.
    pub fn with_trusted_proxies(mut self, proxies: xueliang_core::TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Other login limits than the defaults (tests use short delays).
    pub fn with_login_policy(mut self, policy: limiter::LoginPolicy) -> Self {
        self.limiter = Arc::new(limiter::LoginLimiter::new(policy));
        self
    }

    /// Re-checks open live feeds this often (default [`LIVE_RECHECK`]).
    pub fn with_live_recheck(mut self, every: Duration) -> Self {
        self.live_recheck = every;
        self
    }

    /// Tells open live feeds to re-check their caller now (a token was
    /// revoked, a user changed or deleted).
    pub(crate) fn access_changed(&self) {
        self.access_changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn watch_access(&self) -> watch::Receiver<u64> {
        self.access_changes.subscribe()
    }
}

/// How often an open live feed re-checks its token and user by itself:
/// this catches expiry and changes made outside the API (the command line).
pub const LIVE_RECHECK: Duration = Duration::from_secs(5);

/// Requests taking longer than this are answered 408 (the live feed is exempt).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body accepted (a camera with many zones fits easily).
const BODY_LIMIT: usize = 256 * 1024;

/// A known path asked with a method it does not take: the stable error body
/// (the `Allow` header, added by the router, lists the methods it takes).
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (see the Allow header)",
    )
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .merge(auth::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(cameras::router())
        .merge(events::router())
        .merge(stats::router())
        .merge(reports::router())
        .merge(alerts::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .merge(dashboard::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(TraceLayer::new_for_http())
}

/// The OpenAPI document, kept true by a test that checks it against the router.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// `ok` while the store takes writes; `degraded`, with the store's reason,
/// while its writes fail (a full disk: events wait in memory and are retried).
/// Always 200: the process serves, and restarting it would not free a disk.
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    let Some(t) = state.store.health().current() else {
        return Json(serde_json::json!({ "status": "ok", "store": { "state": "ok" } }));
    };
    let reason = match t.kind {
        TroubleKind::Full => "disk full: writes wait and are retried until space returns",
        TroubleKind::Error => "writes fail: they wait and are retried",
    };
    Json(serde_json::json!({
        "status": "degraded",
        "store": {
            "state": "degraded",
            "reason": reason,
            "kind": t.kind,
            "since": t.since,
            "failures": t.failures,
            "error": t.reason,
        }
    }))
}

/// Serves the Prometheus metrics on their own listener until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
