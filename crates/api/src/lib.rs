//! The monitoring centre's HTTP API (JSON under `/api/v1`). Each area has its
//! own `router()`; [`app`] puts them together so tests can serve the same app
//! on a port of their own. The operators' dashboard (`/`, `/assets/...`) is
//! served by the same app.

mod alerts;
mod cameras;
mod control;
mod dashboard;
mod error;
mod events;
mod metrics;
mod params;
mod reports;

use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use xueliang_core::{CameraConfig, CameraHealth, CameraStats};
use xueliang_store::EventStore;

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
}

/// Requests taking longer than this are answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(dashboard::router())
        .nest(
            "/api/v1",
            cameras::router()
                .merge(events::router())
                .merge(reports::router())
                .merge(alerts::router()),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
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

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
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
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
