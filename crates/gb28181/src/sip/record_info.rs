//! A superior's record query (录像文件检索, GB/T 28181-2016 §9.7 and
//! A.2.4.5): `Query` CmdType `RecordInfo` for a channel of the catalog we
//! gave it, with `StartTime` and `EndTime` (local time). Our recordings
//! are the event clips stored with the events ([`RecordedClips`]): each
//! clip of that camera overlapping the window is one `Item` of type
//! `alarm`. The answer is `Response` RecordInfo with `SumNum` and a
//! `RecordList`, in chunks sent one after another's 200 as the catalog is
//! ([`super::cascade`]). A `Type` other than `all` or `alarm` finds
//! nothing (there are no time or manual recordings here); `FilePath`,
//! `Address`, `Secrecy`, `RecorderID` and `IndistinctQuery` narrow
//! nothing: every clip is ours, not secret, and found by time.

use super::alarm::ALARM_TIME;
use super::cascade::item_lists;
use super::manscdp::{self, element, Command};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use xueliang_core::{RecordedClip, RecordedClips, RecordedClipsError};

/// What a RecordInfo query asks, read from its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordQuery {
    /// The catalog channel asked for (the answer's `DeviceID`).
    pub channel: String,
    /// Its camera and the name the catalog gives it.
    pub camera: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The zone of the query's times, and of the answer's.
    pub zone: Tz,
    /// `false` for a `Type` of recordings we do not have (`time`, `manual`).
    pub alarm_wanted: bool,
}

/// Why a query cannot be answered (a 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordQueryError {
    #[error("no or unreadable {0} (want YYYY-MM-DDTHH:MM:SS, local time)")]
    Time(&'static str),
    #[error("EndTime before StartTime")]
    Backwards,
}

/// A GB time (local in `zone`, `YYYY-MM-DDTHH:MM:SS`, a space or
/// fraction also taken) as UTC.
pub fn parse_local_time(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim().replace(' ', "T");
    let naive = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// `t` as GB writes times: local in `zone`, to the second (as `AlarmTime`).
pub fn local_time(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format(ALARM_TIME).to_string()
}

impl RecordQuery {
    /// The query of `command` for `channel` (of `camera`, named `name`),
    /// its times local in `zone`.
    pub fn read(
        command: &Command,
        (channel, camera, name): (&str, &str, &str),
        zone: Tz,
    ) -> Result<RecordQuery, RecordQueryError> {
        let time = |field: &'static str| {
            command
                .field(field)
                .and_then(|t| parse_local_time(t, zone))
                .ok_or(RecordQueryError::Time(field))
        };
        let (start, end) = (time("StartTime")?, time("EndTime")?);
        if end < start {
            return Err(RecordQueryError::Backwards);
        }
        let alarm_wanted = command
            .field("Type")
            .is_none_or(|t| t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case("alarm"));
        Ok(RecordQuery {
            channel: channel.to_owned(),
            camera: camera.to_owned(),
            name: name.to_owned(),
            start,
            end,
            zone,
            alarm_wanted,
        })
    }

    /// The clips that answer it.
    pub async fn clips(
        &self,
        recordings: Option<&dyn RecordedClips>,
    ) -> Result<Vec<RecordedClip>, RecordedClipsError> {
        match recordings {
            Some(r) if self.alarm_wanted => r.find(&self.camera, self.start, self.end).await,
            _ => Ok(Vec::new()),
        }
    }
}

/// The Response RecordInfo bodies for `clips`: `SumNum` items in chunks of
/// `chunk`, from our platform `recorder`.
pub fn record_bodies(
    query: &RecordQuery,
    clips: &[RecordedClip],
    recorder: &str,
    address: &str,
    sn: u32,
    chunk: usize,
    charset_label: &str,
) -> Vec<String> {
    let items: Vec<String> = clips
        .iter()
        .map(|clip| record_item(query, clip, recorder, address))
        .collect();
    item_lists("RecordList", &items, chunk)
        .into_iter()
        .map(|list| {
            let fields = element("Name", &query.name) + &list;
            manscdp::response("RecordInfo", sn, &query.channel, charset_label, &fields)
        })
        .collect()
}

/// One `<Item>` of a `RecordList` (A.2.6.7).
fn record_item(query: &RecordQuery, clip: &RecordedClip, recorder: &str, address: &str) -> String {
    let mut x = String::from("<Item>\r\n");
    x += &element("DeviceID", &query.channel);
    x += &element("Name", &clip.name);
    x += &element("FilePath", &format!("events/{}/clip.mp4", clip.event_id));
    x += &element("Address", address);
    x += &element("StartTime", &local_time(clip.start, query.zone));
    x += &element("EndTime", &local_time(clip.end, query.zone));
    x += &element("Secrecy", "0");
    x += &element("Type", "alarm");
    x += &element("RecorderID", recorder);
    x += &element("FileSize", &clip.bytes.to_string());
    x + "</Item>\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(body: &str) -> Result<RecordQuery, RecordQueryError> {
        let command = manscdp::parse(body).expect("parses");
        RecordQuery::read(
            &command,
            ("34020000001310000001", "east", "东门"),
            chrono_tz::Asia::Shanghai,
        )
    }

    fn body(fields: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<Query>\n<CmdType>RecordInfo</CmdType>\n<SN>7</SN>\n\
             <DeviceID>34020000001310000001</DeviceID>\n{fields}</Query>\n"
        )
    }

    #[test]
    fn a_query_is_read_in_local_time() {
        let q = query(&body(
            "<StartTime>2026-12-07T08:00:00</StartTime>\n<EndTime>2026-12-07 09:30:00</EndTime>\n\
             <Type>all</Type>\n<Secrecy>0</Secrecy>\n",
        ))
        .unwrap();
        // Beijing time: UTC+8.
        assert_eq!(q.start.to_rfc3339(), "2026-12-07T00:00:00+00:00");
        assert_eq!(local_time(q.end, q.zone), "2026-12-07T09:30:00");
        assert!(q.alarm_wanted);
        let time = query(&body(
            "<StartTime>2026-12-07T08:00:00</StartTime><EndTime>2026-12-07T09:00:00</EndTime>\
             <Type>time</Type>",
        ))
        .unwrap();
        assert!(!time.alarm_wanted);
    }

    #[test]
    fn bad_times_are_refused() {
        assert_eq!(
            query(&body("<EndTime>2026-12-07T09:00:00</EndTime>")),
            Err(RecordQueryError::Time("StartTime"))
        );
        assert_eq!(
            query(&body(
                "<StartTime>2026-12-07T09:00:00</StartTime><EndTime>yesterday</EndTime>"
            )),
            Err(RecordQueryError::Time("EndTime"))
        );
        assert_eq!(
            query(&body(
                "<StartTime>2026-12-07T09:00:00</StartTime><EndTime>2026-12-07T08:00:00</EndTime>"
            )),
            Err(RecordQueryError::Backwards)
        );
    }

    #[test]
    fn bodies_are_chunked_and_carry_each_clip() {
        let q = query(&body(
            "<StartTime>2026-12-07T08:00:00</StartTime><EndTime>2026-12-07T09:00:00</EndTime>",
        ))
        .unwrap();
        let clip = |n: i64| RecordedClip {
            event_id: n,
            camera_id: "east".into(),
            name: "intrusion person".into(),
            start: q.start + chrono::Duration::minutes(n),
            end: q.start + chrono::Duration::minutes(n) + chrono::Duration::seconds(20),
            bytes: 1000 + n as u64,
        };
        let clips: Vec<_> = (1..=3).map(clip).collect();
        let bodies = record_bodies(&q, &clips, "34020000002000000001", "东村", 7, 2, "GB2312");
        assert_eq!(bodies.len(), 2);
        for b in &bodies {
            let c = manscdp::parse(b).unwrap();
            assert!(c.is(manscdp::Root::Response, "RecordInfo"));
            assert_eq!(c.device_id.as_deref(), Some("34020000001310000001"));
            assert_eq!(c.field("SumNum"), Some("3"));
        }
        assert!(bodies[0].contains("<RecordList Num=\"2\">"));
        assert!(bodies[1].contains("<RecordList Num=\"1\">"));
        assert!(bodies[0].contains("<StartTime>2026-12-07T08:01:00</StartTime>"));
        assert!(bodies[0].contains("<EndTime>2026-12-07T08:01:20</EndTime>"));
        assert!(bodies[1].contains("<FileSize>1003</FileSize>"));
        assert!(bodies[1].contains("<Type>alarm</Type>"));
        let none = record_bodies(&q, &[], "x", "", 7, 2, "GB2312");
        assert_eq!(none.len(), 1);
        assert!(none[0].contains("<SumNum>0</SumNum>") && none[0].contains("Num=\"0\""));
    }
}
