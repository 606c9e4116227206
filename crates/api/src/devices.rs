//! `GET /gb28181/devices` and `POST /gb28181/devices/{id}/catalog`: the
//! GB/T 28181 devices registered to the centre (admins only: the list shows
//! network addresses). `GET /gb28181/upstreams`: the superior platforms
//! the centre registers to (cascade), and [`CameraCatalog`], the cameras
//! they are shown.

use crate::auth::Caller;
use crate::body::List;
use crate::error::ApiError;
use crate::AppState;
use crate::CameraControl;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::access::Role;
use xueliang_core::config::gb_channel_of;
use xueliang_core::gb28181::{
    CameraTrouble, CascadeCamera, CascadeCameras, CatalogError, GbDevice, GbUpstream,
};
use xueliang_core::CameraState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(catalog))
        .routes(routes!(upstreams))
}

/// The superior platforms the centre registers to (admin): state
/// (`registering`, `registered`, `failed`, `stopped`), last error,
/// registered until, last keepalive answered. Empty without
/// `[[gb28181.upstream]]`.
#[utoipa::path(get, path = "/gb28181/upstreams", tag = "gb28181",
    responses((status = 200, description = "Superior platforms", body = List<GbUpstream>),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody)))]
async fn upstreams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<GbUpstream>>, ApiError> {
    caller.require(Role::Admin)?;
    let items = state
        .devices
        .as_ref()
        .map(|d| d.upstreams())
        .unwrap_or_default();
    Ok(Json(List { items }))
}

/// The running cameras as superior platforms' catalogs show them: read at
/// each query, `ON` while a camera delivers video (online or degraded).
pub struct CameraCatalog(pub Arc<dyn CameraControl>);

impl CascadeCameras for CameraCatalog {
    fn cameras(&self) -> Vec<CascadeCamera> {
        self.0
            .list()
            .into_iter()
            .filter(|v| v.config.enabled)
            .map(|v| {
                let health = v.health.borrow().clone();
                CascadeCamera {
                    gb_channel: gb_channel_of(&v.config.url).map(|(_, channel)| channel),
                    id: v.config.id,
                    name: v.config.name,
                    village: v.config.village,
                    grid: v.config.grid,
                    online: matches!(health.state, CameraState::Online | CameraState::Degraded),
                    trouble: CameraTrouble::of(&health),
                }
            })
            .collect()
    }
}

/// The GB/T 28181 devices (admin): registration, address, last keepalive
/// and channels. Empty when `[gb28181]` is not configured.
#[utoipa::path(get, path = "/gb28181/devices", tag = "gb28181",
    responses((status = 200, description = "Devices", body = List<GbDevice>),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<GbDevice>>, ApiError> {
    caller.require(Role::Admin)?;
    let items = state
        .devices
        .as_ref()
        .map(|d| d.devices())
        .unwrap_or_default();
    Ok(Json(List { items }))
}

/// Ask a device for its catalog again (admin); its channels are updated
/// when the answer arrives.
#[utoipa::path(post, path = "/gb28181/devices/{id}/catalog", tag = "gb28181",
    params(("id" = String, Path, description = "the device's 20-digit id")),
    responses((status = 202, description = "Asked"),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::error::ErrorBody),
        (status = 404, description = "No such device (`not_found`)", body = crate::error::ErrorBody),
        (status = 409, description = "The device is offline (`conflict`)", body = crate::error::ErrorBody)))]
async fn catalog(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let Some(devices) = state.devices.as_ref() else {
        return Err(ApiError::not_found(format!("no device with id \"{id}\"")));
    };
    match devices.query_catalog(&id).await {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(e @ CatalogError::NotFound(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ CatalogError::Offline(_)) => Err(ApiError::conflict(
            crate::error::ErrorCode::Conflict,
            e.to_string(),
        )),
        Err(CatalogError::Failed(cause)) => Err(ApiError::internal(cause)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CameraView, FixedCameras};
    use xueliang_core::{CameraHealth, CameraStats, Config};

    #[test]
    fn the_catalog_shows_enabled_cameras_on_while_they_deliver_video() {
        let config = Config::parse(
            r#"
[gb28181]
server_id = "34020000002000000001"
media_ip = "192.0.2.10"
password = "pw"

[[cameras]]
id = "school"
name = "中心小学"
url = "rtsp://127.0.0.1:8554/school"
village = "东村"
grid = "一网格"

[[cameras]]
id = "gate"
name = "东门"
url = "gb28181://34020000001320000001/34020000001310000001"

[[cameras]]
id = "river"
name = "河堤"
url = "rtsp://127.0.0.1:8554/river"

[[cameras]]
id = "off"
name = "停用"
url = "rtsp://127.0.0.1:8554/off"
enabled = false
"#,
        )
        .unwrap();
        let states = [
            CameraState::Degraded,
            CameraState::Online,
            CameraState::Offline,
            CameraState::Disabled,
        ];
        let views = config
            .cameras
            .iter()
            .zip(states)
            .map(|(c, state)| {
                let mut health = CameraHealth::new(state, chrono::Utc::now());
                // The online camera's lens is covered; the offline one
                // refuses our password.
                health.picture.blocked = state == CameraState::Online;
                if state == CameraState::Offline {
                    health.reason = Some(xueliang_core::HealthReason::AuthFailed);
                }
                CameraView {
                    config: c.clone(),
                    health: tokio::sync::watch::channel(health).1,
                    stats: Arc::new(CameraStats::default()),
                }
            })
            .collect();
        let cameras = CameraCatalog(Arc::new(FixedCameras(views))).cameras();
        assert_eq!(cameras.len(), 3, "the disabled camera is not shared");
        let school = &cameras[0];
        assert_eq!(
            (school.id.as_str(), school.name.as_str(), school.online),
            ("school", "中心小学", true)
        );
        assert_eq!(school.village.as_deref(), Some("东村"));
        assert_eq!(school.grid.as_deref(), Some("一网格"));
        assert_eq!(school.gb_channel, None);
        assert_eq!(
            cameras[1].gb_channel.as_deref(),
            Some("34020000001310000001")
        );
        assert!(!cameras[2].online, "offline is OFF");
        assert_eq!(school.trouble, None);
        assert_eq!(cameras[1].trouble, Some(CameraTrouble::VideoLost));
        assert_eq!(cameras[2].trouble, Some(CameraTrouble::Defect));
    }
}
