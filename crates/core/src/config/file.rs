//! The whole file: [`Config`] with one field per section, reading it from
//! disk ([`Config::load`]), parsing and validating it ([`Config::parse`]),
//! and checking the labels it names against the model's.

use super::camera::CameraConfig;
use super::camera_defaults::CameraDefaults;
use super::clips::ClipsConfig;
use super::decode::DecodeConfig;
use super::detection::DetectionSettings;
use super::detector::DetectorConfig;
use super::health::HealthDefaults;
use super::ingest::IngestConfig;
use super::live::LiveConfig;
use super::server::ServerConfig;
use super::storage::StorageConfig;
use super::tables::{settings, toml_to_json};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub detector: DetectorConfig,
    pub decode: DecodeConfig,
    pub ingest: IngestConfig,
    pub live: LiveConfig,
    pub clips: ClipsConfig,
    /// `[cluster]`: several nodes on one PostgreSQL database; `None`: this
    /// node runs every camera.
    pub cluster: Option<super::ClusterConfig>,
    pub detection: DetectionSettings,
    pub health: HealthDefaults,
    /// `[organisation]` (villages, grids, officers, duty roster) as written;
    /// the alerts stage parses and validates it.
    pub organisation: toml::Table,
    /// `[alerts]` (routing, channels) as written; the alerts stage parses and
    /// validates it.
    pub alerts: toml::Table,
    /// `[gb28181]`: the SIP platform GB/T 28181 devices register to.
    pub gb28181: Option<super::Gb28181Config>,
    pub cameras: Vec<CameraConfig>,
    /// What cameras inherit (`[detection]`, `[health]`): to read cameras
    /// defined outside the file (through the API) with the same rules.
    pub camera_defaults: CameraDefaults,
    /// The file's `[[cameras]]` tables as JSON objects, in the order of
    /// `cameras` (as written: defaults not merged in, `password_env` not read).
    pub camera_definitions: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    storage: StorageConfig,
    #[serde(default)]
    detector: DetectorConfig,
    #[serde(default)]
    decode: DecodeConfig,
    #[serde(default)]
    ingest: IngestConfig,
    #[serde(default)]
    live: LiveConfig,
    #[serde(default)]
    clips: ClipsConfig,
    cluster: Option<super::ClusterConfig>,
    #[serde(default)]
    detection: toml::Table,
    #[serde(default)]
    health: toml::Table,
    #[serde(default)]
    organisation: toml::Table,
    #[serde(default)]
    alerts: toml::Table,
    gb28181: Option<toml::Value>,
    #[serde(default)]
    cameras: Vec<toml::Value>,
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it (model,
    /// onnxruntime, data directory, SQLite file) are taken from the file's
    /// directory, whatever the working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config.resolve_paths(&crate::paths::config_dir(path));
        Ok(config)
    }

    /// Takes the relative paths of the file from `base` (the file's directory).
    fn resolve_paths(&mut self, base: &Path) {
        use crate::paths::{resolve, resolve_sqlite_url};
        self.storage.data_dir = resolve(base, &self.storage.data_dir);
        self.storage.url = self
            .storage
            .url
            .as_deref()
            .map(|u| resolve_sqlite_url(base, u));
        self.detector.model = resolve(base, &self.detector.model);
        self.detector.onnxruntime = self
            .detector
            .onnxruntime
            .as_deref()
            .map(|p| resolve(base, p));
    }

    /// Checks every label the `[detection]` defaults name against the
    /// model's labels.
    pub fn check_default_labels(&self, known: &[String]) -> Result<(), String> {
        let unknown = |l: &str| !known.iter().any(|k| k == l);
        let hint = "see the model's labels file";
        for l in self
            .detection
            .labels
            .iter()
            .chain(self.detection.thresholds.keys())
        {
            if unknown(l) {
                return Err(format!("[detection]: unknown label \"{l}\" ({hint})"));
            }
        }
        Ok(())
    }

    /// Checks every label the file names (the defaults and every camera, as
    /// written) against the model's labels.
    pub fn check_labels(&self, known: &[String]) -> Result<(), String> {
        self.check_default_labels(known)?;
        for c in &self.cameras {
            c.check_labels(known)
                .map_err(|e| format!("camera \"{}\": {}", c.id, e.message))?;
        }
        Ok(())
    }

    /// Parses and validates config text; the error names the table and field.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        let detection: DetectionSettings =
            settings(&raw.detection, None).map_err(|e| format!("[detection]: {e}"))?;
        detection
            .validate()
            .map_err(|e| format!("[detection]: {e}"))?;
        let health_defaults: HealthDefaults =
            settings(&raw.health, None).map_err(|e| format!("[health]: {e}"))?;
        health_defaults
            .validate()
            .map_err(|e| format!("[health]: {e}"))?;
        // Cameras inherit the per-camera part of [health], not sample_interval_s.
        let mut camera_health = raw.health.clone();
        camera_health.remove("sample_interval_s");
        raw.decode
            .validate()
            .map_err(|e| format!("[decode]: {e}"))?;
        raw.storage
            .validate()
            .map_err(|e| format!("[storage]: {e}"))?;
        raw.ingest
            .validate()
            .map_err(|e| format!("[ingest]: {e}"))?;
        raw.live.validate().map_err(|e| format!("[live]: {e}"))?;
        raw.detector
            .validate()
            .map_err(|e| format!("[detector]: {e}"))?;
        raw.clips.validate().map_err(|e| format!("[clips]: {e}"))?;
        if let Some(cluster) = &raw.cluster {
            cluster.validate().map_err(|e| format!("[cluster]: {e}"))?;
            let url = raw.storage.database_url();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err("[cluster]: several nodes share a PostgreSQL database; set [storage] url = \"postgres://...\"".into());
            }
        }

        let camera_defaults = CameraDefaults {
            detection: raw.detection.clone(),
            health: camera_health,
        };
        let mut cameras = Vec::with_capacity(raw.cameras.len());
        let mut camera_definitions = Vec::with_capacity(raw.cameras.len());
        let mut seen = HashSet::new();
        for (i, value) in raw.cameras.into_iter().enumerate() {
            let id_hint = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
            let place = match &id_hint {
                Some(id) => format!("cameras[{i}] (id \"{id}\")"),
                None => format!("cameras[{i}]"),
            };
            camera_definitions.push(toml_to_json(&value));
            let cam = camera_defaults
                .camera_from_toml(value)
                .map_err(|e| format!("{place}: {e}"))?;
            if !seen.insert(cam.id.clone()) {
                return Err(format!(
                    "{place}: field `id`: duplicate camera id \"{}\"",
                    cam.id
                ));
            }
            cameras.push(cam);
        }
        let gb28181 = raw
            .gb28181
            .map(super::Gb28181Config::from_toml)
            .transpose()
            .map_err(|e| format!("[gb28181]: {e}"))?;
        if gb28181.is_none() {
            if let Some(c) = cameras.iter().find(|c| c.url.scheme() == "gb28181") {
                return Err(format!(
                    "camera \"{}\": field `url`: a gb28181:// camera needs a [gb28181] section",
                    c.id
                ));
            }
        }
        Ok(Config {
            server: raw.server,
            storage: raw.storage,
            detector: raw.detector,
            decode: raw.decode,
            ingest: raw.ingest,
            live: raw.live,
            clips: raw.clips,
            cluster: raw.cluster,
            detection,
            health: health_defaults,
            organisation: raw.organisation,
            alerts: raw.alerts,
            gb28181,
            cameras,
            camera_defaults,
            camera_definitions,
        })
    }
}
