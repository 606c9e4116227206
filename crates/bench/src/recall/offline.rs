//! What the offline benches (`xueliang-recall`, `xueliang-regions`) load
//! before replaying clips: the cameras' config, the model on one
//! onnxruntime thread, and FFmpeg. Relative paths are taken from the
//! repository.

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use xueliang_core::paths::resolve;
use xueliang_core::{Config, InputGeometry};
use xueliang_detect::{load_onnxruntime, Manifest, OrtDetector};

/// The paths both benches take (relative ones from `--repo`).
#[derive(clap::Args, Debug)]
pub struct Paths {
    /// The repository root (fixtures, model, onnxruntime, cache).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The model's manifest.
    #[arg(long, default_value = "models/ssd_mobilenet_v2_coco.toml")]
    pub model: PathBuf,
    /// The onnxruntime library.
    #[arg(long, default_value = ".local/onnxruntime/libonnxruntime.so.1.32.0")]
    pub onnxruntime: PathBuf,
}

pub struct Offline {
    pub config: Config,
    pub geometry: InputGeometry,
    pub detector: OrtDetector,
}

pub fn load(paths: &Paths, config: &Path) -> Result<Offline> {
    let at = |p: &Path| resolve(&paths.repo, p);
    let loaded = Config::load(&at(config)).map_err(|e| anyhow!("{}: {e}", config.display()))?;
    let manifest = Manifest::load(&at(&paths.model))?;
    let geometry = manifest.input.geometry;
    let env = load_onnxruntime(&at(&paths.onnxruntime))?;
    let detector = OrtDetector::new(&env, manifest, 1)?;
    xueliang_decode::init().context("initialising FFmpeg")?;
    Ok(Offline {
        config: loaded,
        geometry,
        detector,
    })
}
