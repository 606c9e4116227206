//! `xueliang`: command-line entry point. Parsing and wiring only; every stage
//! lives in its own crate.

mod camera_cmd;
mod cluster;
mod migrate;
mod offline;
mod serve;
mod users;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use xueliang_core::Config;

#[derive(Parser)]
#[command(
    name = "xueliang",
    version,
    about = "雪亮 Xueliang: video analytics for a township's Sharp Eyes camera network"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, detection, storage and the API in one process.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// `text`: lines for people (coloured on a terminal only); `json`:
        /// one JSON object per line, for log collectors.
        #[arg(long, value_enum, default_value_t = serve::LogFormat::Text)]
        log_format: serve::LogFormat,
    },
    /// Validate a config file (and the model it names, and the cameras
    /// changed through the API if the database exists) and exit.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Manage the users of the API and dashboard (the first admin is made here).
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// See the cameras as `serve` would run them, and undo a change made
    /// through the API (when it keeps `serve` from starting).
    Camera {
        #[command(subcommand)]
        command: camera_cmd::CameraCommand,
    },
    /// Ask a node of a cluster to hand its cameras over to the others and
    /// stop (as SIGTERM does, from any machine that reaches the database).
    Drain {
        #[arg(long, short)]
        config: PathBuf,
        /// The node; default this config's `[cluster] node_id`.
        #[arg(long)]
        node: Option<String>,
    },
    /// Copy a site's SQLite database into an empty PostgreSQL database
    /// (events, pictures, clips, users, tokens, audit, alerts, cameras).
    /// Stop the service first.
    Migrate {
        /// The SQLite database: `sqlite://<file>`.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: `postgres://<user>@<host>/<database>`
        /// (the password in the URL or in `PGPASSWORD`).
        #[arg(long)]
        to: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = match &cli.command {
        Command::Serve { config, .. }
        | Command::CheckConfig { config }
        | Command::Drain { config, .. } => config,
        Command::User { command } => command.config_path(),
        Command::Camera { command } => command.config_path(),
        Command::Migrate { from, to } => return migrate::run(from, to),
    }
    .to_owned();
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xueliang: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::CheckConfig { .. } => check(&config, &path),
        Command::Serve { log_format, .. } => serve::run(config, &path, log_format),
        Command::User { command } => users::run(command, &config),
        Command::Camera { command } => camera_cmd::run(command, &config),
        Command::Drain { node, .. } => cluster::drain(&config, node),
        Command::Migrate { .. } => unreachable!("handled before the config is read"),
    }
}

fn check(config: &Config, path: &std::path::Path) -> ExitCode {
    let manifest = match xueliang_detect::Manifest::load(&config.detector.model)
        .and_then(|m| m.read_model().map(|_| m))
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("xueliang: [detector] model: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = config.check_labels(&manifest.labels) {
        eprintln!("xueliang: {e}");
        return ExitCode::from(2);
    }
    match camera_cmd::stored_refusals(config, path, &manifest.labels) {
        Ok(refusals) if refusals.is_empty() => {}
        Ok(refusals) => {
            for r in refusals {
                eprintln!("xueliang: {r}");
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("xueliang: {e:#}");
            return ExitCode::from(2);
        }
    }
    let lib = config.detector.onnxruntime_path();
    if !lib.is_file() {
        eprintln!(
            "xueliang: [detector] onnxruntime: {}",
            xueliang_detect::DetectError::RuntimeMissing { path: lib }
        );
        return ExitCode::from(2);
    }
    if let Err(e) = xueliang_alerts::AlertSetup::from_config(config) {
        eprintln!("xueliang: {e}");
        return ExitCode::from(2);
    }
    let enabled = config.cameras.iter().filter(|c| c.enabled).count();
    println!(
        "config OK: {} cameras ({} enabled)",
        config.cameras.len(),
        enabled
    );
    ExitCode::SUCCESS
}
