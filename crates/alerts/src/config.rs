//! `[organisation]` (villages, grids, officers, duty roster, duty leaders) and
//! `[alerts]` (routes, channels, delivery settings), parsed from the tables the
//! core config hands over and validated with messages that name the field.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use xueliang_core::schedule::{self, ScheduleWindow, Window};
use xueliang_core::{CameraConfig, RetryPolicy, Secret};

/// The random share of a delivery's retry delay: a quarter, so a receiver
/// that comes back is not hit by every waiting delivery at once, and retries
/// still come about when the operator expects them.
const DELIVERY_JITTER: f64 = 0.25;

/// A configuration mistake, naming the table, entry and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AlertConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, AlertConfigError> {
    Err(AlertConfigError(msg.into()))
}

// ---------------------------------------------------------------- organisation

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Village {
    pub name: String,
    #[serde(default)]
    pub grids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    /// Short id used by the roster and in acknowledgement links.
    pub id: String,
    pub name: String,
    /// Mobile number: SMS, and the @-mention in WeCom/DingTalk groups.
    #[serde(default)]
    pub phone: Option<String>,
    /// Names of `[[alerts.channels]]` that reach this officer.
    #[serde(default)]
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct RosterEntry {
    pub officer: String,
    /// Villages this entry covers (every grid in them).
    pub villages: Vec<String>,
    /// Grids this entry covers.
    pub grids: Vec<String>,
    /// When, in the configured time zone.
    #[serde(flatten)]
    pub shift: Window,
}

/// A `[[organisation.roster]]` or `[[organisation.duty_leaders]]` entry as
/// written: who, what they cover (roster only), and when (the fields of a
/// [`ScheduleWindow`], which cannot be flattened into a table that refuses
/// unknown fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuty {
    officer: String,
    #[serde(default)]
    villages: Vec<String>,
    #[serde(default)]
    grids: Vec<String>,
    #[serde(
        default = "schedule::every_day",
        deserialize_with = "schedule::days_text"
    )]
    days: String,
    #[serde(default = "schedule::midnight")]
    from: String,
    #[serde(default = "schedule::end_of_day")]
    to: String,
}

impl RawDuty {
    /// The entry's window; the message starts with `at` and names the field.
    fn shift(&self, at: &str) -> Result<Window, AlertConfigError> {
        Window::parse(&ScheduleWindow {
            days: self.days.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        })
        .map_err(|e| AlertConfigError(format!("{at} field {e}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    #[serde(default)]
    township: Option<String>,
    #[serde(default)]
    villages: Vec<toml::Value>,
    #[serde(default)]
    officers: Vec<toml::Value>,
    #[serde(default)]
    roster: Vec<toml::Value>,
    #[serde(default)]
    duty_leaders: Vec<toml::Value>,
}

/// Villages, grids, officers and who is on duty when.
#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct Organisation {
    pub township: Option<String>,
    pub villages: Vec<VillageView>,
    pub officers: Vec<Officer>,
    pub roster: Vec<RosterEntry>,
    /// The township's duty leaders (带班领导): the fallback when no officer
    /// covers a camera, and who an unacknowledged alert escalates to.
    pub duty_leaders: Vec<LeaderEntry>,
    /// The time zone of the roster and of messages (`[detection] timezone`).
    #[serde(skip)]
    pub tz: Tz,
}

#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct VillageView {
    pub name: String,
    pub grids: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct LeaderEntry {
    pub officer: String,
    #[serde(flatten)]
    pub shift: Window,
}

fn entry<T: serde::de::DeserializeOwned>(
    what: &str,
    i: usize,
    v: toml::Value,
) -> Result<T, AlertConfigError> {
    let name = v
        .get("id")
        .or_else(|| v.get("name"))
        .or_else(|| v.get("officer"))
        .and_then(|n| n.as_str())
        .map(|n| format!(" (`{n}`)"))
        .unwrap_or_default();
    T::deserialize(v)
        .map_err(|e| AlertConfigError(format!("{what} #{}{name}: {}", i + 1, e.message())))
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Organisation {
    /// Parses `[organisation]`; shifts are read in the time zone `tz`.
    pub fn parse(table: &toml::Table, tz: Tz) -> Result<Organisation, AlertConfigError> {
        let raw = RawOrganisation::deserialize(toml::Value::Table(table.clone()))
            .map_err(|e| AlertConfigError(format!("[organisation]: {}", e.message())))?;
        let mut org = Organisation {
            township: raw.township,
            villages: Vec::new(),
            officers: Vec::new(),
            roster: Vec::new(),
            duty_leaders: Vec::new(),
            tz,
        };
        for (i, v) in raw.villages.into_iter().enumerate() {
            let v: Village = entry("[[organisation.villages]]", i, v)?;
            if org.villages.iter().any(|o| o.name == v.name) {
                return err(format!(
                    "[[organisation.villages]] `{}`: listed twice",
                    v.name
                ));
            }
            org.villages.push(VillageView {
                name: v.name,
                grids: v.grids,
            });
        }
        for (i, v) in raw.officers.into_iter().enumerate() {
            let o: Officer = entry("[[organisation.officers]]", i, v)?;
            if !valid_id(&o.id) {
                return err(format!(
                    "[[organisation.officers]] #{} field `id`: \"{}\" must be 1-64 letters, digits, '-' or '_'",
                    i + 1,
                    o.id
                ));
            }
            if org.officers.iter().any(|x| x.id == o.id) {
                return err(format!(
                    "[[organisation.officers]] `{}`: id used twice",
                    o.id
                ));
            }
            if let Some(p) = &o.phone {
                if p.is_empty()
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
                {
                    return err(format!(
                        "[[organisation.officers]] `{}` field `phone`: \"{p}\" is not a phone number",
                        o.id
                    ));
                }
            }
            org.officers.push(o);
        }
        let known_village = |v: &str| org.villages.iter().any(|x| x.name == v);
        let known_grid = |g: &str| org.villages.iter().any(|x| x.grids.iter().any(|y| y == g));
        for (i, v) in raw.roster.into_iter().enumerate() {
            let r: RawDuty = entry("[[organisation.roster]]", i, v)?;
            let at = format!("[[organisation.roster]] #{} (`{}`)", i + 1, r.officer);
            if !org.officers.iter().any(|o| o.id == r.officer) {
                return err(format!(
                    "{at} field `officer`: no officer with id `{}`",
                    r.officer
                ));
            }
            if r.villages.is_empty() && r.grids.is_empty() {
                return err(format!(
                    "{at}: give `villages` or `grids` (what the officer covers)"
                ));
            }
            if let Some(v) = r.villages.iter().find(|v| !known_village(v)) {
                return err(format!(
                    "{at} field `villages`: `{v}` is not in [[organisation.villages]]"
                ));
            }
            if let Some(g) = r.grids.iter().find(|g| !known_grid(g)) {
                return err(format!(
                    "{at} field `grids`: `{g}` is not a grid of any village"
                ));
            }
            let shift = r.shift(&at)?;
            org.roster.push(RosterEntry {
                officer: r.officer,
                villages: r.villages,
                grids: r.grids,
                shift,
            });
        }
        for (i, v) in raw.duty_leaders.into_iter().enumerate() {
            let r: RawDuty = entry("[[organisation.duty_leaders]]", i, v)?;
            let at = format!("[[organisation.duty_leaders]] #{} (`{}`)", i + 1, r.officer);
            if !r.villages.is_empty() || !r.grids.is_empty() {
                return err(format!(
                    "{at}: duty leaders cover the whole township; remove `villages` and `grids`"
                ));
            }
            if !org.officers.iter().any(|o| o.id == r.officer) {
                return err(format!(
                    "{at} field `officer`: no officer with id `{}`",
                    r.officer
                ));
            }
            let shift = r.shift(&at)?;
            org.duty_leaders.push(LeaderEntry {
                officer: r.officer,
                shift,
            });
        }
        Ok(org)
    }

    /// Whether `shift` covers `at` in the organisation's time zone.
    pub fn covers(&self, shift: &Window, at: DateTime<Utc>) -> bool {
        shift.contains(at, self.tz)
    }

    pub fn officer(&self, id: &str) -> Option<&Officer> {
        self.officers.iter().find(|o| o.id == id)
    }

    /// What a user limited to `villages` may see: those villages with their
    /// grids, the roster entries covering them (trimmed to them), the duty
    /// leaders (they stand behind every village), and only the officers these
    /// name.
    pub fn scoped(&self, villages: &[String]) -> Organisation {
        let seen: Vec<VillageView> = self
            .villages
            .iter()
            .filter(|v| villages.contains(&v.name))
            .cloned()
            .collect();
        let grids: Vec<&String> = seen.iter().flat_map(|v| &v.grids).collect();
        let roster: Vec<RosterEntry> = self
            .roster
            .iter()
            .filter_map(|r| {
                let entry = RosterEntry {
                    villages: r
                        .villages
                        .iter()
                        .filter(|v| villages.contains(v))
                        .cloned()
                        .collect(),
                    grids: r
                        .grids
                        .iter()
                        .filter(|g| grids.contains(g))
                        .cloned()
                        .collect(),
                    ..r.clone()
                };
                (!entry.villages.is_empty() || !entry.grids.is_empty()).then_some(entry)
            })
            .collect();
        let named = |id: &str| {
            roster.iter().any(|r| r.officer == id)
                || self.duty_leaders.iter().any(|l| l.officer == id)
        };
        Organisation {
            township: self.township.clone(),
            officers: self
                .officers
                .iter()
                .filter(|o| named(&o.id))
                .cloned()
                .collect(),
            villages: seen,
            roster,
            duty_leaders: self.duty_leaders.clone(),
            tz: self.tz,
        }
    }

    /// The officers on duty at `at` for a camera: those whose roster covers its
    /// grid; if none, those covering its village.
    pub fn on_duty_for(
        &self,
        village: Option<&str>,
        grid: Option<&str>,
        at: DateTime<Utc>,
    ) -> Vec<&Officer> {
        let pick = |f: &dyn Fn(&RosterEntry) -> bool| -> Vec<&Officer> {
            let mut ids: Vec<&str> = Vec::new();
            for r in &self.roster {
                if f(r) && self.covers(&r.shift, at) && !ids.contains(&r.officer.as_str()) {
                    ids.push(&r.officer);
                }
            }
            ids.into_iter().filter_map(|id| self.officer(id)).collect()
        };
        if let Some(g) = grid {
            let by_grid = pick(&|r| r.grids.iter().any(|x| x == g));
            if !by_grid.is_empty() {
                return by_grid;
            }
        }
        match village {
            Some(v) => pick(&|r| r.villages.iter().any(|x| x == v)),
            None => Vec::new(),
        }
    }

    /// The duty leaders on duty at `at`.
    pub fn leaders_at(&self, at: DateTime<Utc>) -> Vec<&Officer> {
        let mut out: Vec<&Officer> = Vec::new();
        for l in &self.duty_leaders {
            if self.covers(&l.shift, at) {
                if let Some(o) = self.officer(&l.officer) {
                    if !out.iter().any(|x| x.id == o.id) {
                        out.push(o);
                    }
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------- alerts

/// Which events alert whom.
#[derive(Clone, Debug)]
pub struct Route {
    /// Event kind names; `*` matches every kind.
    pub kinds: Vec<String>,
    /// For `object` events: labels; empty = any.
    pub labels: Vec<String>,
    /// Only cameras of these villages; empty = all.
    pub villages: Vec<String>,
    /// Tell the on-duty officer of the camera's grid or village (else the duty leader).
    pub notify_on_duty: bool,
    /// Channels told about every matching alert (e.g. the centre's MQTT broker).
    pub channels: Vec<String>,
    /// Escalate to the duty leader when nobody acknowledges within this long.
    pub escalate_after: Option<chrono::Duration>,
    /// The same camera and rule within this long is merged into one alert.
    pub flood_window: chrono::Duration,
}

impl Route {
    pub fn matches(&self, kind: &str, label: &str, village: Option<&str>) -> bool {
        (self.kinds.iter().any(|k| k == "*" || k == kind))
            && (kind != "object"
                || self.labels.is_empty()
                || self.labels.iter().any(|l| l == label))
            && (self.villages.is_empty()
                || village.is_some_and(|v| self.villages.iter().any(|x| x == v)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    kinds: Vec<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    villages: Vec<String>,
    #[serde(default = "yes")]
    notify_on_duty: bool,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    escalate_after_min: f64,
    #[serde(default = "five")]
    flood_window_min: f64,
}

fn yes() -> bool {
    true
}
fn five() -> f64 {
    5.0
}

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
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::WeCom { .. } => "wecom",
            ChannelKind::DingTalk { .. } => "dingtalk",
            ChannelKind::Mqtt { .. } => "mqtt",
            ChannelKind::Sms { .. } => "sms",
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
        _ => return None,
    })
}

fn secret_from(
    at: &str,
    field: &str,
    value: Option<Secret>,
    env: Option<String>,
) -> Result<Option<Secret>, AlertConfigError> {
    match (value, env) {
        (Some(_), Some(_)) => err(format!("{at}: give `{field}` or `{field}_env`, not both")),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => err(format!(
                "{at} field `{field}_env`: environment variable `{var}` is not set"
            )),
        },
        (None, None) => Ok(None),
    }
}

fn http_url(at: &str, field: &str, s: &str) -> Result<url::Url, AlertConfigError> {
    let u =
        url::Url::parse(s).map_err(|e| AlertConfigError(format!("{at} field `{field}`: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return err(format!(
            "{at} field `{field}`: must be an http:// or https:// URL"
        ));
    }
    Ok(u)
}

impl ChannelConfig {
    fn parse(i: usize, v: toml::Value) -> Result<ChannelConfig, AlertConfigError> {
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
                "{at} field `type`: unknown channel type `{}` (known: webhook, wecom, dingtalk, mqtt, sms)",
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
            let r: RawRoute = entry("[[alerts.routes]]", i, v)?;
            let at = format!("[[alerts.routes]] #{}", i + 1);
            if r.kinds.is_empty() {
                return err(format!(
                    "{at} field `kinds`: list at least one event kind (or \"*\")"
                ));
            }
            if let Some(k) = r.kinds.iter().find(|k| *k != "*" && !valid_kind(k)) {
                return err(format!(
                    "{at} field `kinds`: \"{k}\" is not an event kind name (snake_case)"
                ));
            }
            if let Some(v) = r
                .villages
                .iter()
                .find(|v| !org.villages.iter().any(|x| &x.name == *v))
            {
                return err(format!(
                    "{at} field `villages`: `{v}` is not in [[organisation.villages]]"
                ));
            }
            for c in &r.channels {
                match find(c) {
                    None => return err(format!("{at} field `channels`: no channel named `{c}` in [[alerts.channels]]")),
                    Some(ch) if matches!(ch.kind, ChannelKind::Sms { .. }) => {
                        return err(format!(
                            "{at} field `channels`: `{c}` is SMS, which needs an officer's phone; list it in an officer's `channels`"
                        ))
                    }
                    _ => {}
                }
            }
            if !r.notify_on_duty && r.channels.is_empty() {
                return err(format!(
                    "{at}: tells nobody (notify_on_duty = false and no `channels`)"
                ));
            }
            if !(r.escalate_after_min >= 0.0 && r.escalate_after_min.is_finite()) {
                return err(format!("{at} field `escalate_after_min`: must be >= 0"));
            }
            if r.escalate_after_min > 0.0 && org.duty_leaders.is_empty() {
                return err(format!(
                    "{at} field `escalate_after_min`: escalation needs [[organisation.duty_leaders]]"
                ));
            }
            if !(r.flood_window_min >= 0.0 && r.flood_window_min.is_finite()) {
                return err(format!("{at} field `flood_window_min`: must be >= 0"));
            }
            let minutes = |m: f64| chrono::Duration::milliseconds((m * 60_000.0).round() as i64);
            routes.push(Route {
                kinds: r.kinds,
                labels: r.labels,
                villages: r.villages,
                notify_on_duty: r.notify_on_duty,
                channels: r.channels,
                escalate_after: (r.escalate_after_min > 0.0).then(|| minutes(r.escalate_after_min)),
                flood_window: minutes(r.flood_window_min),
            });
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

fn valid_kind(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn random_key() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// Both tables, checked against the cameras (their villages and grids must be
/// in the organisation when it lists villages).
#[derive(Clone, Debug)]
pub struct AlertSetup {
    pub organisation: Organisation,
    pub alerts: AlertsConfig,
}

impl AlertSetup {
    pub fn from_config(config: &xueliang_core::Config) -> Result<AlertSetup, AlertConfigError> {
        let org = Organisation::parse(&config.organisation, config.detection.tz())?;
        let default_url = format!("http://{}", config.server.listen);
        let alerts = AlertsConfig::parse(&config.alerts, &org, &default_url)?;
        check_cameras(&org, &config.cameras)?;
        Ok(AlertSetup {
            organisation: org,
            alerts,
        })
    }
}

fn check_cameras(org: &Organisation, cameras: &[CameraConfig]) -> Result<(), AlertConfigError> {
    if org.villages.is_empty() {
        return Ok(());
    }
    let villages: BTreeSet<&str> = org.villages.iter().map(|v| v.name.as_str()).collect();
    for c in cameras {
        if let Some(v) = &c.village {
            if !villages.contains(v.as_str()) {
                return err(format!(
                    "camera `{}` field `village`: `{v}` is not in [[organisation.villages]]",
                    c.id
                ));
            }
            if let Some(g) = &c.grid {
                let ok = org
                    .villages
                    .iter()
                    .any(|x| &x.name == v && x.grids.iter().any(|y| y == g));
                if !ok {
                    return err(format!(
                        "camera `{}` field `grid`: `{g}` is not a grid of village `{v}` in [[organisation.villages]]",
                        c.id
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ORG: &str = r#"
[[villages]]
name = "东村"
grids = ["一网格", "二网格"]

[[officers]]
id = "day"
name = "白班"
phone = "13800000001"

[[officers]]
id = "night"
name = "夜班"

[[officers]]
id = "grid1"
name = "网格员"

[[officers]]
id = "boss"
name = "带班领导"

[[roster]]
officer = "day"
villages = ["东村"]
from = "08:00"
to = "20:00"

[[roster]]
officer = "night"
villages = ["东村"]
from = "20:00"
to = "08:00"

[[roster]]
officer = "grid1"
grids = ["一网格"]
days = "mon-fri"

[[duty_leaders]]
officer = "boss"
"#;

    fn org() -> Organisation {
        org_in(chrono_tz::Asia::Shanghai)
    }

    fn org_in(tz: Tz) -> Organisation {
        Organisation::parse(&ORG.parse::<toml::Table>().unwrap(), tz).unwrap()
    }

    /// A Beijing local time.
    fn bj(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        local(chrono_tz::Asia::Shanghai, d, h, m)
    }

    /// A local time in May 2024 (2024-05-01 is a Wednesday).
    fn local(tz: Tz, d: u32, h: u32, m: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(2024, 5, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ids(v: Vec<&Officer>) -> Vec<&str> {
        v.into_iter().map(|o| o.id.as_str()).collect()
    }

    #[test]
    fn the_grid_officer_comes_first_then_the_village_roster_by_beijing_time() {
        let o = org();
        // 2024-05-01 is a Wednesday.
        assert_eq!(
            ids(o.on_duty_for(Some("东村"), Some("一网格"), bj(1, 10, 0))),
            ["grid1"]
        );
        // Saturday: the grid officer is off; the village's day shift.
        assert_eq!(
            ids(o.on_duty_for(Some("东村"), Some("一网格"), bj(4, 10, 0))),
            ["day"]
        );
        assert_eq!(
            ids(o.on_duty_for(Some("东村"), Some("二网格"), bj(1, 19, 59))),
            ["day"]
        );
        // The night shift runs past midnight.
        assert_eq!(
            ids(o.on_duty_for(Some("东村"), None, bj(1, 20, 0))),
            ["night"]
        );
        assert_eq!(
            ids(o.on_duty_for(Some("东村"), None, bj(2, 3, 0))),
            ["night"]
        );
        assert_eq!(ids(o.on_duty_for(Some("东村"), None, bj(2, 8, 0))), ["day"]);
        assert!(o.on_duty_for(Some("西村"), None, bj(1, 10, 0)).is_empty());
        assert_eq!(ids(o.leaders_at(bj(2, 3, 0))), ["boss"]);
    }

    #[test]
    fn the_roster_reads_shifts_in_the_configured_time_zone() {
        // Xinjiang's local time (UTC+6): 23:00 on Wednesday is 01:00 Thursday
        // in Beijing. A hard-coded UTC+8 would pick the wrong shift.
        let o = org_in(chrono_tz::Asia::Urumqi);
        let at = local(chrono_tz::Asia::Urumqi, 1, 23, 0);
        assert_eq!(ids(o.on_duty_for(Some("东村"), None, at)), ["night"]);
        // 07:00 is still the night shift (it ends at 08:00 local) ...
        let at = local(chrono_tz::Asia::Urumqi, 2, 7, 0);
        assert_eq!(ids(o.on_duty_for(Some("东村"), None, at)), ["night"]);
        // ... although it is 09:00 in Beijing, the day shift there.
        assert_eq!(ids(org().on_duty_for(Some("东村"), None, at)), ["day"]);
        // A site on UTC: Friday 23:30 is Saturday in Beijing, where the grid
        // officer (mon-fri, all day) is off; here it is still Friday.
        let o = org_in(chrono_tz::UTC);
        let at = local(chrono_tz::UTC, 3, 23, 30);
        assert_eq!(
            ids(o.on_duty_for(Some("东村"), Some("一网格"), at)),
            ["grid1"]
        );
        assert_eq!(
            ids(org().on_duty_for(Some("东村"), Some("一网格"), at)),
            ["night"]
        );
    }

    #[test]
    fn a_list_of_days_names_the_field_and_the_string_to_write() {
        let e = org_err((
            "days = \"mon-fri\"",
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
        ));
        assert!(
            e.contains("roster")
                && e.contains("grid1")
                && e.contains("`days`")
                && e.contains("write days = \"mon-fri\""),
            "{e}"
        );
        let e = org_err(("days = \"mon-fri\"", "days = \"weekdays\""));
        assert!(e.contains("`days`") && e.contains("weekdays"), "{e}");
        let e = org_err((
            "officer = \"boss\"",
            "officer = \"boss\"\nvillages = [\"东村\"]",
        ));
        assert!(e.contains("duty_leaders") && e.contains("villages"), "{e}");
    }

    #[test]
    fn shifts_show_in_the_configuration_spelling() {
        let v = serde_json::to_value(org()).unwrap();
        let grid1 = &v["roster"][2];
        assert_eq!(
            (&grid1["days"], &grid1["from"], &grid1["to"]),
            (
                &serde_json::json!("mon-fri"),
                &serde_json::json!("00:00"),
                &serde_json::json!("24:00")
            )
        );
        assert_eq!(v["roster"][1]["from"], "20:00");
    }

    fn org_err(replace: (&str, &str)) -> String {
        let text = ORG.replace(replace.0, replace.1);
        Organisation::parse(
            &text.parse::<toml::Table>().unwrap(),
            chrono_tz::Asia::Shanghai,
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn mistakes_are_named() {
        let e = org_err(("officer = \"night\"", "officer = \"nobody\""));
        assert!(
            e.contains("roster") && e.contains("nobody") && e.contains("officer"),
            "{e}"
        );
        let e = org_err(("to = \"08:00\"", "to = \"8am\""));
        assert!(e.contains("`to`") && e.contains("8am"), "{e}");
        let e = org_err(("grids = [\"一网格\"]\ndays", "grids = [\"三网格\"]\ndays"));
        assert!(e.contains("三网格"), "{e}");
        let e = org_err(("phone = \"13800000001\"", "phone = \"1380\"\nemail = \"x\""));
        assert!(e.contains("email") && e.contains("day"), "{e}");

        let org = org();
        let alerts = |t: &str| {
            AlertsConfig::parse(
                &t.parse::<toml::Table>().unwrap(),
                &org,
                "http://127.0.0.1:8080",
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        let e = alerts(
            "[[channels]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"http://x\"\nkey = \"k\"\n",
        );
        assert!(e.contains("`key`") && e.contains("webhook"), "{e}");
        let e = alerts("[[channels]]\nname = \"h\"\ntype = \"pager\"\n");
        assert!(e.contains("pager"), "{e}");
        let e = alerts("[[routes]]\nkinds = [\"crowd\"]\nchannels = [\"nope\"]\n");
        assert!(e.contains("routes") && e.contains("nope"), "{e}");
        let e = alerts(
            "[[channels]]\nname = \"w\"\ntype = \"wecom\"\nkey_env = \"XL_TEST_UNSET_VARIABLE\"\n",
        );
        assert!(e.contains("XL_TEST_UNSET_VARIABLE"), "{e}");
        let e = alerts("retry_initail_s = 1\n");
        assert!(e.contains("retry_initail_s"), "{e}");
    }
}
