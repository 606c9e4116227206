//! [`CameraDefaults`]: what a camera inherits (`[detection]`, the per-camera
//! part of `[health]`), and reading a camera defined as JSON (through the
//! API) with the rules and messages of a `[[cameras]]` table.

use super::camera::{camera_from_raw, CameraConfig};
use super::tables::{deserialize, json_to_toml};
use crate::camera_error::CameraError;

/// The tables a camera's own `detection` and `health` tables are deep-merged
/// over: `[detection]` and the per-camera part of `[health]`.
#[derive(Clone, Debug, Default)]
pub struct CameraDefaults {
    pub(super) detection: toml::Table,
    pub(super) health: toml::Table,
}

impl CameraDefaults {
    /// Reads one camera from a JSON object with the rules, defaults and
    /// messages of a `[[cameras]]` table. JSON `null` members count as absent.
    pub fn camera_from_json(&self, value: &serde_json::Value) -> Result<CameraConfig, CameraError> {
        let serde_json::Value::Object(map) = value else {
            return Err(CameraError::new("body", "a camera must be a JSON object"));
        };
        // A password of the wrong type would be echoed by the type error.
        if map
            .get("password")
            .is_some_and(|p| !p.is_string() && !p.is_null())
        {
            return Err(CameraError::new(
                "password",
                "field `password`: must be a string",
            ));
        }
        let table = match json_to_toml(value, "") {
            Ok(Some(toml::Value::Table(t))) => t,
            Ok(_) => return Err(CameraError::new("body", "a camera must be a JSON object")),
            Err(field) => {
                return Err(CameraError::new(
                    &field,
                    format!("field `{field}`: arrays must not contain null"),
                ))
            }
        };
        // An error at the top (no field) is the body's.
        self.camera_from_toml(toml::Value::Table(table))
            .map_err(|e| {
                if e.field.is_empty() {
                    CameraError::new("body", e.message)
                } else {
                    e
                }
            })
    }

    /// Reads one `[[cameras]]` table; the error names the field, not the camera.
    pub(super) fn camera_from_toml(&self, value: toml::Value) -> Result<CameraConfig, CameraError> {
        camera_from_raw(deserialize(value)?, &self.detection, &self.health)
    }
}
