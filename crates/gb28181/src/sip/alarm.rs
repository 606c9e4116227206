//! Alarms upward (cascade): an alert channel of type `gb28181` hands a
//! [`GbAlarm`] to [`Shared::send_alarm`], which sends it to the registered
//! superior with a `Notify Alarm` body (GB/T 28181-2016 A.2.5) and waits
//! for its 2xx: as `MESSAGE`, or, while the superior has an alarm
//! subscription ([`super::alarm_subscription`]), as `NOTIFY` in that
//! subscription's dialog when its conditions take the alarm (and not at
//! all when they leave it out: a permanent [`AlarmSendError::NotSubscribed`]).
//! A 481 to the NOTIFY (the superior no longer has the subscription) ends
//! the subscription and the alarm goes as MESSAGE at once. Not registered,
//! no answer or another error response is a retriable failure: the alert
//! outbox tries again later (in the subscription if it still lives then),
//! so nothing is lost while the superior is down. The camera is named by
//! its channel id in the catalog we give that superior ([`super::cascade`]).

use super::cascade::{catalog_items, Node};
use super::manscdp::{self, element};
use super::server::Shared;
use super::upstream::{Link, LinkError};
use tracing::{debug, info};
use xueliang_core::config::gb28181::Gb28181Upstream;
use xueliang_core::gb28181::{CascadeCamera, UpstreamState};
use xueliang_core::gb_alarm::{AlarmSendError, GbAlarm};

/// `AlarmTime`: local time, to the second (GB's `YYYY-MM-DDTHH:MM:SS`).
pub(super) const ALARM_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// The `Notify Alarm` body for `alarm` about `device_id` (a channel of our
/// catalog, or our own id), declaring `charset_label`.
pub fn alarm_body(alarm: &GbAlarm, device_id: &str, sn: u32, charset_label: &str) -> String {
    let code = alarm.code;
    let mut fields = element("AlarmPriority", &alarm.priority.to_string());
    fields += &element("AlarmMethod", &code.method.to_string());
    fields += &element(
        "AlarmTime",
        &alarm.local_time.format(ALARM_TIME).to_string(),
    );
    fields += &element("AlarmDescription", &alarm.description);
    fields += "<Info>\r\n";
    fields += &element("AlarmType", &code.alarm_type.to_string());
    if let Some(event_type) = code.event_type {
        fields += "<AlarmTypeParam>\r\n";
        fields += &element("EventType", &event_type.to_string());
        fields += "</AlarmTypeParam>\r\n";
    }
    fields += "</Info>\r\n";
    manscdp::notify("Alarm", sn, device_id, charset_label, &fields)
}

/// Who an alarm is about as `config`'s superior sees it: the camera's
/// channel id in our catalog, or our own id for the platform itself (no
/// camera). `None`: the camera is not shared with this superior.
pub fn alarm_device_id(
    config: &Gb28181Upstream,
    cameras: &[CascadeCamera],
    camera_id: &str,
) -> Option<String> {
    if camera_id.is_empty() {
        return Some(config.local_id.clone());
    }
    catalog_items(config, cameras)
        .into_iter()
        .find(|item| matches!(&item.node, Node::Camera { camera: c, .. } if c == camera_id))
        .map(|item| item.id)
}

impl Shared {
    /// Sends `alarm` to its superior; counts the outcome on the link.
    pub(super) async fn send_alarm(&self, alarm: &GbAlarm) -> Result<(), AlarmSendError> {
        let link = self
            .upstreams()
            .iter()
            .find(|l| l.id() == alarm.upstream)
            .cloned()
            .ok_or_else(|| AlarmSendError::UnknownUpstream(alarm.upstream.clone()))?;
        let result = self.alarm_to(&link, alarm).await;
        // One it did not subscribe to is neither sent nor failed.
        if !matches!(result, Err(AlarmSendError::NotSubscribed { .. })) {
            link.alarm_done(result.is_ok());
        }
        result
    }

    async fn alarm_to(&self, link: &Link, alarm: &GbAlarm) -> Result<(), AlarmSendError> {
        let upstream = link.id().to_owned();
        let state = link.state();
        if state != UpstreamState::Registered {
            return Err(AlarmSendError::NotRegistered {
                upstream,
                state: state.as_str().to_owned(),
            });
        }
        let config = &link.settings.config;
        let device_id = alarm_device_id(config, &link.cameras.cameras(), &alarm.camera_id)
            .ok_or_else(|| AlarmSendError::NotShared {
                upstream: upstream.clone(),
                camera: alarm.camera_id.clone(),
            })?;
        let body = alarm_body(
            alarm,
            &device_id,
            link.next_sn(),
            link.settings.charset().label(),
        );
        let failed = |e: LinkError| AlarmSendError::Failed {
            upstream: upstream.clone(),
            reason: e.to_string(),
        };
        if let Some(live) = self.alarm_subs.live_for(&upstream) {
            if let Some(why) = live.what.excludes(alarm) {
                debug!(upstream, camera = %alarm.camera_id, %why,
                    "alarm not sent: the superior's alarm subscription leaves it out");
                return Err(AlarmSendError::NotSubscribed { upstream, why });
            }
            match self
                .notify(link, &live.dialog, live.expires, &live.peer, &body)
                .await
            {
                Err(LinkError::Refused { code: 481, .. }) => {
                    info!(
                        upstream,
                        "superior no longer has the alarm subscription (481): \
                        ended; alarms go as MESSAGE"
                    );
                    self.alarm_subs.remove(&live.dialog.call_id);
                }
                sent => return sent.map_err(failed),
            }
        }
        self.message_upstream(link, &body).await.map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xueliang_core::gb_alarm::alarm_code;

    fn config() -> Gb28181Upstream {
        Gb28181Upstream {
            villages: vec!["东村".into()],
            ..crate::sip::cascade::test_upstream()
        }
    }

    fn camera(id: &str, village: &str) -> CascadeCamera {
        CascadeCamera {
            id: id.into(),
            name: id.into(),
            village: Some(village.into()),
            grid: None,
            online: true,
            trouble: None,
            gb_channel: None,
        }
    }

    fn intrusion() -> GbAlarm {
        GbAlarm {
            upstream: "11010000002000000001".into(),
            camera_id: "gate".into(),
            code: alarm_code("intrusion").expect("intrusion is an alarm"),
            priority: 2,
            local_time: chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
                .and_then(|d| d.and_hms_opt(21, 3, 4))
                .expect("a date"),
            description: "区域入侵 · 东门 <1>".into(),
        }
    }

    #[test]
    fn the_body_parses_back_with_every_field() {
        let body = alarm_body(&intrusion(), "34020000001310000042", 9, "GB2312");
        let command = manscdp::parse(&body).expect("our body parses");
        assert!(command.is(manscdp::Root::Notify, "Alarm"));
        assert_eq!(command.sn, Some(9));
        assert_eq!(command.device_id.as_deref(), Some("34020000001310000042"));
        for part in [
            "<AlarmPriority>2</AlarmPriority>",
            "<AlarmMethod>5</AlarmMethod>",
            "<AlarmTime>2026-12-06T21:03:04</AlarmTime>",
            "<AlarmDescription>区域入侵 · 东门 &lt;1&gt;</AlarmDescription>",
            "<Info>\r\n<AlarmType>6</AlarmType>\r\n<AlarmTypeParam>\r\n<EventType>1</EventType>",
        ] {
            assert!(body.contains(part), "{part} missing in {body}");
        }
        let offline = GbAlarm {
            code: alarm_code("camera_offline").expect("offline is an alarm"),
            ..intrusion()
        };
        let body = alarm_body(&offline, "34020000001310000042", 10, "GB2312");
        assert!(body.contains("<AlarmMethod>2</AlarmMethod>"), "{body}");
        assert!(!body.contains("AlarmTypeParam"), "{body}");
    }

    #[test]
    fn the_device_is_the_cameras_catalog_channel() {
        let cameras = [camera("gate", "东村"), camera("river", "西村")];
        let config = config();
        let id = alarm_device_id(&config, &cameras, "gate").expect("shared");
        let listed = catalog_items(&config, &cameras);
        assert!(listed.iter().any(|i| i.id == id && i.name == "gate"));
        assert_eq!(&id[10..13], "131");
        // 西村 is not shared with this superior; an unknown camera neither.
        assert_eq!(alarm_device_id(&config, &cameras, "river"), None);
        assert_eq!(alarm_device_id(&config, &cameras, "gone"), None);
        // The platform itself.
        assert_eq!(
            alarm_device_id(&config, &cameras, "").as_deref(),
            Some("34020000002000000001")
        );
    }
}
