//! `xueliang camera ...`: the cameras `serve` would consider, read offline,
//! and the way back from a change made through the API that no longer
//! validates (`serve` then does not start, so the API cannot undo it).

use crate::serve::{considered_cameras, Considered, Source};
use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use xueliang_core::{Config, Secret};

#[derive(Subcommand)]
pub enum CameraCommand {
    /// List every camera `serve` would consider: where its definition comes
    /// from, and whether it validates against the model's labels.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print a camera's definition in force as JSON (credentials as `***`).
    Show {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        id: String,
    },
    /// Forget the database's word on a camera: one changed or deleted through
    /// the API runs the config file's definition again, one added through
    /// the API is deleted. Takes effect when `serve` starts.
    Revert {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        id: String,
    },
}

impl CameraCommand {
    pub fn config_path(&self) -> &Path {
        match self {
            CameraCommand::List { config }
            | CameraCommand::Show { config, .. }
            | CameraCommand::Revert { config, .. } => config,
        }
    }
}

pub fn run(command: CameraCommand, config: &Config) -> ExitCode {
    crate::offline::block_on(execute(command, config))
}

fn find<'a>(cameras: &'a [Considered], id: &str) -> anyhow::Result<&'a Considered> {
    cameras
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| anyhow!("no camera \"{id}\" (see `xueliang camera list`)"))
}

/// The definition without its credentials, which the API never shows
/// either: `username` and `password` print as a [`Secret`] does.
fn redacted(definition: &serde_json::Value) -> serde_json::Value {
    let mut out = definition.clone();
    if let Some(fields) = out.as_object_mut() {
        for key in ["username", "password"] {
            if let Some(v) = fields.get_mut(key) {
                *v = Secret::new(v.to_string()).to_string().into();
            }
        }
    }
    out
}

async fn execute(command: CameraCommand, config: &Config) -> anyhow::Result<()> {
    let store = crate::offline::open(config).await?;
    let stored = store.list_cameras().await.context("[storage] cameras")?;
    let cameras = considered_cameras(config, stored);
    match command {
        CameraCommand::List { .. } => {
            let labels = xueliang_detect::Manifest::load(&config.detector.model)
                .context("[detector] model")?
                .labels;
            if let Err(e) = config.check_default_labels(&labels) {
                eprintln!("xueliang: {e}");
            }
            for c in &cameras {
                let verdict = match c.check(config, &labels) {
                    Ok(Some(_)) => "valid".to_owned(),
                    Ok(None) => "not run".to_owned(),
                    Err(e) => format!("INVALID: {}", e.message),
                };
                println!("{}\t{}\t{verdict}", c.id, c.source.describe());
            }
        }
        CameraCommand::Show { id, .. } => {
            let c = find(&cameras, &id)?;
            if c.source == Source::Deleted {
                bail!("camera \"{id}\" was deleted through the API; `xueliang camera revert` brings back the config file's definition");
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&redacted(&c.definition))?
            );
        }
        CameraCommand::Revert { id, .. } => {
            let c = find(&cameras, &id)?;
            if c.source == Source::File {
                println!("camera \"{id}\": the database has no word on it; the config file's definition is used already");
                return Ok(());
            }
            store
                .forget_camera(&id)
                .await
                .context("[storage] cameras")?;
            let detail = serde_json::json!({ "was": c.source.describe() });
            store
                .audit(crate::offline::audit(
                    "camera.revert",
                    "camera",
                    &id,
                    detail,
                ))
                .await?;
            let now = match c.source {
                Source::Added => "deleted",
                _ => "back to the config file's definition",
            };
            println!("camera \"{id}\": {now} (from the next start of `xueliang serve`)");
        }
    }
    Ok(())
}

/// For `check-config`: why `serve` would refuse each camera stored in the
/// database (changed or added through the API), in the words of its
/// startup error. None while there is no database.
pub fn stored_refusals(
    config: &Config,
    config_path: &Path,
    labels: &[String],
) -> anyhow::Result<Vec<String>> {
    crate::offline::runtime()?.block_on(async {
        let url = config.storage.database_url();
        let Some(store) = xueliang_store::open_existing(&url)
            .await
            .context("[storage]")?
        else {
            return Ok(Vec::new());
        };
        let stored = store.list_cameras().await.context("[storage] cameras")?;
        Ok(considered_cameras(config, stored)
            .iter()
            .filter(|c| matches!(c.source, Source::Changed | Source::Added))
            .filter_map(|c| {
                let e = c.check(config, labels).err()?;
                Some(c.refusal(&e, config_path))
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_are_never_shown() {
        let definition = json!({"id": "a", "url": "rtsp://h/a", "username": "admin",
            "password": "pw-7731", "password_env": "CAM_A"});
        let shown = redacted(&definition);
        assert_eq!(shown["username"], "***");
        assert_eq!(shown["password"], "***");
        assert_eq!(
            shown["password_env"], "CAM_A",
            "a variable's name is no secret"
        );
        assert_eq!(shown["url"], "rtsp://h/a");
    }
}
