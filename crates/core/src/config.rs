//! The TOML configuration file: parsing, defaults and validation.
//!
//! Cameras are parsed one by one so that every error names the camera
//! (`cameras[2] (id "east-gate")`) and the field.

pub use crate::camera_error::CameraError;
use crate::secret::Secret;
use crate::zones::CameraRules;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// The default onnxruntime library, where `scripts/setup.sh` puts it
/// (relative to the installation, see [`crate::paths::installed`]).
pub const DEFAULT_ONNXRUNTIME: &str = ".local/onnxruntime/libonnxruntime.so.1.32.0";
/// The default model manifest (relative to the installation).
pub const DEFAULT_MODEL: &str = "models/ssd_mobilenet_v2_coco.toml";

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
    pub detection: DetectionSettings,
    pub health: HealthDefaults,
    /// `[organisation]` (villages, grids, officers, duty roster) as written;
    /// the alerts stage parses and validates it.
    pub organisation: toml::Table,
    /// `[alerts]` (routing, channels) as written; the alerts stage parses and
    /// validates it.
    pub alerts: toml::Table,
    pub cameras: Vec<CameraConfig>,
    /// What cameras inherit (`[detection]`, `[health]`): to read cameras
    /// defined outside the file (through the API) with the same rules.
    pub camera_defaults: CameraDefaults,
    /// The file's `[[cameras]]` tables as JSON objects, in the order of
    /// `cameras` (as written: defaults not merged in, `password_env` not read).
    pub camera_definitions: Vec<serde_json::Value>,
}

/// The tables a camera's own `detection` and `health` tables are deep-merged
/// over: `[detection]` and the per-camera part of `[health]`.
#[derive(Clone, Debug, Default)]
pub struct CameraDefaults {
    detection: toml::Table,
    health: toml::Table,
}

/// Reads `value` as `T`; the error names the field.
fn deserialize<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, CameraError> {
    serde_path_to_error::deserialize(value).map_err(CameraError::from_serde)
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
    fn camera_from_toml(&self, value: toml::Value) -> Result<CameraConfig, CameraError> {
        camera_from_raw(deserialize(value)?, &self.detection, &self.health)
    }
}

/// JSON to TOML for a camera definition: `null` members are left out (the
/// field is absent); `Err` names a path where `null` cannot be left out.
fn json_to_toml(v: &serde_json::Value, path: &str) -> Result<Option<toml::Value>, String> {
    use serde_json::Value as J;
    Ok(Some(match v {
        J::Null => return Ok(None),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match json_to_toml(item, &format!("{path}[{i}]"))? {
                    Some(v) => out.push(v),
                    None => return Err(format!("{path}[{i}]")),
                }
            }
            toml::Value::Array(out)
        }
        J::Object(map) => {
            let mut t = toml::Table::new();
            for (k, item) in map {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(v) = json_to_toml(item, &at)? {
                    t.insert(k.clone(), v);
                }
            }
            toml::Value::Table(t)
        }
    }))
}

/// TOML to JSON (dates become strings).
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (`/metrics`).
    pub metrics_listen: SocketAddr,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// names the real client; empty: the peer address is the client.
    pub trusted_proxies: crate::TrustedProxies,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            metrics_listen: "127.0.0.1:9090".parse().expect("valid literal"),
            trusted_proxies: Default::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory for the embedded database and other state.
    pub data_dir: PathBuf,
    /// Database URL; default `sqlite://<data_dir>/xueliang.db`.
    pub url: Option<String>,
    /// Days events, their snapshots and alerts, and line crossings are kept.
    pub retention_days: u32,
    /// Days health samples (the online-rate reports) are kept.
    pub health_retention_days: u32,
    /// Days audit lines are kept.
    pub audit_retention_days: u32,
    /// The most the service's files may take, in GB (10^9 bytes); none by
    /// default. Over it, the oldest snapshots go first, then the oldest events.
    pub max_disk_gb: Option<f64>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            url: None,
            retention_days: 90,
            health_retention_days: 400,
            audit_retention_days: 365,
            max_disk_gb: None,
        }
    }
}

impl StorageConfig {
    fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("retention_days", self.retention_days),
            ("health_retention_days", self.health_retention_days),
            ("audit_retention_days", self.audit_retention_days),
        ] {
            if v == 0 {
                return Err(format!("field `{name}`: must be at least 1 day"));
            }
        }
        if let Some(gb) = self.max_disk_gb {
            if !(gb > 0.0 && gb.is_finite()) {
                return Err(format!("field `max_disk_gb`: must be > 0, got {gb}"));
            }
        }
        Ok(())
    }

    /// The disk budget in bytes, if any.
    pub fn max_disk_bytes(&self) -> Option<u64> {
        self.max_disk_gb.map(|gb| (gb * 1e9) as u64)
    }

    /// The database URL after defaults.
    pub fn database_url(&self) -> String {
        match &self.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("xueliang.db").display()),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Path of the model manifest (TOML).
    pub model: PathBuf,
    /// Path of `libonnxruntime.so`; `ORT_DYLIB_PATH` overrides the default.
    pub onnxruntime: Option<PathBuf>,
    /// Inference workers, each with its own session and its share of the
    /// cameras; 0 = one per core.
    pub workers: usize,
    /// Threads onnxruntime may use for one inference; 0 = the cores divided
    /// among the workers (at least 1).
    pub threads: usize,
    /// Execution providers to try in order; the CPU is always the last resort.
    pub execution_providers: Vec<ExecutionProvider>,
}

/// Where onnxruntime runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// NVIDIA TensorRT (needs onnxruntime built with it, and a GPU).
    TensorRt,
    /// NVIDIA CUDA (needs the onnxruntime-gpu library and a GPU).
    Cuda,
    Cpu,
}

impl ExecutionProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::TensorRt => "tensorrt",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Cpu => "cpu",
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            model: crate::paths::installed(DEFAULT_MODEL),
            onnxruntime: None,
            workers: 0,
            threads: 0,
            execution_providers: vec![ExecutionProvider::Cpu],
        }
    }
}

impl DetectorConfig {
    /// (workers, threads per worker) on a machine with `cores` cores.
    pub fn layout(&self, cores: usize) -> (usize, usize) {
        let workers = if self.workers == 0 {
            cores.max(1)
        } else {
            self.workers
        };
        let threads = if self.threads == 0 {
            (cores / workers).max(1)
        } else {
            self.threads
        };
        (workers, threads)
    }

    pub fn onnxruntime_path(&self) -> PathBuf {
        if let Some(p) = &self.onnxruntime {
            return p.clone();
        }
        match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) => PathBuf::from(p),
            None => crate::paths::installed(DEFAULT_ONNXRUNTIME),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Decode threads shared by all cameras; 0 = one per core.
    pub threads: usize,
    /// While a camera is idle (no motion in the compressed stream, nothing
    /// tracked), decode and detect on its key frames only.
    pub idle_key_frames_only: bool,
    /// Seconds without motion or a tracked object before a camera is idle.
    pub idle_after_s: f64,
    /// FFmpeg hardware devices to decode on, tried in order; software
    /// decoding is always the last resort (empty: software only).
    pub hwaccel: Vec<HwAccel>,
    /// The DRM render node VA-API opens; `None`: FFmpeg's default
    /// (`/dev/dri/renderD128`).
    pub vaapi_device: Option<PathBuf>,
}

/// An FFmpeg hardware device type that decodes H.264 and H.265.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HwAccel {
    /// NVIDIA NVDEC (needs an NVIDIA GPU and its driver's `libcuda.so.1`).
    Cuda,
    /// VA-API (Intel and AMD GPUs; needs a render node and a VA driver).
    Vaapi,
}

impl HwAccel {
    pub const ALL: [HwAccel; 2] = [HwAccel::Cuda, HwAccel::Vaapi];

    pub fn as_str(self) -> &'static str {
        match self {
            HwAccel::Cuda => "cuda",
            HwAccel::Vaapi => "vaapi",
        }
    }
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            threads: 0,
            idle_key_frames_only: true,
            idle_after_s: 10.0,
            hwaccel: Vec::new(),
            vaapi_device: None,
        }
    }
}

impl DecodeConfig {
    fn validate(&self) -> Result<(), String> {
        if !(self.idle_after_s >= 1.0 && self.idle_after_s <= 3600.0) {
            return Err(format!(
                "field `idle_after_s`: must be in [1, 3600], got {}",
                self.idle_after_s
            ));
        }
        for (i, a) in self.hwaccel.iter().enumerate() {
            if self.hwaccel[..i].contains(a) {
                return Err(format!(
                    "field `hwaccel`: \"{}\" is listed twice",
                    a.as_str()
                ));
            }
        }
        if let Some(path) = &self.vaapi_device {
            if path.as_os_str().is_empty() || path.as_os_str().as_encoded_bytes().contains(&0) {
                return Err(format!(
                    "field `vaapi_device`: not a device path: {:?}",
                    path.display().to_string()
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Seconds to wait for the TCP connection and each RTSP request.
    pub connect_timeout_s: f64,
    /// Seconds without a frame after which a session is dropped as stalled.
    pub frame_timeout_s: f64,
    /// First reconnect delay, seconds.
    pub backoff_initial_s: f64,
    /// Longest reconnect delay, seconds.
    pub backoff_max_s: f64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            connect_timeout_s: 10.0,
            frame_timeout_s: 10.0,
            backoff_initial_s: 1.0,
            backoff_max_s: 60.0,
        }
    }
}

/// Detection settings: the `[detection]` defaults, overridden per camera by
/// `[cameras.detection]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSettings {
    /// Detections per second to run on this camera (independent of its frame rate).
    pub fps: f64,
    /// Labels that make events.
    pub labels: Vec<String>,
    /// Minimum score for labels without their own threshold.
    pub min_score: f32,
    /// Per-label minimum scores.
    pub thresholds: BTreeMap<String, f32>,
    /// Seconds after an event of a label starts on a camera before another
    /// event of the same label may start there.
    pub cooldown_s: f64,
    /// Seconds an object may go unseen before its appearance (and event) ends.
    pub lost_after_s: f64,
    /// Time zone of zone schedules (IANA name).
    pub timezone: String,
}

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings {
            fps: 5.0,
            labels: vec![
                "person".into(),
                "car".into(),
                "motorcycle".into(),
                "bicycle".into(),
                "truck".into(),
                "bus".into(),
            ],
            min_score: 0.5,
            thresholds: BTreeMap::new(),
            cooldown_s: 30.0,
            lost_after_s: 3.0,
            timezone: "Asia/Shanghai".into(),
        }
    }
}

impl DetectionSettings {
    /// The minimum score for a label, or `None` when the label makes no events.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    pub fn threshold(&self, label: &str) -> Option<f32> {
        if !self.labels.iter().any(|l| l == label) {
            return None;
        }
        Some(
            self.thresholds
                .get(label)
                .copied()
                .unwrap_or(self.min_score),
        )
    }

    /// The lowest threshold of any watched label: detections below it are noise.
    pub fn floor(&self) -> f32 {
        self.labels
            .iter()
            .filter_map(|l| self.threshold(l))
            .fold(f32::INFINITY, f32::min)
    }

    /// Checks the values; the error names the field inside the table.
    fn validate(&self) -> Result<(), CameraError> {
        if !(self.fps > 0.0 && self.fps <= 60.0) {
            return Err(CameraError::new(
                "fps",
                format!("field `fps`: must be in (0, 60], got {}", self.fps),
            ));
        }
        if self.labels.is_empty() {
            return Err(CameraError::new(
                "labels",
                "field `labels`: must name at least one label",
            ));
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(CameraError::new(
                "min_score",
                format!(
                    "field `min_score`: must be in [0, 1], got {}",
                    self.min_score
                ),
            ));
        }
        for (label, t) in &self.thresholds {
            if !(0.0..=1.0).contains(t) {
                let field = format!("thresholds.{label}");
                let message = format!("field `{field}`: must be in [0, 1], got {t}");
                return Err(CameraError::new(field, message));
            }
        }
        if !(self.cooldown_s >= 0.0 && self.cooldown_s.is_finite()) {
            return Err(CameraError::new(
                "cooldown_s",
                format!("field `cooldown_s`: must be >= 0, got {}", self.cooldown_s),
            ));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(CameraError::new(
                "timezone",
                format!(
                    "field `timezone`: unknown time zone \"{}\" (use an IANA name such as Asia/Shanghai)",
                    self.timezone
                ),
            ));
        }
        if !(self.lost_after_s > 0.0 && self.lost_after_s.is_finite()) {
            return Err(CameraError::new(
                "lost_after_s",
                format!(
                    "field `lost_after_s`: must be > 0, got {}",
                    self.lost_after_s
                ),
            ));
        }
        Ok(())
    }
}

/// Health checks of one camera: `[health]`, overridden per camera by
/// `[cameras.health]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Seconds a camera must be offline before a `camera_offline` event.
    pub offline_grace_s: f64,
    /// Seconds a problem must last before the camera is `degraded` (and
    /// seconds without it before it is `online` again).
    pub degraded_after_s: f64,
    /// Degraded when the frame rate falls below this share of the camera's
    /// usual rate.
    pub min_fps_ratio: f64,
    /// Degraded when more RTP packets than this are lost per minute.
    pub max_lost_packets_per_min: f64,
    /// Run the picture checks (frozen, blocked, scene changed).
    pub picture_checks: bool,
    /// Seconds between two pictures looked at by the picture checks.
    pub picture_interval_s: f64,
    /// Seconds of an unchanged picture before `video_frozen`.
    pub frozen_after_s: f64,
    /// Seconds of a dark or uniform picture before `video_blocked`.
    pub blocked_after_s: f64,
    /// A picture whose mean brightness (0-255) is below this and whose contrast
    /// is below `blocked_max_contrast` is dark: lens covered or no light.
    pub blocked_max_brightness: f64,
    /// A picture whose contrast (standard deviation of brightness over a coarse
    /// grid, 0-255) is below this is uniform: covered, or facing a wall.
    pub blocked_max_contrast: f64,
    /// Seconds the view must differ from the usual one before `scene_changed`.
    pub scene_change_after_s: f64,
    /// The view differs when its correlation with the usual view (coarse grid,
    /// brightness-normalised) falls below this (-1..1).
    pub scene_change_min_correlation: f64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            offline_grace_s: 60.0,
            degraded_after_s: 10.0,
            min_fps_ratio: 0.5,
            max_lost_packets_per_min: 30.0,
            picture_checks: true,
            picture_interval_s: 2.0,
            frozen_after_s: 30.0,
            blocked_after_s: 20.0,
            blocked_max_brightness: 30.0,
            blocked_max_contrast: 6.0,
            scene_change_after_s: 20.0,
            scene_change_min_correlation: 0.5,
        }
    }
}

impl HealthSettings {
    /// Checks the values; the error names the field inside the table.
    fn validate(&self) -> Result<(), CameraError> {
        let positive = [
            ("offline_grace_s", self.offline_grace_s),
            ("degraded_after_s", self.degraded_after_s),
            ("picture_interval_s", self.picture_interval_s),
            ("frozen_after_s", self.frozen_after_s),
            ("blocked_after_s", self.blocked_after_s),
            ("scene_change_after_s", self.scene_change_after_s),
        ];
        for (name, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(CameraError::new(
                    name,
                    format!("field `{name}`: must be > 0, got {v}"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.min_fps_ratio) {
            return Err(CameraError::new(
                "min_fps_ratio",
                format!(
                    "field `min_fps_ratio`: must be in [0, 1], got {}",
                    self.min_fps_ratio
                ),
            ));
        }
        if self.max_lost_packets_per_min.is_nan() || self.max_lost_packets_per_min < 0.0 {
            return Err(CameraError::new(
                "max_lost_packets_per_min",
                "field `max_lost_packets_per_min`: must be >= 0",
            ));
        }
        for (name, v) in [
            ("blocked_max_brightness", self.blocked_max_brightness),
            ("blocked_max_contrast", self.blocked_max_contrast),
        ] {
            if !(0.0..=255.0).contains(&v) {
                return Err(CameraError::new(
                    name,
                    format!("field `{name}`: must be in [0, 255], got {v}"),
                ));
            }
        }
        if !(-1.0..=1.0).contains(&self.scene_change_min_correlation) {
            return Err(CameraError::new(
                "scene_change_min_correlation",
                "field `scene_change_min_correlation`: must be in [-1, 1]",
            ));
        }
        Ok(())
    }
}

/// `[health]`: the per-camera defaults plus the settings that exist only once.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthDefaults {
    /// Seconds between two durable samples of every camera's state (for the
    /// online-rate reports).
    pub sample_interval_s: f64,
    #[serde(flatten)]
    pub camera: HealthSettings,
}

impl Default for HealthDefaults {
    fn default() -> Self {
        HealthDefaults {
            sample_interval_s: 60.0,
            camera: HealthSettings::default(),
        }
    }
}

impl HealthDefaults {
    fn validate(&self) -> Result<(), CameraError> {
        if !(self.sample_interval_s >= 1.0 && self.sample_interval_s.is_finite()) {
            return Err(CameraError::new(
                "sample_interval_s",
                format!(
                    "field `sample_interval_s`: must be >= 1, got {}",
                    self.sample_interval_s
                ),
            ));
        }
        self.camera.validate()
    }
}

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
}

fn yes() -> bool {
    true
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
    detection: toml::Table,
    #[serde(default)]
    health: toml::Table,
    #[serde(default)]
    organisation: toml::Table,
    #[serde(default)]
    alerts: toml::Table,
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
        let ingest = raw.ingest;
        for (name, v) in [
            ("connect_timeout_s", ingest.connect_timeout_s),
            ("frame_timeout_s", ingest.frame_timeout_s),
            ("backoff_initial_s", ingest.backoff_initial_s),
            ("backoff_max_s", ingest.backoff_max_s),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("[ingest]: field `{name}`: must be > 0, got {v}"));
            }
        }
        if ingest.backoff_max_s < ingest.backoff_initial_s {
            return Err("[ingest]: field `backoff_max_s`: must be >= backoff_initial_s".into());
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
        Ok(Config {
            server: raw.server,
            storage: raw.storage,
            detector: raw.detector,
            decode: raw.decode,
            ingest,
            detection,
            health: health_defaults,
            organisation: raw.organisation,
            alerts: raw.alerts,
            cameras,
            camera_defaults,
            camera_definitions,
        })
    }
}

/// Deep-merges a camera's table over the defaults' table and reads the result.
fn settings<T: serde::de::DeserializeOwned>(
    defaults: &toml::Table,
    camera: Option<&toml::Table>,
) -> Result<T, CameraError> {
    let mut merged = defaults.clone();
    if let Some(c) = camera {
        merge(&mut merged, c);
    }
    deserialize(toml::Value::Table(merged))
}

fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A required field: serde's message when it is missing.
fn required(value: Option<String>, field: &str) -> Result<String, CameraError> {
    value.ok_or_else(|| CameraError::new(field, format!("missing field `{field}`")))
}

fn camera_from_raw(
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
    if url.scheme() != "rtsp" {
        return Err(format!("scheme must be rtsp, got \"{}\"", url.scheme()));
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

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[cameras]]
id = "east-gate"
name = "东门"
url = "rtsp://127.0.0.1:8554/cam1"
"#;

    #[test]
    fn relative_paths_are_taken_from_the_config_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        let text = "[storage]\ndata_dir = \"state\"\nurl = \"sqlite://db/x.db\"\n\
                    [detector]\nmodel = \"m/model.toml\"\nonnxruntime = \"/opt/ort.so\"\n";
        std::fs::write(&path, text).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.storage.data_dir, dir.path().join("state"));
        assert_eq!(
            c.storage.database_url(),
            format!("sqlite://{}", dir.path().join("db/x.db").display())
        );
        assert_eq!(c.detector.model, dir.path().join("m/model.toml"));
        assert_eq!(
            c.detector.onnxruntime.as_deref(),
            Some(Path::new("/opt/ort.so"))
        );
        // Left out, the data directory is the file's too.
        std::fs::write(&path, "").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.storage.data_dir, dir.path().join("data"));
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.database_url(), "sqlite://data/xueliang.db");
        assert_eq!(c.cameras.len(), 1);
        let cam = &c.cameras[0];
        assert!(cam.enabled);
        assert_eq!(cam.detection.fps, 5.0);
        assert_eq!(cam.detection.threshold("person"), Some(0.5));
        assert_eq!(cam.detection.threshold("toothbrush"), None);
    }

    #[test]
    fn storage_retention_defaults_and_checks() {
        let c = Config::parse(MINIMAL).unwrap();
        let s = &c.storage;
        assert_eq!(
            (
                s.retention_days,
                s.health_retention_days,
                s.audit_retention_days
            ),
            (90, 400, 365)
        );
        assert_eq!(s.max_disk_bytes(), None);
        let c = Config::parse(&format!(
            "[storage]\nmax_disk_gb = 2.5\nretention_days = 30\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.storage.max_disk_bytes(), Some(2_500_000_000));
        assert_eq!(c.storage.retention_days, 30);
        for (bad, field) in [
            ("retention_days = 0", "retention_days"),
            ("max_disk_gb = -1.0", "max_disk_gb"),
            ("health_retention_days = 0", "health_retention_days"),
        ] {
            let e = Config::parse(&format!("[storage]\n{bad}\n{MINIMAL}")).unwrap_err();
            assert!(e.starts_with("[storage]") && e.contains(field), "{e}");
        }
    }

    #[test]
    fn camera_overrides_merge_over_defaults() {
        let c = Config::parse(
            r#"
[detection]
fps = 2
thresholds = { car = 0.7 }

[[cameras]]
id = "a"
name = "A"
url = "rtsp://h/p"
detection = { fps = 4, thresholds = { person = 0.6 } }
"#,
        )
        .unwrap();
        let d = &c.cameras[0].detection;
        assert_eq!(d.fps, 4.0);
        assert_eq!(d.threshold("person"), Some(0.6));
        assert_eq!(d.threshold("car"), Some(0.7));
        assert_eq!(c.detection.fps, 2.0);
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn unknown_camera_field_names_camera_and_field() {
        let e = err(&MINIMAL.replace("url =", "urll = \"x\"\nurl ="));
        assert!(
            e.contains("cameras[0] (id \"east-gate\")") && e.contains("urll"),
            "{e}"
        );
    }

    #[test]
    fn missing_url_names_camera_and_field() {
        let e = err("[[cameras]]\nid = \"x\"\nname = \"X\"\n");
        assert!(
            e.contains("cameras[0] (id \"x\")") && e.contains("url"),
            "{e}"
        );
    }

    #[test]
    fn malformed_url_names_camera_and_field() {
        let e = err(&MINIMAL.replace("rtsp://127.0.0.1:8554/cam1", "rtsp//nohost"));
        assert!(e.contains("east-gate") && e.contains("field `url`"), "{e}");
        let e = err(&MINIMAL.replace("rtsp://127.0.0.1", "http://127.0.0.1"));
        assert!(e.contains("scheme must be rtsp"), "{e}");
    }

    #[test]
    fn credentials_in_url_are_refused_without_echoing_them() {
        let e = err(&MINIMAL.replace("rtsp://", "rtsp://admin:s3cret@"));
        assert!(e.contains("field `url`") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn unknown_top_level_field_is_an_error() {
        let e = err(&format!(
            "[server]\nlisten = \"127.0.0.1:1\"\nport = 3\n{MINIMAL}"
        ));
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn duplicate_ids_and_bad_detection_values_are_errors() {
        let e = err(&format!("{MINIMAL}{MINIMAL}"));
        assert!(e.contains("duplicate camera id"), "{e}");
        let e = err(&format!("[detection]\nfps = 0\n{MINIMAL}"));
        assert!(e.contains("fps"), "{e}");
        let e = err(&MINIMAL.replace("url =", "detection = { min_score = 2.0 }\nurl ="));
        assert!(e.contains("east-gate") && e.contains("min_score"), "{e}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_field() {
        let e = err(&format!("[detection]\nfps = \"five\"\n{MINIMAL}"));
        assert!(
            e.starts_with("[detection]: field `fps`: invalid type"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("url =", "enabled = \"yes\"\nurl ="));
        assert!(
            e.contains("(id \"east-gate\"): field `enabled`: invalid type"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("url =", "detection = { fps = \"5\" }\nurl ="));
        assert!(
            e.contains("field `detection.fps`") || e.contains("detection: field `fps`"),
            "{e}"
        );
    }

    #[test]
    fn password_env_is_read_and_never_shown() {
        std::env::set_var("XUELIANG_TEST_PW", "pa55");
        let c = Config::parse(&MINIMAL.replace(
            "url =",
            "username = \"admin\"\npassword_env = \"XUELIANG_TEST_PW\"\nurl =",
        ))
        .unwrap();
        assert_eq!(c.cameras[0].password.as_ref().unwrap().expose(), "pa55");
        assert!(!format!("{:?}", c).contains("pa55"));
        let e = err(&MINIMAL.replace(
            "url =",
            "username = \"a\"\npassword_env = \"XUELIANG_NOPE\"\nurl =",
        ));
        assert!(e.contains("XUELIANG_NOPE"), "{e}");
    }

    #[test]
    fn health_defaults_and_camera_overrides() {
        let c = Config::parse(&format!(
            "[health]\nsample_interval_s = 30\noffline_grace_s = 5\n{}",
            MINIMAL.replace("url =", "health = { frozen_after_s = 9 }\nurl =")
        ))
        .unwrap();
        assert_eq!(c.health.sample_interval_s, 30.0);
        assert_eq!(c.health.camera.offline_grace_s, 5.0);
        let h = &c.cameras[0].health;
        assert_eq!((h.offline_grace_s, h.frozen_after_s), (5.0, 9.0));
        assert_eq!(h.blocked_after_s, HealthSettings::default().blocked_after_s);
    }

    #[test]
    fn unknown_or_bad_health_fields_are_errors() {
        let e = err(&format!("[health]\noffline_grace = 5\n{MINIMAL}"));
        assert!(e.contains("[health]") && e.contains("offline_grace"), "{e}");
        let e = err(&MINIMAL.replace("url =", "health = { sample_interval_s = 5 }\nurl ="));
        assert!(
            e.contains("east-gate") && e.contains("sample_interval_s"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("url =", "health = { min_fps_ratio = 2 }\nurl ="));
        assert!(
            e.contains("east-gate") && e.contains("min_fps_ratio"),
            "{e}"
        );
    }

    #[test]
    fn zone_errors_name_the_camera_zone_and_field() {
        let zones = "[[cameras.zones]]\nname = \"yard\"\npolygon = [[0.1, 0.1], [0.5, 0.5]]\n";
        let e = err(&format!("{MINIMAL}{zones}"));
        assert!(
            e.contains("east-gate") && e.contains("zone \"yard\"") && e.contains("polygon"),
            "{e}"
        );
        let ok = "[[cameras.zones]]\nname = \"yard\"\npolygon = [[0.1, 0.1], [0.5, 0.5], [0.1, 0.9]]\nlabels = [\"persn\"]\n";
        let c = Config::parse(&format!("{MINIMAL}{ok}")).unwrap();
        let e = c
            .check_labels(&[
                "person".into(),
                "car".into(),
                "truck".into(),
                "bus".into(),
                "bicycle".into(),
                "motorcycle".into(),
            ])
            .unwrap_err();
        assert!(
            e.contains("east-gate") && e.contains("zone \"yard\"") && e.contains("persn"),
            "{e}"
        );
        let e = err(&format!(
            "[detection]\ntimezone = \"Mars/Olympus\"\n{MINIMAL}"
        ));
        assert!(e.contains("timezone") && e.contains("Mars/Olympus"), "{e}");
    }

    #[test]
    fn decode_idle_settings_default_and_validate() {
        let c = Config::parse(MINIMAL).unwrap();
        assert!(c.decode.idle_key_frames_only);
        assert_eq!(c.decode.idle_after_s, 10.0);
        let c = Config::parse(&format!(
            "[decode]\nidle_key_frames_only = false\nidle_after_s = 30\n{MINIMAL}"
        ))
        .unwrap();
        assert!(!c.decode.idle_key_frames_only);
        assert_eq!(c.decode.idle_after_s, 30.0);
        let e = err(&format!("[decode]\nidle_after_s = 0.5\n{MINIMAL}"));
        assert!(e.contains("[decode]") && e.contains("idle_after_s"), "{e}");
        let e = err(&format!("[decode]\nidle_after = 5\n{MINIMAL}"));
        assert!(e.contains("idle_after"), "{e}");
    }

    #[test]
    fn decode_hwaccel_list_parses_in_order_and_names_the_field_when_wrong() {
        let c = Config::parse(MINIMAL).unwrap();
        assert!(c.decode.hwaccel.is_empty(), "software only by default");
        assert_eq!(c.decode.vaapi_device, None);
        let c = Config::parse(&format!(
            "[decode]\nhwaccel = [\"vaapi\", \"cuda\"]\nvaapi_device = \"/dev/dri/renderD129\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.decode.hwaccel, [HwAccel::Vaapi, HwAccel::Cuda]);
        assert_eq!(
            c.decode.vaapi_device.as_deref(),
            Some(Path::new("/dev/dri/renderD129"))
        );
        let e = err(&format!(
            "[decode]\nhwaccel = [\"cuda\", \"nvdec\"]\n{MINIMAL}"
        ));
        assert!(
            e.contains("hwaccel") && e.contains("nvdec") && e.contains("vaapi"),
            "{e}"
        );
        let e = err(&format!("[decode]\nhwaccel = \"cuda\"\n{MINIMAL}"));
        assert!(e.contains("hwaccel"), "{e}");
        let e = err(&format!(
            "[decode]\nhwaccel = [\"cuda\", \"cuda\"]\n{MINIMAL}"
        ));
        assert!(
            e.contains("[decode]") && e.contains("`hwaccel`") && e.contains("twice"),
            "{e}"
        );
        let e = err(&format!("[decode]\nvaapi_device = \"\"\n{MINIMAL}"));
        assert!(
            e.contains("[decode]") && e.contains("`vaapi_device`"),
            "{e}"
        );
    }

    #[test]
    fn redact_userinfo_hides_credentials() {
        assert_eq!(redact_userinfo("rtsp://u:p@h/x"), "rtsp://***@h/x");
        assert_eq!(redact_userinfo("rtsp://h/x"), "rtsp://h/x");
    }

    fn defaults() -> CameraDefaults {
        Config::parse("[detection]\nfps = 4\nlabels = [\"person\", \"car\"]\n[health]\noffline_grace_s = 9\nsample_interval_s = 30\n")
            .unwrap()
            .camera_defaults
    }

    fn json_err(v: serde_json::Value) -> CameraError {
        defaults().camera_from_json(&v).unwrap_err()
    }

    #[test]
    fn json_camera_gets_the_file_defaults_deep_merged() {
        let c = defaults()
            .camera_from_json(&serde_json::json!({
                "id": "east-gate", "name": "东门", "url": "rtsp://127.0.0.1:8554/cam1",
                "village": null, "detection": {"min_score": 0.6},
                "username": "admin", "password": "pa55"
            }))
            .unwrap();
        assert_eq!(c.detection.fps, 4.0, "[detection] default kept");
        assert_eq!(c.detection.min_score, 0.6);
        assert_eq!(c.village, None, "null counts as absent");
        assert!(c.enabled);
        assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("pa55"));
        let file = Config::parse(&format!("[health]\noffline_grace_s = 9\n{MINIMAL}")).unwrap();
        assert_eq!(
            c.health.offline_grace_s,
            file.cameras[0].health.offline_grace_s
        );
        assert_eq!(
            file.camera_definitions[0]["url"],
            "rtsp://127.0.0.1:8554/cam1"
        );
    }

    #[test]
    fn json_camera_errors_name_the_field() {
        let base = || serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base();
            b[k] = v;
            json_err(b)
        };
        let mut no_url = base();
        no_url.as_object_mut().unwrap().remove("url");
        assert_eq!(json_err(no_url).field, "url");
        assert_eq!(with("url", "http://h/a".into()).field, "url");
        assert_eq!(with("id", "bad id!".into()).field, "id");
        assert_eq!(with("urll", "x".into()).field, "urll");
        assert_eq!(with("name", 5.into()).field, "name");
        assert_eq!(with("enabled", "yes".into()).field, "enabled");
        assert_eq!(
            with("detection", serde_json::json!({"fps": "fast"})).field,
            "detection.fps"
        );
        let e = with("detection", serde_json::json!({"fps": 0}));
        assert_eq!(e.field, "detection.fps", "{e:?}");
        assert!(e.message.contains("fps"));
        assert_eq!(
            with("detection", serde_json::json!({"fpz": 1})).field,
            "detection.fpz"
        );
        assert_eq!(
            with("health", serde_json::json!({"offline_grace_s": -1})).field,
            "health.offline_grace_s"
        );
        let e = with(
            "zones",
            serde_json::json!([{"name": "z", "polygon": [[0, 0]]}]),
        );
        assert_eq!(e.field, "zones.polygon", "{e:?}");
        assert_eq!(json_err(serde_json::json!([1])).field, "body");
    }

    #[test]
    fn nested_errors_name_the_whole_path() {
        let zone = |extra: serde_json::Value| {
            let mut z = serde_json::json!({"name": "z", "polygon": [[0, 0], [1, 0], [1, 1]]});
            z.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json_err(
                serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a",
                "zones": [z]}),
            )
        };
        let e = zone(serde_json::json!({"name": ""}));
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("zones.name", "zones: field `name` must not be empty")
        );
        assert_eq!(
            zone(serde_json::json!({"colour": 1})).field,
            "zones[0].colour"
        );
        assert_eq!(
            zone(serde_json::json!({"polygon": "x"})).field,
            "zones[0].polygon"
        );
        let crowd = serde_json::json!({"rules": [{"name": "r", "kind": "crowd", "min_count": 1}]});
        let e = zone(crowd);
        assert_eq!(e.field, "zones.rules.min_count");
        assert_eq!(
            e.message,
            "zone \"z\", rule \"r\": field `min_count` must be >= 2"
        );
        let e = json_err(
            serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a",
            "filters": {"person": {"min_area": 2}}}),
        );
        assert_eq!(e.field, "filters.person.min_area");
    }

    #[test]
    fn json_camera_errors_never_echo_the_password() {
        let e = json_err(serde_json::json!({
            "id": "a", "name": "A", "url": "rtsp://admin:s3cret@h/a"
        }));
        assert!(e.field == "url" && !e.message.contains("s3cret"), "{e:?}");
        let e = json_err(serde_json::json!({
            "id": "a", "name": "A", "url": "rtsp://h/a", "password": 734591
        }));
        assert!(
            e.field == "password" && !e.message.contains("734591"),
            "{e:?}"
        );
        let e = json_err(serde_json::json!({
            "id": "a", "name": "A", "url": "rtsp://h/a", "password": "s3cret"
        }));
        assert!(
            e.field == "username" && !e.message.contains("s3cret"),
            "{e:?}"
        );
    }

    #[test]
    fn camera_labels_are_checked_against_the_model() {
        let known = vec!["person".to_owned(), "car".to_owned()];
        let d = defaults();
        let cam = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"id": "a", "name": "A", "url": "rtsp://h/a"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            d.camera_from_json(&v).unwrap()
        };
        assert!(cam(serde_json::json!({})).check_labels(&known).is_ok());
        let e = cam(serde_json::json!({"detection": {"labels": ["unicorn"]}}))
            .check_labels(&known)
            .unwrap_err();
        assert_eq!(e.field, "detection.labels");
        assert!(e.message.contains("unicorn"));
        let e = cam(serde_json::json!({"zones": [{"name": "z",
            "polygon": [[0, 0], [1, 0], [1, 1]],
            "rules": [{"name": "r", "kind": "intrusion", "labels": ["unicorn"]}]}]}))
        .check_labels(&known)
        .unwrap_err();
        assert_eq!(e.field, "zones.rules.labels");
        assert_eq!(
            e.message,
            "zone \"z\", rule \"r\": field `labels`: unknown label \"unicorn\" (see the model's labels file)"
        );
    }

    #[test]
    fn trusted_proxies_are_read_and_a_bad_one_is_named() {
        let c = Config::parse(&format!(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n{MINIMAL}"
        ))
        .unwrap();
        assert!(c
            .server
            .trusted_proxies
            .contains("10.9.8.7".parse().unwrap()));
        assert!(c
            .server
            .trusted_proxies
            .contains("127.0.0.1".parse().unwrap()));
        assert!(!c
            .server
            .trusted_proxies
            .contains("127.0.0.2".parse().unwrap()));
        assert!(Config::parse(MINIMAL)
            .unwrap()
            .server
            .trusted_proxies
            .is_empty());
        let e = Config::parse(&format!(
            "[server]\ntrusted_proxies = [\"10.0.0.0/99\"]\n{MINIMAL}"
        ))
        .unwrap_err();
        assert!(
            e.contains("trusted_proxies") && e.contains("10.0.0.0/99"),
            "{e}"
        );
    }
}
