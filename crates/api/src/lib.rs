//! The monitoring centre's HTTP API (JSON under `/api/v1`). Each area has its
//! own `router()`; [`app`] puts them together so tests can serve the same app
//! on a port of their own. The operators' dashboard (`/`, `/assets/...`) is
//! served by the same app.

mod alerts;
mod audit;
pub mod auth;
mod body;
mod cameras;
mod clips;
mod cluster;
mod control;
mod dashboard;
mod devices;
mod document;
mod error;
mod event_body;
mod events;
mod forward;
mod hashing;
pub mod limiter;
mod live;
mod metrics;
mod params;
mod reports;
mod stats;
mod tokens;
mod users;
mod video;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{CameraConfig, CameraHealth, CameraStats};
use xueliang_store::retention::RetentionTotals;
use xueliang_store::{AccessStore, EventStore, TroubleKind};

pub use control::{CameraChangeError, CameraControl, FixedCameras, MediaTotals, Readiness};
pub use devices::CameraCatalog;
pub use error::ApiError;
pub use video::{LiveFeed, LivePiece, LiveRefusal};

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
    /// The GB/T 28181 devices; `None` when `[gb28181]` is not configured.
    pub devices: Option<Arc<dyn xueliang_core::gb28181::DeviceDirectory>>,
    /// The cluster's nodes and leases; `None` without `[cluster]`.
    pub cluster: Option<Arc<dyn xueliang_core::cluster::ClusterDirectory>>,
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
            devices: None,
            cluster: None,
        }
    }

    /// The same state, with retention's totals shown in the metrics.
    pub fn with_retention(mut self, totals: Arc<RetentionTotals>) -> Self {
        self.retention = Some(totals);
        self
    }

    /// The same state, with the GB/T 28181 devices in the API.
    pub fn with_devices(
        mut self,
        devices: Arc<dyn xueliang_core::gb28181::DeviceDirectory>,
    ) -> Self {
        self.devices = Some(devices);
        self
    }

    /// The same state, with the cluster shown at `GET /cluster`.
    pub fn with_cluster(
        mut self,
        cluster: Arc<dyn xueliang_core::cluster::ClusterDirectory>,
    ) -> Self {
        self.cluster = Some(cluster);
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
        error::ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method (see the Allow header)",
    )
}

/// Where the API is served.
const API_PREFIX: &str = "/api/v1";

/// The API's routes, each routed and documented by its handler's annotation
/// (paths relative to [`API_PREFIX`]).
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .merge(auth::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(cameras::router())
        .merge(video::router())
        .merge(devices::router())
        .merge(cluster::router())
        .merge(events::router())
        .merge(clips::router())
        .merge(stats::router())
        .merge(reports::router())
        .merge(alerts::router())
}

/// What the OpenAPI document describes: `/healthz`, `/readyz`, and `api`
/// under [`API_PREFIX`].
fn documented(api: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(document::Header::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .nest(API_PREFIX, api)
}

/// The OpenAPI document of the API [`app`] serves, generated from the
/// handlers' annotations and the bodies' types.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = documented(api_routes()).into_openapi();
    document::add_common_errors(&mut doc);
    doc
}

pub fn app(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(Extension(Arc::new(openapi_document())));
    let (routes, _) = documented(api.into()).split_for_parts();
    routes
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

/// `GET /api/v1/openapi.json`: the document, made once when the app is built.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
async fn openapi(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    Json(doc.as_ref()).into_response()
}

/// `ok` or `degraded`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum HealthState {
    Ok,
    Degraded,
}

/// The answer of `/healthz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Healthz {
    /// `degraded` while the store's writes fail (they are retried).
    status: HealthState,
    store: StoreState,
}

/// The store's state: its writes succeed, or fail since a time.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct StoreState {
    state: HealthState,
    /// Why, in words (only when degraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// `full`: the disk is full (only when degraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<TroubleKind>,
    /// The first failed write (only when degraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Failed writes since then, each retry counting (only when degraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u64>,
    /// The latest failure, as the database said it (only when degraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /healthz`: `ok` while the store takes writes; `degraded`, with the
/// store's reason, while its writes fail (a full disk: events wait in memory
/// and are retried). Always 200: the process serves, and restarting it would
/// not free a disk.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(),
    responses((status = 200, description = "Serving; `status` says whether the store takes writes", body = Healthz)))]
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Json<Healthz> {
    let Some(t) = state.store.health().current() else {
        return Json(Healthz {
            status: HealthState::Ok,
            store: StoreState {
                state: HealthState::Ok,
                reason: None,
                kind: None,
                since: None,
                failures: None,
                error: None,
            },
        });
    };
    let reason = match t.kind {
        TroubleKind::Full => "disk full: writes wait and are retried until space returns",
        TroubleKind::Error => "writes fail: they wait and are retried",
    };
    Json(Healthz {
        status: HealthState::Degraded,
        store: StoreState {
            state: HealthState::Degraded,
            reason: Some(reason),
            kind: Some(t.kind),
            since: Some(t.since),
            failures: Some(t.failures),
            error: Some(t.reason),
        },
    })
}

/// `ready` or `not_ready`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ReadyState {
    Ready,
    NotReady,
}

/// The answer of `/readyz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Readyz {
    status: ReadyState,
    /// Why not, one line per part that is not ready, each starting with the
    /// part (`store: ...`, `detector: ...`); only when not ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<String>,
}

/// `GET /readyz`: 200 `ready` when this node should be sent work: the store
/// takes writes (what `/healthz` reports) and the detector is ready; 503
/// `not_ready` with the reasons otherwise. For load balancers and
/// Kubernetes' readiness probe; `/healthz` is for liveness.
#[utoipa::path(get, path = "/readyz", tag = "meta", security(),
    responses(
        (status = 200, description = "Ready: the store takes writes and the detector is ready", body = Readyz),
        (status = 503, description = "Not ready; `reasons` says why", body = Readyz),
    ))]
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let mut reasons = Vec::new();
    if let Some(t) = state.store.health().current() {
        let what = match t.kind {
            TroubleKind::Full => "disk full",
            TroubleKind::Error => "writes fail",
        };
        reasons.push(format!(
            "store: {what} since {} ({} failed writes)",
            t.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            t.failures
        ));
    }
    if let Readiness::NotReady(why) = state.cameras.detector_readiness() {
        reasons.push(format!("detector: {why}"));
    }
    if reasons.is_empty() {
        let body = Readyz {
            status: ReadyState::Ready,
            reasons,
        };
        return Json(body).into_response();
    }
    let body = Readyz {
        status: ReadyState::NotReady,
        reasons,
    };
    (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
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
