//! `[[alerts.channels]]`: webhook, WeCom and DingTalk group robots, MQTT and
//! SMS gateways, each with the fields its type takes, its secrets, rate and
//! timeout.

use super::error::{err, AlertConfigError};
use super::fields::{entry, http_url, secret_from, valid_id};
use serde::Deserialize;
use std::collections::BTreeMap;
use xueliang_core::Secret;

/// A channel and how to reach it.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub name: String,
    /// Messages per minute at most (0: no limit); more wait their turn.
    pub rate_per_min: u32,
    /// Limit for one request.
    pub timeout: std::time::Duration,
    pub kind: ChannelKind,
}

#[derive(Clone, Debug)]
pub enum ChannelKind {
    Webhook {
        url: url::Url,
        secret: Option<Secret>,
    },
    WeCom {
        url: url::Url,
        key: Secret,
    },
    DingTalk {
        url: url::Url,
        access_token: Secret,
        secret: Option<Secret>,
    },
    Mqtt {
        host: String,
        port: u16,
        topic_prefix: String,
        username: Option<String>,
        password: Option<Secret>,
    },
    Sms {
        url: String,
        method: String,
        content_type: String,
        headers: BTreeMap<String, String>,
        body: String,
        api_key: Option<Secret>,
    },
    /// GB/T 28181 alarms (`MESSAGE Notify Alarm`) to a superior platform.
    Gb28181 {
        /// The `id` of a `[[gb28181.upstream]]`.
        upstream: String,
    },
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::WeCom { .. } => "wecom",
            ChannelKind::DingTalk { .. } => "dingtalk",
            ChannelKind::Mqtt { .. } => "mqtt",
            ChannelKind::Sms { .. } => "sms",
            ChannelKind::Gb28181 { .. } => "gb28181",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    rate_per_min: Option<u32>,
    #[serde(default = "ten")]
    timeout_s: f64,
    url: Option<String>,
    secret: Option<Secret>,
    secret_env: Option<String>,
    key: Option<Secret>,
    key_env: Option<String>,
    access_token: Option<Secret>,
    access_token_env: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    topic_prefix: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    password_env: Option<String>,
    method: Option<String>,
    content_type: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    api_key: Option<Secret>,
    api_key_env: Option<String>,
    upstream: Option<String>,
}

fn ten() -> f64 {
    10.0
}

/// The fields each channel type takes (besides name, type, rate_per_min, timeout_s).
fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "webhook" => &["url", "secret", "secret_env"],
        "wecom" => &["url", "key", "key_env"],
        "dingtalk" => &[
            "url",
            "access_token",
            "access_token_env",
            "secret",
            "secret_env",
        ],
        "mqtt" => &[
            "host",
            "port",
            "topic_prefix",
            "username",
            "password",
            "password_env",
        ],
        "sms" => &[
            "url",
            "method",
            "content_type",
            "headers",
            "body",
            "api_key",
            "api_key_env",
        ],
        "gb28181" => &["upstream"],
        _ => return None,
    })
}

impl ChannelConfig {
    /// Reads `[[alerts.channels]]` entry `i` (counted from 0).
    pub(super) fn parse(i: usize, v: toml::Value) -> Result<ChannelConfig, AlertConfigError> {
        let present: Vec<String> = v
            .as_table()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let r: RawChannel = entry("[[alerts.channels]]", i, v)?;
        let at = format!("[[alerts.channels]] `{}`", r.name);
        if !valid_id(&r.name) {
            return err(format!(
                "{at} field `name`: must be 1-64 letters, digits, '-' or '_'"
            ));
        }
        let Some(allowed) = allowed_fields(&r.kind) else {
            return err(format!(
                "{at} field `type`: unknown channel type `{}` (known: webhook, wecom, dingtalk, mqtt, sms, gb28181)",
                r.kind
            ));
        };
        let common = ["name", "type", "rate_per_min", "timeout_s"];
        if let Some(f) = present
            .iter()
            .find(|f| !common.contains(&f.as_str()) && !allowed.contains(&f.as_str()))
        {
            return err(format!(
                "{at}: field `{f}` does not apply to type `{}` (it takes: {})",
                r.kind,
                allowed.join(", ")
            ));
        }
        if !(r.timeout_s > 0.0 && r.timeout_s <= 300.0) {
            return err(format!("{at} field `timeout_s`: must be in (0, 300]"));
        }
        let need_url = |default: Option<&str>| -> Result<url::Url, AlertConfigError> {
            match r.url.as_deref().or(default) {
                Some(u) => http_url(&at, "url", u),
                None => err(format!("{at}: field `url` is required")),
            }
        };
        let (kind, default_rate) = match r.kind.as_str() {
            "webhook" => (
                ChannelKind::Webhook {
                    url: need_url(None)?,
                    secret: secret_from(&at, "secret", r.secret.clone(), r.secret_env.clone())?,
                },
                0,
            ),
            "wecom" => (
                ChannelKind::WeCom {
                    url: need_url(Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send"))?,
                    key: secret_from(&at, "key", r.key.clone(), r.key_env.clone())?
                        .ok_or_else(|| AlertConfigError(format!("{at}: field `key` (or `key_env`) is required: the robot's webhook key")))?,
                },
                20,
            ),
            "dingtalk" => (
                ChannelKind::DingTalk {
                    url: need_url(Some("https://oapi.dingtalk.com/robot/send"))?,
                    access_token: secret_from(&at, "access_token", r.access_token.clone(), r.access_token_env.clone())?
                        .ok_or_else(|| AlertConfigError(format!("{at}: field `access_token` (or `access_token_env`) is required")))?,
                    secret: secret_from(&at, "secret", r.secret.clone(), r.secret_env.clone())?,
                },
                20,
            ),
            "mqtt" => {
                let prefix = r.topic_prefix.clone().unwrap_or_else(|| "xueliang/alerts".into());
                if prefix.is_empty() || prefix.contains(['+', '#']) {
                    return err(format!("{at} field `topic_prefix`: must be non-empty without '+' or '#'"));
                }
                (
                    ChannelKind::Mqtt {
                        host: r.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                        port: r.port.unwrap_or(1883),
                        topic_prefix: prefix.trim_end_matches('/').to_owned(),
                        username: r.username.clone(),
                        password: secret_from(&at, "password", r.password.clone(), r.password_env.clone())?,
                    },
                    0,
                )
            }
            "gb28181" => (
                ChannelKind::Gb28181 {
                    upstream: r.upstream.clone().ok_or_else(|| AlertConfigError(format!(
                        "{at}: field `upstream` is required: the `id` of a [[gb28181.upstream]]"
                    )))?,
                },
                0,
            ),
            _ => {
                let url = r.url.clone().ok_or_else(|| AlertConfigError(format!("{at}: field `url` is required")))?;
                http_url(&at, "url", &url.replace(['{', '}'], ""))?;
                let method = r.method.clone().unwrap_or_else(|| "POST".into()).to_ascii_uppercase();
                if !["GET", "POST", "PUT"].contains(&method.as_str()) {
                    return err(format!("{at} field `method`: must be GET, POST or PUT"));
                }
                let body = r.body.clone().unwrap_or_default();
                if method != "GET" && !body.contains("{text}") && !url.contains("{text}") {
                    return err(format!("{at} field `body`: must contain {{text}} (the message)"));
                }
                (
                    ChannelKind::Sms {
                        url,
                        method,
                        content_type: r.content_type.clone().unwrap_or_else(|| "application/json".into()),
                        headers: r.headers.clone(),
                        body,
                        api_key: secret_from(&at, "api_key", r.api_key.clone(), r.api_key_env.clone())?,
                    },
                    0,
                )
            }
        };
        Ok(ChannelConfig {
            name: r.name,
            rate_per_min: r.rate_per_min.unwrap_or(default_rate),
            timeout: std::time::Duration::from_secs_f64(r.timeout_s),
            kind,
        })
    }
}
