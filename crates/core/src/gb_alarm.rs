//! GB/T 28181 alarms upward (cascade, `MESSAGE Notify Alarm`): which alarm
//! each event kind is ([`alarm_code`]), the alarm as the alert channel hands
//! it over ([`GbAlarm`]), and the seam it goes through ([`UpstreamAlarms`]):
//! the alerts crate sends, the SIP crate delivers to a registered superior.

use futures::future::BoxFuture;

/// How GB/T 28181-2016 (A.2.5, Notify Alarm) classifies an alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmCode {
    /// `AlarmMethod`: 2 device alarm (设备报警), 5 video alarm (视频报警).
    pub method: u8,
    /// `AlarmType` within the method.
    pub alarm_type: u8,
    /// `AlarmTypeParam/EventType` (intrusion: 1 entering the zone).
    pub event_type: Option<u8>,
}

/// Device alarm (报警方式 2).
pub const METHOD_DEVICE: u8 = 2;
/// Video alarm (报警方式 5).
pub const METHOD_VIDEO: u8 = 5;

const fn video(alarm_type: u8) -> AlarmCode {
    AlarmCode {
        method: METHOD_VIDEO,
        alarm_type,
        event_type: None,
    }
}

const fn device(alarm_type: u8) -> AlarmCode {
    AlarmCode {
        method: METHOD_DEVICE,
        alarm_type,
        event_type: None,
    }
}

/// The GB alarm of an event kind; `None` for kinds that are no alarm
/// (`camera_recovered`: the end of one) or unknown kinds.
///
/// Video alarm types (method 5): 2 运动目标检测, 3 遗留物检测, 5 绊线检测,
/// 6 入侵检测, 8 徘徊检测, 10 密度检测, 11 视频异常检测. Device alarm types
/// (method 2): 1 视频丢失, 3 存储设备磁盘满. Why each (vehicle dwell as a
/// left object, object as a moving target) is in design/gb28181.md.
pub fn alarm_code(kind: &str) -> Option<AlarmCode> {
    Some(match kind {
        "intrusion" => AlarmCode {
            event_type: Some(1),
            ..video(6)
        },
        "line_crossing" => video(5),
        "loitering" => video(8),
        "crowd" => video(10),
        "vehicle_dwell" => video(3),
        "object" => video(2),
        "video_blocked" | "video_frozen" | "scene_changed" => video(11),
        "camera_offline" => device(1),
        "store_full" => device(3),
        _ => return None,
    })
}

/// `AlarmPriority`: 1 (一级警情, the most urgent) to 4 (四级警情).
pub const PRIORITIES: std::ops::RangeInclusive<u8> = 1..=4;

/// One alarm for one superior platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GbAlarm {
    /// The superior platform's id (`[[gb28181.upstream]]` `id`).
    pub upstream: String,
    /// The camera the event is about; empty for the platform itself
    /// (`store_full`), which is then named by our own id.
    pub camera_id: String,
    pub code: AlarmCode,
    /// 1..=4, see [`PRIORITIES`].
    pub priority: u8,
    /// When the event started, in the configured time zone.
    pub local_time: chrono::NaiveDateTime,
    /// `AlarmDescription`, in Chinese.
    pub description: String,
}

/// Why an alarm did not reach the superior.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlarmSendError {
    #[error("no superior platform with id {0} ([[gb28181.upstream]])")]
    UnknownUpstream(String),
    #[error("camera `{camera}` is not shared with superior platform {upstream}")]
    NotShared { upstream: String, camera: String },
    #[error("not registered to superior platform {upstream} ({state})")]
    NotRegistered { upstream: String, state: String },
    #[error("superior platform {upstream}: {reason}")]
    Failed { upstream: String, reason: String },
    /// The superior subscribed to alarms (SUBSCRIBE Alarm) and its
    /// conditions leave this one out: it is not sent to it.
    #[error("superior platform {upstream} did not subscribe to this alarm: {why}")]
    NotSubscribed { upstream: String, why: String },
}

impl AlarmSendError {
    /// The superior down, refusing for now, or not registered yet: a later
    /// attempt may succeed. An unknown superior or a camera it does not
    /// see will not change without a new configuration; an alarm its
    /// subscription leaves out is not for it.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            AlarmSendError::NotRegistered { .. } | AlarmSendError::Failed { .. }
        )
    }
}

/// Sends alarms to superior platforms; `Ok` once the superior answered 2xx.
pub trait UpstreamAlarms: Send + Sync {
    fn send_alarm<'a>(&'a self, alarm: &'a GbAlarm) -> BoxFuture<'a, Result<(), AlarmSendError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn every_rule_and_health_kind_has_its_alarm() {
        let code = |k: &str| alarm_code(k).map(|c| (c.method, c.alarm_type, c.event_type));
        assert_eq!(code("intrusion"), Some((5, 6, Some(1))));
        assert_eq!(code("line_crossing"), Some((5, 5, None)));
        assert_eq!(code("loitering"), Some((5, 8, None)));
        assert_eq!(code("crowd"), Some((5, 10, None)));
        assert_eq!(code("vehicle_dwell"), Some((5, 3, None)));
        assert_eq!(code("video_blocked"), Some((5, 11, None)));
        assert_eq!(code("camera_offline"), Some((2, 1, None)));
        assert_eq!(code("camera_recovered"), None);
        assert_eq!(code("no_such_kind"), None);
        let without: Vec<&str> = EventKind::ALL
            .iter()
            .map(|k| k.as_str())
            .filter(|k| alarm_code(k).is_none())
            .collect();
        assert_eq!(without, ["camera_recovered"]);
    }

    #[test]
    fn only_passing_troubles_are_retried() {
        let failed = AlarmSendError::Failed {
            upstream: "u".into(),
            reason: "500 Server Internal Error".into(),
        };
        assert!(failed.is_retriable());
        assert!(!AlarmSendError::UnknownUpstream("u".into()).is_retriable());
        let unwanted = AlarmSendError::NotSubscribed {
            upstream: "u".into(),
            why: "AlarmPriority 4 is not in 1-2".into(),
        };
        assert!(!unwanted.is_retriable());
    }
}
