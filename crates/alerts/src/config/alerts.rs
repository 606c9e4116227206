//! `[alerts]`: the base of links in messages, the acknowledgement key,
//! delivery retries and concurrency, with its channels and routes.

use super::channels::{ChannelConfig, ChannelKind};
use super::error::{err, AlertConfigError};
use super::fields::{http_url, secret_from};
use super::organisation::Organisation;
use super::routes::Route;
use serde::Deserialize;
use xueliang_core::{RetryPolicy, Secret};

/// The random share of a delivery's retry delay: a quarter, so a receiver
/// that comes back is not hit by every waiting delivery at once, and retries
/// still come about when the operator expects them.
const DELIVERY_JITTER: f64 = 0.25;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    ack_key: Option<Secret>,
    #[serde(default)]
    ack_key_env: Option<String>,
    #[serde(default = "seven")]
    ack_link_days: u32,
    #[serde(default = "two")]
    retry_initial_s: f64,
    #[serde(default = "five_minutes")]
    retry_max_s: f64,
    #[serde(default = "twenty")]
    max_attempts: u32,
    #[serde(default = "eight")]
    concurrency: usize,
    #[serde(default)]
    routes: Vec<toml::Value>,
    #[serde(default)]
    channels: Vec<toml::Value>,
}

fn seven() -> u32 {
    7
}
fn two() -> f64 {
    2.0
}
fn five_minutes() -> f64 {
    300.0
}
fn twenty() -> u32 {
    20
}
fn eight() -> usize {
    8
}

/// `[alerts]` after validation.
#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// Base of the links in messages (`<public_url>/api/v1/events/12`).
    pub public_url: String,
    /// Key of the acknowledgement links' signatures.
    pub ack_key: Secret,
    /// How long an acknowledgement link works after its message is sent.
    pub ack_link_lifetime: chrono::Duration,
    /// Delays between attempts of a delivery: `retry_initial_s` doubling
    /// to `retry_max_s`, the last quarter random.
    pub retry: RetryPolicy,
    pub max_attempts: u32,
    pub concurrency: usize,
    pub routes: Vec<Route>,
    pub channels: Vec<ChannelConfig>,
}

impl AlertsConfig {
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Parses `[alerts]`; `default_public_url` is used when `public_url` is not
    /// given (the API's own address).
    pub fn parse(
        table: &toml::Table,
        org: &Organisation,
        default_public_url: &str,
    ) -> Result<AlertsConfig, AlertConfigError> {
        let raw = RawAlerts::deserialize(toml::Value::Table(table.clone()))
            .map_err(|e| AlertConfigError(format!("[alerts]: {}", e.message())))?;
        let public_url = match raw.public_url {
            Some(u) => http_url("[alerts]", "public_url", &u)?
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            None => default_public_url.trim_end_matches('/').to_owned(),
        };
        let ack_key = match secret_from("[alerts]", "ack_key", raw.ack_key, raw.ack_key_env)? {
            Some(k) if k.expose().len() < 16 => {
                return err("[alerts] field `ack_key`: use at least 16 characters");
            }
            Some(k) => k,
            // Links then stop working at restart; documented.
            None => Secret::new(random_key()),
        };
        if !(1..=365).contains(&raw.ack_link_days) {
            return err("[alerts] field `ack_link_days`: must be in 1..=365");
        }
        for (f, v) in [
            ("retry_initial_s", raw.retry_initial_s),
            ("retry_max_s", raw.retry_max_s),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return err(format!("[alerts] field `{f}`: must be > 0"));
            }
        }
        if raw.retry_max_s < raw.retry_initial_s {
            return err("[alerts] field `retry_max_s`: must be >= retry_initial_s");
        }
        if raw.max_attempts == 0 {
            return err("[alerts] field `max_attempts`: must be >= 1");
        }
        if !(1..=64).contains(&raw.concurrency) {
            return err("[alerts] field `concurrency`: must be in 1..=64");
        }
        let mut channels: Vec<ChannelConfig> = Vec::new();
        for (i, v) in raw.channels.into_iter().enumerate() {
            let c = ChannelConfig::parse(i, v)?;
            if channels.iter().any(|x| x.name == c.name) {
                return err(format!("[[alerts.channels]] `{}`: name used twice", c.name));
            }
            channels.push(c);
        }
        let find = |n: &str| channels.iter().find(|c| c.name == n);
        for o in &org.officers {
            for c in &o.channels {
                match find(c) {
                    None => {
                        return err(format!(
                            "[[organisation.officers]] `{}` field `channels`: no channel named `{c}` in [[alerts.channels]]",
                            o.id
                        ))
                    }
                    Some(ch) if matches!(ch.kind, ChannelKind::Gb28181 { .. }) => {
                        return err(format!(
                            "[[organisation.officers]] `{}` field `channels`: `{c}` is gb28181, which tells a superior platform, not a person; list it in a route's `channels`",
                            o.id
                        ))
                    }
                    Some(ch) if matches!(ch.kind, ChannelKind::Sms { .. }) && o.phone.is_none() => {
                        return err(format!(
                            "[[organisation.officers]] `{}`: channel `{c}` is SMS but the officer has no `phone`",
                            o.id
                        ))
                    }
                    _ => {}
                }
            }
        }
        let mut routes = Vec::new();
        for (i, v) in raw.routes.into_iter().enumerate() {
            routes.push(Route::parse(i, v, org, &channels)?);
        }
        Ok(AlertsConfig {
            public_url,
            ack_key,
            ack_link_lifetime: chrono::Duration::days(i64::from(raw.ack_link_days)),
            retry: RetryPolicy::new(
                std::time::Duration::from_secs_f64(raw.retry_initial_s),
                std::time::Duration::from_secs_f64(raw.retry_max_s),
            )
            .with_jitter(DELIVERY_JITTER),
            max_attempts: raw.max_attempts,
            concurrency: raw.concurrency,
            routes,
            channels,
        })
    }
}

fn random_key() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}
