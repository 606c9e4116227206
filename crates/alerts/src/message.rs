//! The alert message in Chinese, and the JSON payload of webhook and MQTT.

use crate::sign::ack_signature;
use serde::Serialize;
use xueliang_core::{CameraConfig, Event};
use xueliang_store::alerts::{Alert, Delivery, DeliveryLevel};

/// The Chinese name of an event kind; unknown kinds (added by later stages)
/// keep their name.
pub fn kind_zh(kind: &str, label: &str) -> String {
    let s = match kind {
        "object" => {
            return format!("发现{}", label_zh(label));
        }
        "camera_offline" => "摄像头离线",
        "camera_recovered" => "摄像头恢复在线",
        "video_frozen" => "画面冻结",
        "video_blocked" => "画面遮挡",
        "scene_changed" => "摄像头被移动",
        "intrusion" => "区域入侵",
        "loitering" => "人员徘徊",
        "crowd" => "人员聚集",
        "line_crossing" => "越线",
        "vehicle_dwell" => "车辆违停",
        "store_full" => "存储磁盘已满",
        other => other,
    };
    s.to_owned()
}

pub fn label_zh(label: &str) -> String {
    match label {
        "person" => "人员",
        "car" => "车辆",
        "truck" => "货车",
        "bus" => "客车",
        "motorcycle" => "摩托车",
        "bicycle" => "自行车",
        other => other,
    }
    .to_owned()
}

/// Everything a channel needs to say about one delivery.
#[derive(Clone, Debug, Serialize)]
pub struct AlertMessage {
    pub idempotency_key: String,
    pub alert_id: i64,
    pub event_id: i64,
    pub level: DeliveryLevel,
    pub kind: String,
    pub kind_zh: String,
    pub label: String,
    pub camera: CameraInfo,
    /// Events merged into this alert (flood control).
    pub count: i64,
    /// When the event started, RFC 3339 UTC.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The same in Beijing time, `YYYY-MM-DD HH:MM:SS`.
    pub local_time: String,
    pub event_url: String,
    pub snapshot_url: Option<String>,
    /// The event's video clip, when it was written before this delivery
    /// (clips are written after the event ends: escalations and late
    /// deliveries carry it, a first alert at the event's start does not).
    pub clip_url: Option<String>,
    pub officer: Option<OfficerInfo>,
    /// The acknowledgement link of the addressed officer (signed).
    pub ack_url: Option<String>,
    pub detail: Option<String>,
    /// Title line (Chinese).
    pub title: String,
    /// The whole message as plain Chinese text.
    pub text: String,
    /// `AlarmPriority` of a GB/T 28181 alarm (the route's `alarm_priority`);
    /// not in the JSON payload.
    #[serde(skip)]
    pub alarm_priority: u8,
}

#[derive(Clone, Debug, Serialize)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
    pub village: Option<String>,
    pub grid: Option<String>,
    pub location: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OfficerInfo {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
}

pub struct MessageInput<'a> {
    pub delivery: &'a Delivery,
    pub alert: &'a Alert,
    pub event: &'a Event,
    pub camera: Option<&'a CameraConfig>,
    pub officer: Option<OfficerInfo>,
    pub public_url: &'a str,
    pub ack_key: &'a str,
    /// When the acknowledgement link stops working (Unix seconds).
    pub ack_expires: i64,
    /// Minutes after which the alert escalated (for the escalation wording).
    pub escalated_after_min: Option<f64>,
    /// The time zone of `local_time` (`[detection] timezone`).
    pub tz: chrono_tz::Tz,
    /// The route's `alarm_priority` (GB/T 28181 alarms).
    pub alarm_priority: u8,
}

pub fn build(input: MessageInput<'_>) -> AlertMessage {
    let MessageInput {
        delivery,
        alert,
        event,
        camera,
        officer,
        public_url,
        ack_key,
        ack_expires,
        escalated_after_min,
        tz,
        alarm_priority,
    } = input;
    let camera = CameraInfo {
        id: event.camera_id.clone(),
        name: camera
            .map(|c| c.name.clone())
            .unwrap_or_else(|| event.camera_id.clone()),
        village: event
            .village
            .clone()
            .or_else(|| camera.and_then(|c| c.village.clone())),
        grid: event
            .grid
            .clone()
            .or_else(|| camera.and_then(|c| c.grid.clone())),
        location: camera.and_then(|c| c.location.clone()),
    };
    let kind = event.kind.as_str().to_owned();
    let kind_zh = kind_zh(&kind, &event.label);
    let local_time = local_time(event.started_at, tz);
    let event_url = format!("{public_url}/api/v1/events/{}", event.id);
    let snapshot_url = event
        .has_snapshot
        .then(|| format!("{public_url}/api/v1/events/{}/snapshot.jpg", event.id));
    let clip_url = event
        .clip
        .is_some()
        .then(|| format!("{public_url}/api/v1/events/{}/clip.mp4", event.id));
    let ack_officer = officer
        .as_ref()
        .map(|o| o.id.clone())
        .unwrap_or_else(|| "centre".into());
    let ack_url = Some(format!(
        "{public_url}/api/v1/alerts/{}/ack?officer={}&exp={ack_expires}&sig={}",
        alert.id,
        ack_officer,
        ack_signature(ack_key, alert.id, &ack_officer, ack_expires)
    ));
    let escalation = delivery.level == DeliveryLevel::Escalation;
    let title = if escalation {
        format!("【雪亮告警·升级】{kind_zh}")
    } else {
        format!("【雪亮告警】{kind_zh}")
    };
    let mut place = vec![];
    if let Some(v) = &camera.village {
        place.push(v.clone());
    }
    if let Some(g) = &camera.grid {
        place.push(g.clone());
    }
    if let Some(l) = &camera.location {
        place.push(l.clone());
    }
    let mut text = format!("{title}\n摄像头：{}", camera.name);
    if !place.is_empty() {
        text.push_str(&format!("（{}）", place.join("，")));
    }
    text.push_str(&format!("\n时间：{local_time}（{}）", zone_name(tz)));
    if alert.count > 1 {
        text.push_str(&format!(
            "\n次数：{} 次（同一摄像头同类告警已合并）",
            alert.count
        ));
    }
    if let Some(d) = &event.detail {
        text.push_str(&format!("\n详情：{d}"));
    }
    if escalation {
        match escalated_after_min {
            Some(m) => text.push_str(&format!("\n值班人员 {m} 分钟内未确认，已升级至带班领导")),
            None => text.push_str("\n值班人员未确认，已升级至带班领导"),
        }
    }
    text.push_str(&format!("\n事件：{event_url}"));
    if let Some(s) = &snapshot_url {
        text.push_str(&format!("\n截图：{s}"));
    }
    if let Some(c) = &clip_url {
        text.push_str(&format!("\n录像：{c}"));
    }
    if let Some(a) = &ack_url {
        text.push_str(&format!("\n确认收到：{a}"));
    }
    AlertMessage {
        idempotency_key: delivery.idempotency_key.clone(),
        alert_id: alert.id,
        event_id: event.id,
        level: delivery.level,
        kind,
        kind_zh,
        label: event.label.clone(),
        camera,
        count: alert.count,
        started_at: event.started_at,
        local_time,
        event_url,
        snapshot_url,
        clip_url,
        officer,
        ack_url,
        detail: event.detail.clone(),
        title,
        text,
        alarm_priority,
    }
}

impl AlertMessage {
    /// The message as Markdown (DingTalk).
    pub fn markdown(&self) -> String {
        let mut md = format!("### {}\n\n", self.title);
        for line in self.text.lines().skip(1) {
            if let Some((k, v)) = line.split_once('：') {
                if v.starts_with("http") {
                    md.push_str(&format!(
                        "- {k}：[{}]({v})\n",
                        if k == "确认收到" {
                            "点此确认"
                        } else {
                            "打开"
                        }
                    ));
                    continue;
                }
            }
            md.push_str(&format!("- {line}\n"));
        }
        if let Some(s) = &self.snapshot_url {
            md.push_str(&format!("\n![截图]({s})\n"));
        }
        md
    }

    /// A short text for SMS (no snapshot link; SMS gateways limit length).
    pub fn sms_text(&self) -> String {
        let mut s = format!("【雪亮】{}：{}", self.kind_zh, self.camera.name);
        if let Some(v) = &self.camera.village {
            s.push_str(&format!("（{v}）"));
        }
        s.push_str(&format!("，{}", self.local_time));
        if self.count > 1 {
            s.push_str(&format!("，共{}次", self.count));
        }
        if let Some(a) = &self.ack_url {
            s.push_str(&format!("。确认：{a}"));
        }
        s
    }
}

/// `at` as the site's local time, `2026-12-04 23:05:00`.
pub fn local_time(at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// How messages name the time zone: 北京时间 for China's, else its IANA name.
pub fn zone_name(tz: chrono_tz::Tz) -> &'static str {
    if tz == chrono_tz::Asia::Shanghai {
        "北京时间"
    } else {
        tz.name()
    }
}
