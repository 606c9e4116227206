//! `GET /cluster`: the nodes sharing the database, the cameras each holds,
//! their load and last heartbeat, and the enabled cameras nobody holds.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::access::Role;
use xueliang_core::cluster::ClusterStatus;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// The cluster (any signed-in user): every node that joined, whether it is
/// live, draining, its CPU and its cameras; the enabled cameras no node
/// holds. `clustered` is false, and the lists empty, on a node that runs
/// alone.
#[utoipa::path(get, path = "/cluster", tag = "cluster",
    responses((status = 200, description = "The cluster", body = ClusterStatus)))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ClusterStatus>, ApiError> {
    caller.require(Role::Viewer)?;
    let Some(directory) = state.cluster.as_ref() else {
        return Ok(Json(ClusterStatus::alone()));
    };
    let mut status = directory.status().await.map_err(ApiError::internal)?;
    let held: std::collections::HashSet<&str> = status
        .nodes
        .iter()
        .flat_map(|n| n.cameras.iter().map(String::as_str))
        .collect();
    let unassigned = state
        .cameras
        .list()
        .into_iter()
        .filter(|c| c.config.enabled && !held.contains(c.config.id.as_str()))
        .map(|c| c.config.id)
        .collect();
    status.unassigned = unassigned;
    Ok(Json(status))
}
