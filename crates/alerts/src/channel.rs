//! Channels: how a message reaches people (and superior platforms, as GB/T
//! 28181 alarms). Each is a [`Channel`]; errors say
//! whether trying again may help ([`ChannelError::is_retriable`]). Error texts
//! never carry a URL (WeCom keys and DingTalk tokens live in URLs) or a secret.

use crate::config::{ChannelConfig, ChannelKind};
use crate::message::AlertMessage;
use crate::sign::{dingtalk_sign, webhook_signature};
use futures::future::BoxFuture;
use futures::FutureExt;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use xueliang_core::gb_alarm::{alarm_code, AlarmSendError, GbAlarm, UpstreamAlarms};
use xueliang_core::Secret;

/// Header carrying the webhook's HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "X-Xueliang-Signature";
/// Header carrying the Unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Xueliang-Timestamp";
/// Header carrying the idempotency key (same key on every retry of a delivery).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{channel}: cannot reach the receiver: {message}")]
    Connect { channel: String, message: String },
    #[error("{channel}: no answer within {timeout:?}")]
    Timeout { channel: String, timeout: Duration },
    #[error("{channel}: HTTP {status}: {body}")]
    Status {
        channel: String,
        status: u16,
        body: String,
    },
    #[error("{channel}: the robot refused the message: errcode {code}: {message}")]
    Refused {
        channel: String,
        code: i64,
        message: String,
        retriable: bool,
    },
    #[error("{channel}: unexpected answer: {message}")]
    BadAnswer { channel: String, message: String },
    #[error("{channel}: MQTT: {message}")]
    Mqtt {
        channel: String,
        message: String,
        retriable: bool,
    },
    #[error("{channel}: {message}")]
    Unusable { channel: String, message: String },
    #[error("{channel}: GB/T 28181: {source}")]
    Gb28181 {
        channel: String,
        source: AlarmSendError,
    },
}

impl ChannelError {
    /// Whether a later attempt may succeed. Receivers that are down, slow,
    /// overloaded or rate limiting are retriable; a refused key, a bad request
    /// or a missing phone number are not.
    pub fn is_retriable(&self) -> bool {
        match self {
            ChannelError::Connect { .. } | ChannelError::Timeout { .. } => true,
            ChannelError::BadAnswer { .. } => true,
            ChannelError::Status { status, .. } => {
                matches!(status, 408 | 425 | 429) || *status >= 500
            }
            ChannelError::Refused { retriable, .. } | ChannelError::Mqtt { retriable, .. } => {
                *retriable
            }
            ChannelError::Unusable { .. } => false,
            ChannelError::Gb28181 { source, .. } => source.is_retriable(),
        }
    }
}

/// A way to send a message.
pub trait Channel: Send + Sync {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>>;
}

/// What channels send through besides their own configuration.
#[derive(Clone)]
pub struct Senders {
    pub http: reqwest::Client,
    /// The SIP side for `gb28181` channels (`None`: not running; their
    /// sends fail and are retried).
    pub upstream_alarms: Option<Arc<dyn UpstreamAlarms>>,
    /// The time zone of GB alarm times (`[detection] timezone`).
    pub tz: chrono_tz::Tz,
}

/// Makes the channel described by `cfg`.
pub fn build(cfg: &ChannelConfig, senders: &Senders) -> Box<dyn Channel> {
    let http = senders.http.clone();
    let name = cfg.name.clone();
    let timeout = cfg.timeout;
    match &cfg.kind {
        ChannelKind::Webhook { url, secret } => Box::new(Webhook {
            name,
            http,
            timeout,
            url: url.clone(),
            secret: secret.clone(),
        }),
        ChannelKind::WeCom { url, key } => Box::new(WeCom {
            name,
            http,
            timeout,
            url: url.clone(),
            key: key.clone(),
        }),
        ChannelKind::DingTalk {
            url,
            access_token,
            secret,
        } => Box::new(DingTalk {
            name,
            http,
            timeout,
            url: url.clone(),
            access_token: access_token.clone(),
            secret: secret.clone(),
        }),
        ChannelKind::Mqtt {
            host,
            port,
            topic_prefix,
            username,
            password,
        } => Box::new(Mqtt {
            name,
            timeout,
            host: host.clone(),
            port: *port,
            topic_prefix: topic_prefix.clone(),
            username: username.clone(),
            password: password.clone(),
        }),
        ChannelKind::Sms {
            url,
            method,
            content_type,
            headers,
            body,
            api_key,
        } => Box::new(Sms {
            name,
            http,
            timeout,
            url: url.clone(),
            method: method.clone(),
            content_type: content_type.clone(),
            headers: headers.clone(),
            body: body.clone(),
            api_key: api_key.clone(),
        }),
        ChannelKind::Gb28181 { upstream } => Box::new(GbAlarms {
            name,
            timeout,
            upstream: upstream.clone(),
            sender: senders.upstream_alarms.clone(),
            tz: senders.tz,
        }),
    }
}

fn request_error(channel: &str, timeout: Duration, e: reqwest::Error) -> ChannelError {
    if e.is_timeout() {
        return ChannelError::Timeout {
            channel: channel.to_owned(),
            timeout,
        };
    }
    // `without_url`: the URL may hold a robot key or token.
    let e = e.without_url();
    let mut message = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        message.push_str(&format!(": {s}"));
        src = s.source();
    }
    ChannelError::Connect {
        channel: channel.to_owned(),
        message,
    }
}

/// Sends, and maps the HTTP status; returns the body of a 2xx answer.
async fn send_http(
    channel: &str,
    timeout: Duration,
    req: reqwest::RequestBuilder,
) -> Result<Vec<u8>, ChannelError> {
    let resp = req
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| request_error(channel, timeout, e))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| request_error(channel, timeout, e))?;
    if !(200..300).contains(&status) {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(ChannelError::Status {
            channel: channel.to_owned(),
            status,
            body: text,
        });
    }
    Ok(body.to_vec())
}

// ---------------------------------------------------------------- webhook

struct Webhook {
    name: String,
    http: reqwest::Client,
    timeout: Duration,
    url: url::Url,
    secret: Option<Secret>,
}

impl Channel for Webhook {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>> {
        async move {
            let body = serde_json::to_vec(msg).map_err(|e| ChannelError::Unusable {
                channel: self.name.clone(),
                message: format!("cannot encode the message: {e}"),
            })?;
            let ts = chrono::Utc::now().timestamp();
            let mut req = self
                .http
                .post(self.url.clone())
                .header("Content-Type", "application/json")
                .header(IDEMPOTENCY_HEADER, &msg.idempotency_key)
                .header(TIMESTAMP_HEADER, ts.to_string());
            if let Some(s) = &self.secret {
                req = req.header(SIGNATURE_HEADER, webhook_signature(s.expose(), ts, &body));
            }
            send_http(&self.name, self.timeout, req.body(body))
                .await
                .map(drop)
        }
        .boxed()
    }
}

// ---------------------------------------------------------------- WeCom / DingTalk

/// Reads `{"errcode": 0, "errmsg": "ok"}`; `retriable_codes` are the robot's
/// "busy / too fast" answers.
fn robot_answer(channel: &str, body: &[u8], retriable_codes: &[i64]) -> Result<(), ChannelError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ChannelError::BadAnswer {
            channel: channel.to_owned(),
            message: format!("not JSON: {e}"),
        })?;
    let code =
        v.get("errcode")
            .and_then(|c| c.as_i64())
            .ok_or_else(|| ChannelError::BadAnswer {
                channel: channel.to_owned(),
                message: "no `errcode` in the answer".into(),
            })?;
    if code == 0 {
        return Ok(());
    }
    Err(ChannelError::Refused {
        channel: channel.to_owned(),
        code,
        message: v
            .get("errmsg")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect(),
        retriable: retriable_codes.contains(&code),
    })
}

/// A WeCom (企业微信) group robot: `POST <url>?key=<key>` with a `text`
/// message that @-mentions the officer by mobile number.
struct WeCom {
    name: String,
    http: reqwest::Client,
    timeout: Duration,
    url: url::Url,
    key: Secret,
}

/// WeCom: -1 system busy, 45009 API frequency limit.
const WECOM_RETRIABLE: &[i64] = &[-1, 45009];

impl Channel for WeCom {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>> {
        async move {
            let mut url = self.url.clone();
            url.query_pairs_mut().append_pair("key", self.key.expose());
            let mentions: Vec<&str> = msg
                .officer
                .as_ref()
                .and_then(|o| o.phone.as_deref())
                .into_iter()
                .collect();
            let body = serde_json::json!({
                "msgtype": "text",
                "text": { "content": msg.text, "mentioned_mobile_list": mentions },
            });
            let answer =
                send_http(&self.name, self.timeout, self.http.post(url).json(&body)).await?;
            robot_answer(&self.name, &answer, WECOM_RETRIABLE)
        }
        .boxed()
    }
}

/// A DingTalk (钉钉) group robot: `POST <url>?access_token=..&timestamp=..&sign=..`
/// (sign only with a secret, "加签") with a `markdown` message that @-mentions
/// the officer.
struct DingTalk {
    name: String,
    http: reqwest::Client,
    timeout: Duration,
    url: url::Url,
    access_token: Secret,
    secret: Option<Secret>,
}

/// DingTalk: -1 system busy, 130101 sending too fast.
const DINGTALK_RETRIABLE: &[i64] = &[-1, 130101];

impl Channel for DingTalk {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>> {
        async move {
            let mut url = self.url.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("access_token", self.access_token.expose());
                if let Some(s) = &self.secret {
                    let ts = chrono::Utc::now().timestamp_millis();
                    q.append_pair("timestamp", &ts.to_string());
                    // `append_pair` URL-encodes the base64 signature.
                    q.append_pair("sign", &dingtalk_sign(s.expose(), ts));
                }
            }
            let phone = msg.officer.as_ref().and_then(|o| o.phone.clone());
            let mut text = msg.markdown();
            if let Some(p) = &phone {
                text.push_str(&format!("\n@{p}"));
            }
            let body = serde_json::json!({
                "msgtype": "markdown",
                "markdown": { "title": msg.title, "text": text },
                "at": { "atMobiles": phone.into_iter().collect::<Vec<_>>(), "isAtAll": false },
            });
            let answer =
                send_http(&self.name, self.timeout, self.http.post(url).json(&body)).await?;
            robot_answer(&self.name, &answer, DINGTALK_RETRIABLE)
        }
        .boxed()
    }
}

// ---------------------------------------------------------------- SMS

/// An SMS gateway spoken to through an HTTP template: `{phone}`, `{text}`,
/// `{api_key}` and `{idempotency_key}` in the URL, headers and body are
/// replaced, escaped for where they stand (URL-encoded in the URL and in form
/// bodies, JSON-escaped in JSON bodies).
struct Sms {
    name: String,
    http: reqwest::Client,
    timeout: Duration,
    url: String,
    method: String,
    content_type: String,
    headers: BTreeMap<String, String>,
    body: String,
    api_key: Option<Secret>,
}

#[derive(Clone, Copy)]
enum Escape {
    Url,
    Json,
    None,
}

fn fill(template: &str, values: &[(&str, &str)], escape: Escape) -> String {
    let mut out = template.to_owned();
    for (k, v) in values {
        let v = match escape {
            Escape::Url => utf8_percent_encode(v, NON_ALPHANUMERIC).to_string(),
            Escape::Json => {
                let s = serde_json::to_string(v).unwrap_or_default();
                s.get(1..s.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_owned()
            }
            Escape::None => (*v).to_owned(),
        };
        out = out.replace(&format!("{{{k}}}"), &v);
    }
    out
}

impl Channel for Sms {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>> {
        async move {
            let Some(phone) = msg.officer.as_ref().and_then(|o| o.phone.clone()) else {
                return Err(ChannelError::Unusable {
                    channel: self.name.clone(),
                    message: "SMS needs an officer with a phone number".into(),
                });
            };
            let text = msg.sms_text();
            let key = self
                .api_key
                .as_ref()
                .map(|k| k.expose())
                .unwrap_or_default();
            let values = [
                ("phone", phone.as_str()),
                ("text", text.as_str()),
                ("api_key", key),
                ("idempotency_key", msg.idempotency_key.as_str()),
            ];
            let url = fill(&self.url, &values, Escape::Url);
            let url = url::Url::parse(&url).map_err(|e| ChannelError::Unusable {
                channel: self.name.clone(),
                message: format!("the URL template does not make a URL: {e}"),
            })?;
            let escape = if self.content_type.contains("json") {
                Escape::Json
            } else if self.content_type.contains("x-www-form-urlencoded") {
                Escape::Url
            } else {
                Escape::None
            };
            let method = reqwest::Method::from_bytes(self.method.as_bytes())
                .unwrap_or(reqwest::Method::POST);
            let mut req = self
                .http
                .request(method.clone(), url)
                .header(IDEMPOTENCY_HEADER, &msg.idempotency_key);
            for (k, v) in &self.headers {
                req = req.header(k, fill(v, &values, Escape::None));
            }
            if method != reqwest::Method::GET {
                req = req
                    .header("Content-Type", &self.content_type)
                    .body(fill(&self.body, &values, escape));
            }
            send_http(&self.name, self.timeout, req).await.map(drop)
        }
        .boxed()
    }
}

// ---------------------------------------------------------------- MQTT

/// MQTT 3.1.1 publish with QoS 1 to `<topic_prefix>/<village>/<camera>`: one
/// short session per message (CONNECT, PUBLISH, wait for PUBACK, DISCONNECT),
/// so an acknowledged attempt means the broker has the message.
struct Mqtt {
    name: String,
    timeout: Duration,
    host: String,
    port: u16,
    topic_prefix: String,
    username: Option<String>,
    password: Option<Secret>,
}

static MQTT_SESSION: AtomicU64 = AtomicU64::new(0);

/// A topic level from a name: `/`, `+`, `#` and control characters become `_`.
pub fn topic_level(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

impl Mqtt {
    async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), ChannelError> {
        use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS};
        let mqtt_err = |message: String, retriable: bool| ChannelError::Mqtt {
            channel: self.name.clone(),
            message,
            retriable,
        };
        let id = format!(
            "xueliang-{}-{}",
            std::process::id(),
            MQTT_SESSION.fetch_add(1, Ordering::Relaxed)
        );
        let mut opts = MqttOptions::new(id, self.host.clone(), self.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(true);
        opts.set_max_packet_size(256 * 1024, 256 * 1024);
        if let Some(u) = &self.username {
            let p = self
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            opts.set_credentials(u.clone(), p);
        }
        let (client, mut events) = AsyncClient::new(opts, 4);
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| mqtt_err(format!("cannot queue the publish: {e}"), true))?;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code != ConnectReturnCode::Success {
                        let retriable = matches!(ack.code, ConnectReturnCode::ServiceUnavailable);
                        return Err(mqtt_err(
                            format!("broker refused the connection: {:?}", ack.code),
                            retriable,
                        ));
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => break,
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                    let retriable = matches!(code, ConnectReturnCode::ServiceUnavailable);
                    return Err(mqtt_err(
                        format!("broker refused the connection: {code:?}"),
                        retriable,
                    ));
                }
                Err(e) => return Err(mqtt_err(format!("{e}"), true)),
            }
        }
        // Polite goodbye; the message is already acknowledged.
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
        Ok(())
    }
}

impl Channel for Mqtt {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>> {
        async move {
            let topic = format!(
                "{}/{}/{}",
                self.topic_prefix,
                topic_level(msg.camera.village.as_deref().unwrap_or("_")),
                topic_level(&msg.camera.id)
            );
            let payload = serde_json::to_vec(msg).map_err(|e| ChannelError::Unusable {
                channel: self.name.clone(),
                message: format!("cannot encode the message: {e}"),
            })?;
            match tokio::time::timeout(self.timeout, self.publish(topic, payload)).await {
                Ok(r) => r,
                Err(_) => Err(ChannelError::Timeout {
                    channel: self.name.clone(),
                    timeout: self.timeout,
                }),
            }
        }
        .boxed()
    }
}

// ---------------------------------------------------------------- GB/T 28181

/// Alarms to a superior platform (`MESSAGE Notify Alarm`): the event kind's
/// GB alarm code, the route's priority, the event's start in local time,
/// and the Chinese kind and camera name as the description.
struct GbAlarms {
    name: String,
    timeout: Duration,
    upstream: String,
    sender: Option<Arc<dyn UpstreamAlarms>>,
    tz: chrono_tz::Tz,
}

/// The alarm a message makes for `upstream`; `None` for kinds without one
/// (the configuration refuses to route those here).
pub fn gb_alarm(msg: &AlertMessage, upstream: &str, tz: chrono_tz::Tz) -> Option<GbAlarm> {
    Some(GbAlarm {
        upstream: upstream.to_owned(),
        camera_id: msg.camera.id.clone(),
        code: alarm_code(&msg.kind)?,
        priority: msg.alarm_priority,
        local_time: msg.started_at.with_timezone(&tz).naive_local(),
        description: if msg.camera.name.is_empty() {
            msg.kind_zh.clone()
        } else {
            format!("{} · {}", msg.kind_zh, msg.camera.name)
        },
    })
}

impl Channel for GbAlarms {
    fn send<'a>(&'a self, msg: &'a AlertMessage) -> BoxFuture<'a, Result<(), ChannelError>> {
        async move {
            let Some(sender) = &self.sender else {
                return Err(ChannelError::Connect {
                    channel: self.name.clone(),
                    message: "the GB/T 28181 SIP server is not running".into(),
                });
            };
            let Some(alarm) = gb_alarm(msg, &self.upstream, self.tz) else {
                return Err(ChannelError::Unusable {
                    channel: self.name.clone(),
                    message: format!("`{}` events are no GB/T 28181 alarm", msg.kind),
                });
            };
            match tokio::time::timeout(self.timeout, sender.send_alarm(&alarm)).await {
                Ok(r) => r.map_err(|source| ChannelError::Gb28181 {
                    channel: self.name.clone(),
                    source,
                }),
                Err(_) => Err(ChannelError::Timeout {
                    channel: self.name.clone(),
                    timeout: self.timeout,
                }),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_for_where_the_value_goes() {
        let v = [("text", "告警 \"a\"&b")];
        assert_eq!(
            fill("{\"m\":\"{text}\"}", &v, Escape::Json),
            "{\"m\":\"告警 \\\"a\\\"&b\"}"
        );
        assert_eq!(
            fill("m={text}", &v, Escape::Url),
            "m=%E5%91%8A%E8%AD%A6%20%22a%22%26b"
        );
    }

    #[test]
    fn topic_levels_cannot_inject_wildcards_or_levels() {
        assert_eq!(topic_level("a/b+#"), "a_b__");
        assert_eq!(topic_level(""), "_");
        assert_eq!(topic_level("东村"), "东村");
    }

    #[test]
    fn retriable_versus_permanent() {
        let s = |status| ChannelError::Status {
            channel: "c".into(),
            status,
            body: String::new(),
        };
        assert!(s(503).is_retriable());
        assert!(s(429).is_retriable());
        assert!(!s(400).is_retriable());
        assert!(!s(401).is_retriable());
        assert!(robot_answer(
            "c",
            br#"{"errcode":45009,"errmsg":"freq"}"#,
            WECOM_RETRIABLE
        )
        .unwrap_err()
        .is_retriable());
        assert!(!robot_answer(
            "c",
            br#"{"errcode":93000,"errmsg":"invalid"}"#,
            WECOM_RETRIABLE
        )
        .unwrap_err()
        .is_retriable());
        assert!(robot_answer("c", br#"{"errcode":0,"errmsg":"ok"}"#, WECOM_RETRIABLE).is_ok());
    }
}
