//! `xueliang user ...`: accounts from the command line. The first admin is
//! made here (there is no default password); the password comes on standard
//! input, never as an argument (it would show in `ps` and shell history).

use anyhow::{bail, Context};
use clap::Subcommand;
use std::io::BufRead;
use std::process::ExitCode;
use xueliang_core::{Config, NewAuditEntry, NewUser, Role, UserPatch};
use xueliang_store::StoreError;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Make a user; reads the password from standard input (one line).
    Add {
        #[arg(long, short)]
        config: std::path::PathBuf,
        #[arg(long)]
        username: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: Role,
        /// A village the user may see (repeat for several; none: every village).
        #[arg(long = "village")]
        villages: Vec<String>,
        /// Read the password from standard input without a prompt (scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input); ends their sessions
    /// and revokes their API tokens.
    Passwd {
        #[arg(long, short)]
        config: std::path::PathBuf,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make an API token for a user (for integrations and tools); prints it
    /// once on standard output.
    Token {
        #[arg(long, short)]
        config: std::path::PathBuf,
        #[arg(long)]
        username: String,
        /// A name for people ("county platform").
        #[arg(long)]
        name: String,
        /// Days until it expires; without it, it lasts until revoked.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List users.
    List {
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
}

impl UserCommand {
    pub fn config_path(&self) -> &std::path::Path {
        match self {
            UserCommand::Add { config, .. }
            | UserCommand::Passwd { config, .. }
            | UserCommand::Token { config, .. }
            | UserCommand::List { config } => config,
        }
    }
}

pub fn run(command: UserCommand, config: &Config) -> ExitCode {
    crate::offline::block_on(execute(command, config))
}

fn read_password(prompt: bool) -> anyhow::Result<String> {
    if prompt {
        eprint!("password (input is shown; pipe it in with --password-stdin to hide it): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    xueliang_api::auth::check_password(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    Ok(password)
}

fn audit(action: &str, id: i64, detail: serde_json::Value) -> NewAuditEntry {
    crate::offline::audit(action, "user", id, detail)
}

async fn execute(command: UserCommand, config: &Config) -> anyhow::Result<()> {
    let store = crate::offline::open(config).await?;
    match command {
        UserCommand::Add {
            username,
            role,
            villages,
            password_stdin,
            ..
        } => {
            let password = read_password(!password_stdin)?;
            let password_hash = xueliang_api::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            let user = store
                .create_user(NewUser {
                    username,
                    password_hash,
                    role,
                    villages,
                })
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => anyhow::anyhow!("{m}"),
                    e => anyhow::Error::new(e),
                })?;
            let detail = serde_json::json!({ "username": user.username, "role": user.role, "villages": user.villages });
            store.audit(audit("user.create", user.id, detail)).await?;
            println!(
                "user {} ({}) created with id {}",
                user.username, user.role, user.id
            );
        }
        UserCommand::Passwd {
            username,
            password_stdin,
            ..
        } => {
            let Some((user, _)) = store.user_for_login(username.clone()).await? else {
                bail!("no user named \"{username}\"");
            };
            let password = read_password(!password_stdin)?;
            let password_hash = xueliang_api::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            let patch = UserPatch {
                password_hash: Some(password_hash),
                ..Default::default()
            };
            store.update_user(user.id, patch).await?;
            store
                .audit(audit(
                    "user.update",
                    user.id,
                    serde_json::json!({ "password_changed": true }),
                ))
                .await?;
            println!(
                "password of {} changed; their sessions ended and API tokens revoked",
                user.username
            );
        }
        UserCommand::Token {
            username,
            name,
            expires_in_days,
            ..
        } => {
            let Some((user, _)) = store.user_for_login(username.clone()).await? else {
                bail!("no user named \"{username}\"");
            };
            let (token, token_hash) = xueliang_api::auth::new_token();
            let info = store
                .insert_token(xueliang_store::NewToken {
                    user_id: user.id,
                    kind: xueliang_core::TokenKind::Api,
                    name,
                    token_hash,
                    expires_at: expires_in_days
                        .map(|d| chrono::Utc::now() + chrono::Duration::days(d.into())),
                })
                .await?;
            let detail = serde_json::json!({ "name": info.name });
            store
                .audit(crate::offline::audit(
                    "token.create",
                    "token",
                    info.id,
                    detail,
                ))
                .await?;
            println!("{token}");
        }
        UserCommand::List { .. } => {
            for u in store.list_users().await? {
                let scope = if u.villages.is_empty() {
                    "all villages".to_owned()
                } else {
                    u.villages.join(", ")
                };
                let state = if u.disabled { " (disabled)" } else { "" };
                println!("{}\t{}\t{}\t{scope}{state}", u.id, u.username, u.role);
            }
        }
    }
    Ok(())
}
