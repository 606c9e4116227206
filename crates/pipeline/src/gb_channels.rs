//! GB/T 28181 channels found in a device's catalog become cameras
//! (`[gb28181] auto_cameras`): id = the channel id, name from the catalog,
//! village and grid from the `[[gb28181.areas]]` prefixes. They are stored
//! like cameras added through the API, so they survive a restart and an
//! operator can change or disable them there.

use crate::cameras::CameraRegistry;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xueliang_api::{CameraChangeError, CameraControl};
use xueliang_core::config::Gb28181Config;
use xueliang_gb28181::sip::DeviceEvent;
use xueliang_gb28181::GbAccess;

/// Whether a catalog entry is a video channel: type code (digits 11-13 of
/// the id) 131 (camera) or 132 (network camera).
pub fn is_video_channel(id: &str) -> bool {
    matches!(id.get(10..13), Some("131" | "132"))
}

/// The camera definition of a new channel.
fn definition(config: &Gb28181Config, device_id: &str, id: &str, name: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "id": id,
        "name": if name.trim().is_empty() { id } else { name },
        "url": format!("gb28181://{device_id}/{id}"),
    });
    if let Some(area) = config.area_of(id) {
        if let Some(v) = &area.village {
            body["village"] = v.clone().into();
        }
        if let Some(g) = &area.grid {
            body["grid"] = g.clone().into();
        }
    }
    body
}

/// Adds the video channels of `device_id`'s catalog that no camera shows yet.
async fn adopt(
    registry: &CameraRegistry,
    access: &GbAccess,
    config: &Gb28181Config,
    device_id: &str,
) {
    let Some(device) = access.sip().device(device_id) else {
        return;
    };
    let shown: Vec<String> = registry
        .list()
        .iter()
        .map(|c| c.config.url.to_string())
        .collect();
    for channel in device.channels.iter().filter(|c| is_video_channel(&c.id)) {
        let url = format!("gb28181://{device_id}/{}", channel.id);
        if shown.contains(&url) {
            continue;
        }
        match registry
            .create(definition(config, device_id, &channel.id, &channel.name))
            .await
        {
            Ok(_) => {
                info!(device = device_id, channel = %channel.id, name = %channel.name, "GB/T 28181 channel added as a camera")
            }
            Err(CameraChangeError::Conflict(_)) => {}
            Err(e) => {
                warn!(device = device_id, channel = %channel.id, error = ?e, "GB/T 28181 channel not added")
            }
        }
    }
}

/// Runs until shutdown: each complete catalog adds its new channels.
pub async fn adopt_channels(
    registry: Arc<CameraRegistry>,
    access: Arc<GbAccess>,
    config: Gb28181Config,
    shutdown: CancellationToken,
) {
    let mut events = access.sip().subscribe();
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(DeviceEvent::CatalogUpdated { device_id, .. }) => {
                adopt(&registry, &access, &config, &device_id).await
            }
            Ok(_) => {}
            // Missed events: look at every device again.
            Err(RecvError::Lagged(_)) => {
                for d in access.sip().devices() {
                    adopt(&registry, &access, &config, &d.id).await;
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_channels_by_type_code() {
        assert!(is_video_channel("34020000001320000001"));
        assert!(is_video_channel("34020000001310000001"));
        assert!(!is_video_channel("34020000001180000001")); // NVR
        assert!(!is_video_channel("34020000002150000001")); // organisation
        assert!(!is_video_channel("3402"));
    }
}
