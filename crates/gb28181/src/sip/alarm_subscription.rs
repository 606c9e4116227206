//! Alarm subscriptions of a superior platform (报警事件订阅, GB/T
//! 28181-2016 9.11): a superior SUBSCRIBEs with a `Query Alarm` body
//! (whatever its `Event` header says: `presence`, `Alarm`, ...) whose
//! conditions (A.2.4.6) say which alarms it wants: `StartAlarmPriority`
//! and `EndAlarmPriority`, `AlarmMethod` (digits, `12` is 1 or 2),
//! `AlarmType`, `StartAlarmTime` and `EndAlarmTime`; an absent, empty or
//! `0` condition is "any". We answer 200 with the granted `Expires` and a
//! `Response Alarm` `Result OK`, and keep the dialog
//! ([`super::subscription`]) with its [`AlarmFilter`].
//!
//! While it lives, [`super::alarm`] sends that superior the alarms the
//! filter takes as NOTIFY in the dialog, and no others; without one (never
//! subscribed, ended, expired, or a 481 to a NOTIFY) alarms go as MESSAGE.
//! A refresh in the dialog may carry a new `Query Alarm`: its conditions
//! then replace the old ones. Unlike the catalog, an alarm subscription is
//! taken while we are not registered to the superior (as it always was):
//! its NOTIFYs wait for the registration like the MESSAGEs do.

use super::manscdp::{Command, Root};
use super::message::Message;
use super::server::Shared;
use super::subscribe::subscribe_body;
use super::subscription::{granted, NotifyDialog, Subscriptions};
use super::transport::Peer;
use super::upstream::Link;
use chrono::NaiveDateTime;
use std::fmt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xueliang_core::gb_alarm::{GbAlarm, PRIORITIES};

/// The live alarm subscriptions and what each asked for.
pub(crate) type AlarmSubscriptions = Subscriptions<AlarmFilter>;

/// Which alarms an alarm subscription asked for; every condition
/// "any" by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmFilter {
    /// `AlarmPriority` from..to, both included (1 is the most urgent).
    pub priorities: (u8, u8),
    /// The `AlarmMethod`s asked for; empty: any.
    pub methods: Vec<u8>,
    /// The `AlarmType` asked for; `None`: any.
    pub alarm_type: Option<u8>,
    /// `AlarmTime` from..to, both included, local time; `None`: open.
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

impl Default for AlarmFilter {
    fn default() -> Self {
        AlarmFilter {
            priorities: (*PRIORITIES.start(), *PRIORITIES.end()),
            methods: Vec::new(),
            alarm_type: None,
            from: None,
            to: None,
        }
    }
}

/// A GB time as superiors write it: `YYYY-MM-DDTHH:MM:SS`, perhaps with
/// fractions of a second or a space for the `T`.
fn gb_time(text: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// A priority condition: `Some(0)` is "any".
fn priority(text: &str) -> Option<u8> {
    text.parse()
        .ok()
        .filter(|p| *p == 0 || PRIORITIES.contains(p))
}

impl AlarmFilter {
    /// The conditions of a `Query Alarm`, and the names of those that could
    /// not be read (each taken as "any").
    pub fn from_query(query: &Command) -> (AlarmFilter, Vec<&'static str>) {
        let mut filter = AlarmFilter::default();
        let mut unread = Vec::new();
        let read = |name: &'static str| {
            let text = query.field(name)?;
            Some((name, text))
        };
        let (mut low, mut high) = filter.priorities;
        if let Some((name, text)) = read("StartAlarmPriority") {
            match priority(text) {
                Some(0) => {}
                Some(p) => low = p,
                None => unread.push(name),
            }
        }
        if let Some((name, text)) = read("EndAlarmPriority") {
            match priority(text) {
                Some(0) => {}
                Some(p) => high = p,
                None => unread.push(name),
            }
        }
        filter.priorities = (low.min(high), low.max(high));
        if let Some((name, text)) = read("AlarmMethod") {
            let digits: Option<Vec<u8>> = text
                .chars()
                .map(|c| c.to_digit(10).map(|d| d as u8))
                .collect();
            match digits {
                // 0 alone, or among others, is every method.
                Some(d) if !d.contains(&0) => filter.methods = d,
                Some(_) => {}
                None => unread.push(name),
            }
        }
        if let Some((name, text)) = read("AlarmType") {
            match text.parse::<u8>() {
                Ok(0) => {}
                Ok(t) => filter.alarm_type = Some(t),
                Err(_) => unread.push(name),
            }
        }
        for (name, slot) in [
            ("StartAlarmTime", &mut filter.from),
            ("EndAlarmTime", &mut filter.to),
        ] {
            if let Some((name, text)) = read(name) {
                match gb_time(text) {
                    Some(t) => *slot = Some(t),
                    None => unread.push(name),
                }
            }
        }
        (filter, unread)
    }

    /// Why the filter leaves `alarm` out; `None` when it takes it.
    pub fn excludes(&self, alarm: &GbAlarm) -> Option<String> {
        let (low, high) = self.priorities;
        if !(low..=high).contains(&alarm.priority) {
            return Some(format!(
                "AlarmPriority {} is not in {low}-{high}",
                alarm.priority
            ));
        }
        let method = alarm.code.method;
        if !self.methods.is_empty() && !self.methods.contains(&method) {
            return Some(format!("AlarmMethod {method} was not asked for"));
        }
        let alarm_type = alarm.code.alarm_type;
        if self.alarm_type.is_some_and(|t| t != alarm_type) {
            return Some(format!("AlarmType {alarm_type} was not asked for"));
        }
        let time = alarm.local_time;
        let before = self.from.is_some_and(|from| time < from);
        let after = self.to.is_some_and(|to| time > to);
        if before || after {
            return Some(format!("AlarmTime {time} is outside the time asked for"));
        }
        None
    }
}

/// As a log shows it: `priority 1-2, method any, type 6, time any`.
impl fmt::Display for AlarmFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (low, high) = self.priorities;
        write!(f, "priority {low}-{high}, method ")?;
        if self.methods.is_empty() {
            write!(f, "any")?;
        } else {
            let methods: Vec<String> = self.methods.iter().map(u8::to_string).collect();
            write!(f, "{}", methods.join("/"))?;
        }
        match self.alarm_type {
            Some(t) => write!(f, ", type {t}")?,
            None => write!(f, ", type any")?,
        }
        match (self.from, self.to) {
            (None, None) => write!(f, ", time any"),
            (from, to) => {
                let show = |t: Option<NaiveDateTime>| t.map_or("..".to_owned(), |t| t.to_string());
                write!(f, ", time {} to {}", show(from), show(to))
            }
        }
    }
}

/// The filter of `query`; conditions it could not read are logged.
fn filter_of(link: &Link, query: &Command) -> AlarmFilter {
    let (filter, unread) = AlarmFilter::from_query(query);
    if !unread.is_empty() {
        warn!(upstream = link.id(), fields = ?unread,
            "superior's alarm subscription has conditions we cannot read; taken as any");
    }
    filter
}

impl Shared {
    /// A new alarm SUBSCRIBE (no To tag) from `link`'s superior: 200, and
    /// the subscription kept with its filter.
    pub(super) fn subscribe_alarm(
        &self,
        link: &Link,
        request: &Message,
        peer: &Peer,
        query: &Command,
    ) -> Message {
        let expires = granted(request);
        let sn = query.sn.unwrap_or(0);
        let ok = self.subscribed(link, request, peer, "Alarm", sn, expires);
        let Some(dialog) = NotifyDialog::new(link, request, &ok, peer, "Alarm") else {
            return self.reply(request, peer, 400, "Bad Request");
        };
        if expires == 0 {
            // A subscription that ends as it starts: nothing to keep.
            return ok;
        }
        let filter = filter_of(link, query);
        info!(upstream = link.id(), expires, %filter,
            "superior platform subscribed to alarms: they go to it as NOTIFY");
        let stop = CancellationToken::new();
        self.alarm_subs
            .insert(link.id(), dialog, expires, peer, stop, filter);
        ok
    }

    /// A SUBSCRIBE in the dialog of one of `link`'s subscriptions: the
    /// 200 of its refresh (or end, with `Expires: 0`); a `Query Alarm` in
    /// an alarm subscription's refresh replaces its conditions. `None`
    /// when it is in no dialog of ours.
    pub(super) fn refresh_subscription(
        &self,
        link: &Link,
        request: &Message,
        peer: &Peer,
    ) -> Option<Message> {
        let expires = granted(request);
        let upstream = link.id();
        let what = if self
            .catalog_subs
            .refresh(upstream, request, peer, expires, |_| {})
            .is_some()
        {
            "catalog"
        } else {
            let query = subscribe_body(request).filter(|c| c.is(Root::Query, "Alarm"));
            self.alarm_subs
                .refresh(upstream, request, peer, expires, |filter| {
                    if let Some(query) = &query {
                        *filter = filter_of(link, query);
                    }
                })?;
            "alarm"
        };
        if expires == 0 {
            info!(
                upstream,
                subscription = what,
                "superior platform ended its subscription"
            );
        }
        Some(self.refreshed(link, request, peer, expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::manscdp;
    use xueliang_core::gb_alarm::alarm_code;

    fn query(conditions: &str) -> Command {
        manscdp::parse(&format!(
            "<Query><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>x</DeviceID>{conditions}</Query>"
        ))
        .expect("a query")
    }

    fn filter(conditions: &str) -> AlarmFilter {
        let (filter, unread) = AlarmFilter::from_query(&query(conditions));
        assert!(unread.is_empty(), "{unread:?}");
        filter
    }

    fn at(text: &str) -> NaiveDateTime {
        gb_time(text).expect("a time")
    }

    fn alarm(kind: &str, priority: u8, time: &str) -> GbAlarm {
        GbAlarm {
            upstream: "u".into(),
            camera_id: "gate".into(),
            code: alarm_code(kind).expect("an alarm"),
            priority,
            local_time: at(time),
            description: String::new(),
        }
    }

    const NIGHT: &str = "2026-12-06T21:03:04";

    #[test]
    fn empty_and_zero_conditions_take_every_alarm() {
        for conditions in [
            "",
            "<StartAlarmPriority>0</StartAlarmPriority><EndAlarmPriority>0</EndAlarmPriority>\
             <AlarmMethod>0</AlarmMethod><AlarmType>0</AlarmType>",
            "<StartAlarmPriority/><AlarmMethod></AlarmMethod><StartAlarmTime></StartAlarmTime>",
        ] {
            let f = filter(conditions);
            assert_eq!(f, AlarmFilter::default(), "{conditions}");
            for kind in ["intrusion", "camera_offline", "store_full"] {
                for p in 1..=4 {
                    assert_eq!(f.excludes(&alarm(kind, p, NIGHT)), None);
                }
            }
        }
    }

    #[test]
    fn priorities_methods_and_types_are_filtered() {
        let f = filter(
            "<StartAlarmPriority>1</StartAlarmPriority><EndAlarmPriority>2</EndAlarmPriority>\
             <AlarmMethod>5</AlarmMethod>",
        );
        assert_eq!(f.excludes(&alarm("intrusion", 1, NIGHT)), None);
        assert_eq!(f.excludes(&alarm("intrusion", 2, NIGHT)), None);
        let low = f.excludes(&alarm("intrusion", 3, NIGHT));
        assert_eq!(low.as_deref(), Some("AlarmPriority 3 is not in 1-2"));
        let device = f.excludes(&alarm("camera_offline", 1, NIGHT));
        assert_eq!(device.as_deref(), Some("AlarmMethod 2 was not asked for"));
        // Methods combine as digits; the range may come upside down.
        let f = filter(
            "<StartAlarmPriority>4</StartAlarmPriority><EndAlarmPriority>3</EndAlarmPriority>\
             <AlarmMethod>25</AlarmMethod>",
        );
        assert_eq!(f.priorities, (3, 4));
        assert_eq!(f.excludes(&alarm("camera_offline", 4, NIGHT)), None);
        assert_eq!(f.excludes(&alarm("loitering", 3, NIGHT)), None);
        // Only the start: up to 4.
        let f = filter("<StartAlarmPriority>2</StartAlarmPriority>");
        assert_eq!(f.priorities, (2, 4));
        // A type: intrusion (6) but not loitering (8).
        let f = filter("<AlarmMethod>5</AlarmMethod><AlarmType>6</AlarmType>");
        assert_eq!(f.excludes(&alarm("intrusion", 4, NIGHT)), None);
        let other = f.excludes(&alarm("loitering", 4, NIGHT));
        assert_eq!(other.as_deref(), Some("AlarmType 8 was not asked for"));
    }

    #[test]
    fn the_time_window_takes_its_ends() {
        let f = filter(
            "<StartAlarmTime>2026-12-06T20:00:00</StartAlarmTime>\
             <EndAlarmTime>2026-12-06 22:00:00.000</EndAlarmTime>",
        );
        assert_eq!(f.excludes(&alarm("crowd", 4, NIGHT)), None);
        assert_eq!(f.excludes(&alarm("crowd", 4, "2026-12-06T20:00:00")), None);
        assert_eq!(f.excludes(&alarm("crowd", 4, "2026-12-06T22:00:00")), None);
        for outside in ["2026-12-06T19:59:59", "2026-12-06T22:00:01"] {
            assert!(
                f.excludes(&alarm("crowd", 4, outside)).is_some(),
                "{outside}"
            );
        }
        // Open at one end.
        let f = filter("<StartAlarmTime>2026-12-06T21:00:00</StartAlarmTime>");
        assert_eq!(f.excludes(&alarm("crowd", 4, "2030-01-01T00:00:00")), None);
        assert!(f
            .excludes(&alarm("crowd", 4, "2026-12-06T20:59:59"))
            .is_some());
    }

    #[test]
    fn conditions_that_cannot_be_read_are_any_and_named() {
        let (f, unread) = AlarmFilter::from_query(&query(
            "<StartAlarmPriority>high</StartAlarmPriority><EndAlarmPriority>9</EndAlarmPriority>\
             <AlarmMethod>5,2</AlarmMethod><AlarmType>x</AlarmType>\
             <StartAlarmTime>yesterday</StartAlarmTime><EndAlarmTime>2026-12-06T22:00:00</EndAlarmTime>",
        ));
        assert_eq!(
            unread,
            [
                "StartAlarmPriority",
                "EndAlarmPriority",
                "AlarmMethod",
                "AlarmType",
                "StartAlarmTime"
            ]
        );
        assert_eq!(
            f,
            AlarmFilter {
                to: Some(at("2026-12-06T22:00:00")),
                ..AlarmFilter::default()
            }
        );
    }

    #[test]
    fn the_filter_reads_as_the_superior_asked() {
        let f = filter(
            "<StartAlarmPriority>1</StartAlarmPriority><EndAlarmPriority>2</EndAlarmPriority>\
             <AlarmMethod>25</AlarmMethod><AlarmType>6</AlarmType>\
             <StartAlarmTime>2026-12-06T20:00:00</StartAlarmTime>",
        );
        assert_eq!(
            f.to_string(),
            "priority 1-2, method 2/5, type 6, time 2026-12-06 20:00:00 to .."
        );
        assert_eq!(
            AlarmFilter::default().to_string(),
            "priority 1-4, method any, type any, time any"
        );
    }
}
