//! `[storage]`: the data directory, the database URL, how long rows are kept
//! and the disk budget.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory for the embedded database and other state.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://<file>` (default `sqlite://<data_dir>/xueliang.db`)
    /// or `postgres://user@host:port/database` (the password in the URL, or in
    /// the environment as `PGPASSWORD`).
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
    pub(super) fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("retention_days", self.retention_days),
            ("health_retention_days", self.health_retention_days),
            ("audit_retention_days", self.audit_retention_days),
        ] {
            if v == 0 {
                return Err(format!("field `{name}`: must be at least 1 day"));
            }
        }
        if let Some(url) = &self.url {
            let known = ["sqlite://", "sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|k| url.starts_with(k)) {
                let scheme = url.split_once(':').map_or(url.as_str(), |(s, _)| s);
                return Err(format!(
                    "field `url`: expected sqlite://<file> or postgres://<user>@<host>/<database>, \
                     got a URL starting \"{scheme}\""
                ));
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
