//! One `[[cameras]]` table: its fields as written ([`RawCamera`]), and the
//! camera after validation ([`CameraConfig`]) with its settings merged over
//! the defaults, its rules, and its RTSP URL checked.

use super::detection::DetectionSettings;
use super::health::HealthSettings;
use super::tables::settings;
use crate::camera_error::CameraError;
use crate::secret::Secret;
use crate::zones::CameraRules;
use serde::Deserialize;
use url::Url;

/// One camera after parsing and validation.
#[derive(Clone, Debug)]
pub struct CameraConfig {
    pub id: String,
    pub name: String,
    /// `rtsp://host:port/path`, without credentials.
    pub url: Url,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub village: Option<String>,
    pub grid: Option<String>,
    pub location: Option<String>,
    pub enabled: bool,
    pub detection: DetectionSettings,
    pub health: HealthSettings,
    /// Filters, masks, zones with rules, counting lines.
    pub rules: CameraRules,
    /// The event kinds that get a clip on this camera (`[]`: none);
    /// `None`: `[clips] kinds`.
    pub clips: Option<Vec<crate::EventKind>>,
}

/// A camera's definition: the fields of a `[[cameras]]` table of the config
/// file (see docs/configuration.md), as `POST /api/v1/cameras` takes it. The
/// config's `[detection]` and `[health]` defaults apply to what is left out.
/// `password` is stored (it is needed to connect) and never returned.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CameraDefinition)]
pub struct RawCamera {
    // Required; optional here so that a missing one is refused with its name.
    id: Option<String>,
    name: Option<String>,
    /// `rtsp://host:port/path`, without credentials.
    url: Option<String>,
    username: Option<String>,
    #[schema(value_type = Option<String>, write_only)]
    password: Option<Secret>,
    password_env: Option<String>,
    village: Option<String>,
    grid: Option<String>,
    location: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    /// Overrides of the `[detection]` defaults.
    #[schema(value_type = Option<Object>)]
    detection: Option<toml::Table>,
    /// Overrides of the `[health]` defaults.
    #[schema(value_type = Option<Object>)]
    health: Option<toml::Table>,
    #[serde(default)]
    filters: std::collections::BTreeMap<String, crate::zones::LabelFilter>,
    #[serde(default)]
    #[schema(value_type = Vec<Vec<[f64]>>)]
    masks: Vec<Vec<crate::zones::Point>>,
    #[serde(default)]
    zones: Vec<crate::zones::ZoneConfig>,
    #[serde(default)]
    lines: Vec<crate::zones::LineConfig>,
    /// The event kinds that get a clip on this camera (`[]`: none); absent:
    /// `[clips] kinds`.
    clips: Option<Vec<crate::EventKind>>,
}

fn yes() -> bool {
    true
}

/// A required field: serde's message when it is missing.
fn required(value: Option<String>, field: &str) -> Result<String, CameraError> {
    value.ok_or_else(|| CameraError::new(field, format!("missing field `{field}`")))
}

pub(super) fn camera_from_raw(
    raw: RawCamera,
    detection: &toml::Table,
    health: &toml::Table,
) -> Result<CameraConfig, CameraError> {
    let id = required(raw.id, "id")?;
    let name = required(raw.name, "name")?;
    let url = required(raw.url, "url")?;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(CameraError::new(
            "id",
            format!(
                "field `id`: \"{id}\" must be 1-64 characters of ASCII letters, digits, '-' or '_'"
            ),
        ));
    }
    if name.trim().is_empty() {
        return Err(CameraError::new("name", "field `name`: must not be empty"));
    }
    let url =
        parse_rtsp_url(&url).map_err(|e| CameraError::new("url", format!("field `url`: {e}")))?;
    let password = match (raw.password, raw.password_env) {
        (Some(_), Some(_)) => {
            return Err(CameraError::new(
                "password",
                "fields `password` and `password_env`: give one, not both",
            ))
        }
        (Some(p), None) => Some(p),
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) => Some(Secret::new(v)),
            Err(_) => {
                return Err(CameraError::new(
                    "password_env",
                    format!("field `password_env`: environment variable {var} is not set"),
                ))
            }
        },
        (None, None) => None,
    };
    if password.is_some() && raw.username.is_none() {
        return Err(CameraError::new(
            "username",
            "field `username`: required when a password is given",
        ));
    }
    let detection: DetectionSettings = settings(detection, raw.detection.as_ref())
        .and_then(|d: DetectionSettings| d.validate().map(|()| d))
        .map_err(|e| e.within("detection"))?;
    let health: HealthSettings = settings(health, raw.health.as_ref())
        .and_then(|h: HealthSettings| h.validate().map(|()| h))
        .map_err(|e| e.within("health"))?;
    let rules = CameraRules {
        filters: raw.filters,
        masks: raw.masks,
        zones: raw.zones,
        lines: raw.lines,
    };
    rules.validate()?;
    Ok(CameraConfig {
        id,
        name,
        url,
        username: raw.username,
        password,
        village: raw.village,
        grid: raw.grid,
        location: raw.location,
        enabled: raw.enabled,
        detection,
        health,
        rules,
        clips: raw.clips,
    })
}

impl CameraConfig {
    /// Checks every label the camera names against the model's labels.
    pub fn check_labels(&self, known: &[String]) -> Result<(), CameraError> {
        let unknown = |l: &str| !known.iter().any(|k| k == l);
        let hint = "see the model's labels file";
        for (field, labels) in [
            (
                "detection.labels",
                self.detection.labels.iter().collect::<Vec<_>>(),
            ),
            (
                "detection.thresholds",
                self.detection.thresholds.keys().collect(),
            ),
        ] {
            if let Some(l) = labels.into_iter().find(|l| unknown(l)) {
                return Err(CameraError::new(
                    field,
                    format!("detection: unknown label \"{l}\" ({hint})"),
                ));
            }
        }
        for named in self.rules.labels() {
            if unknown(named.label) {
                return Err(CameraError::new(
                    named.field,
                    format!(
                        "{}: unknown label \"{}\" ({hint})",
                        named.place, named.label
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks an `rtsp://host[:port]/path` URL. Credentials inside the URL are
/// refused (they would end up in logs); they go in `username`/`password`.
fn parse_rtsp_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("\"{}\" is not a URL: {e}", redact_userinfo(s)))?;
    if url.scheme() == "gb28181" {
        return match super::gb28181::gb_channel_of(&url) {
            Some(_) => Ok(url),
            None => Err(format!(
                "\"{s}\": a GB/T 28181 channel is gb28181://<device id>/<channel id>, both 20 digits"
            )),
        };
    }
    if url.scheme() != "rtsp" {
        return Err(format!(
            "scheme must be rtsp (or gb28181), got \"{}\"",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials must not be in the URL; use the `username` and `password` (or `password_env`) fields"
                .into(),
        );
    }
    Ok(url)
}

/// Removes `user:pass@` from a URL-like string so it can be shown.
pub fn redact_userinfo(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &s[..scheme_end], &s[at + 1..])
        }
        _ => s.to_owned(),
    }
}
