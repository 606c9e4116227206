//! The one weekly schedule of the configuration: days of the week and a daily
//! window of local time in the configured time zone (`[detection] timezone`),
//! possibly across midnight; a window that crosses midnight belongs to the day
//! it starts on. Zones (`schedule = [{ days = "mon-fri", from = "22:00", to =
//! "06:00" }]`) and the duty roster (`days`, `from`, `to` on each
//! `[[organisation.roster]]` entry) both use it.
//!
//! Days have one spelling: a string of days and ranges, `"mon-fri"`,
//! `"sat,sun"`, `"mon,wed-fri"`, `"fri-mon"`. A list (`days = ["mon", "tue"]`,
//! the roster's former spelling) is refused with the string to write instead.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;

const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_MINUTES: u32 = 24 * 60;

/// A window as written in the configuration. Check it with [`Window::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleWindow {
    /// `"mon-fri"`, `"sat,sun"`, `"mon,wed-fri"`; default every day.
    #[serde(default = "every_day", deserialize_with = "days_text")]
    pub days: String,
    /// `"HH:MM"`, inclusive; default `"00:00"`.
    #[serde(default = "midnight")]
    pub from: String,
    /// `"HH:MM"`, exclusive, `"24:00"` for the end of the day (the default);
    /// earlier than `from` means the window crosses midnight.
    #[serde(default = "end_of_day")]
    pub to: String,
}

impl Default for ScheduleWindow {
    fn default() -> Self {
        ScheduleWindow {
            days: every_day(),
            from: midnight(),
            to: end_of_day(),
        }
    }
}

/// The default of `days`: every day.
pub fn every_day() -> String {
    "mon-sun".into()
}

/// The default of `from`.
pub fn midnight() -> String {
    "00:00".into()
}

/// The default of `to`.
pub fn end_of_day() -> String {
    "24:00".into()
}

/// Reads `days` as a string; a list (the roster's former spelling) is refused
/// with the string that means the same.
pub fn days_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string of days and ranges such as \"mon-fri\" or \"sat,sun\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            let mut listed = Vec::new();
            while let Some(day) = seq.next_element::<String>()? {
                listed.push(day);
            }
            let instead = match Days::parse(&listed.join(",")) {
                Ok(days) if !listed.is_empty() => days.to_string(),
                _ => "mon-fri".to_owned(),
            };
            Err(serde::de::Error::custom(format!(
                "`days` is written as one string of days and ranges, not a list: write days = \"{instead}\""
            )))
        }
    }
    d.deserialize_any(Text)
}

/// Days of the week (bit 0 = Monday).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days(u8);

impl Days {
    pub const EVERY: Days = Days(0x7f);

    /// `"mon-fri"`, `"sat,sun"`, `"mon,wed-fri"`; a range may wrap (`"fri-mon"`).
    pub fn parse(text: &str) -> Result<Days, String> {
        let day = |s: &str| {
            let s = s.trim().to_ascii_lowercase();
            NAMES.iter().position(|n| *n == s).ok_or_else(|| {
                format!("unknown day \"{s}\" (use mon, tue, wed, thu, fri, sat, sun)")
            })
        };
        let mut bits = 0u8;
        for part in text.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (mut d, b) = (day(a)?, day(b)?);
                    loop {
                        bits |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => bits |= 1 << day(part)?,
            }
        }
        Ok(Days(bits))
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

/// The shortest spelling: runs of three days or more as ranges (`mon-fri,sun`).
impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut parts = Vec::new();
        let mut d = 0;
        while d < 7 {
            if self.0 & (1 << d) == 0 {
                d += 1;
                continue;
            }
            let start = d;
            while d + 1 < 7 && self.0 & (1 << (d + 1)) != 0 {
                d += 1;
            }
            match d - start {
                0 => parts.push(NAMES[start].to_owned()),
                1 => parts.push(format!("{},{}", NAMES[start], NAMES[d])),
                _ => parts.push(format!("{}-{}", NAMES[start], NAMES[d])),
            }
            d += 1;
        }
        f.write_str(&parts.join(","))
    }
}

/// A checked window: days it starts on, minutes after midnight. Shown (API)
/// in the configuration's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "ScheduleWindow")]
pub struct Window {
    pub days: Days,
    pub from_min: u32,
    /// `24 * 60` for the end of the day.
    pub to_min: u32,
}

/// In the API, a window is shown as written in the configuration, inside the
/// object that holds it (a roster entry): so its schema is
/// [`ScheduleWindow`]'s without `additionalProperties: false`, which would
/// refuse the holder's own fields.
impl utoipa::PartialSchema for Window {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{schema::Schema, RefOr};
        let mut schema = <ScheduleWindow as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.additional_properties = None;
            object.description = Some("When: days and a daily window of local time (`[detection] timezone`), as the configuration writes them.".into());
        }
        schema
    }
}

impl utoipa::ToSchema for Window {}

impl Window {
    /// Checks a window; the message names the field (`` `from` ``).
    pub fn parse(w: &ScheduleWindow) -> Result<Window, String> {
        let days = Days::parse(&w.days).map_err(|e| format!("`days`: {e}"))?;
        let time = |field: &str, s: &str| -> Result<u32, String> {
            let bad = || format!("`{field}` must be HH:MM, got \"{s}\"");
            let (h, m) = s.split_once(':').ok_or_else(bad)?;
            match (h.parse::<u32>(), m.parse::<u32>()) {
                (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
                (Ok(24), Ok(0)) if field == "to" => Ok(DAY_MINUTES),
                _ => Err(bad()),
            }
        };
        let (from_min, to_min) = (time("from", &w.from)?, time("to", &w.to)?);
        if from_min == to_min {
            return Err(
                "`from` and `to` are equal; use from = \"00:00\", to = \"24:00\" for all day"
                    .into(),
            );
        }
        Ok(Window {
            days,
            from_min,
            to_min,
        })
    }

    /// Whether the window covers `at`, read in the time zone `tz`.
    pub fn contains(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let local = at.with_timezone(&tz);
        let today = local.weekday();
        let minute = local.hour() * 60 + local.minute();
        if self.from_min < self.to_min {
            self.days.contains(today) && (self.from_min..self.to_min).contains(&minute)
        } else {
            // Crosses midnight: the evening part belongs to today's window,
            // the morning part to yesterday's.
            (self.days.contains(today) && minute >= self.from_min)
                || (self.days.contains(today.pred()) && minute < self.to_min)
        }
    }
}

impl From<Window> for ScheduleWindow {
    fn from(w: Window) -> Self {
        let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        ScheduleWindow {
            days: w.days.to_string(),
            from: hhmm(w.from_min),
            to: hhmm(w.to_min),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window(days: &str, from: &str, to: &str) -> Result<Window, String> {
        Window::parse(&ScheduleWindow {
            days: days.into(),
            from: from.into(),
            to: to.into(),
        })
    }

    fn local(tz: Tz, d: u32, h: u32, m: u32) -> DateTime<Utc> {
        // 2026-11-30 is a Monday.
        tz.with_ymd_and_hms(2026, 11, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn days_and_times_parse() {
        let w = window("sat,sun", "22:00", "06:30").unwrap();
        assert_eq!(
            (w.days, w.from_min, w.to_min),
            (Days(0b110_0000), 22 * 60, 6 * 60 + 30)
        );
        assert_eq!(
            window("fri-mon", "00:00", "24:00").unwrap().days,
            Days(0b111_0001)
        );
        assert_eq!(
            window("Mon, wed-fri", "08:00", "09:00").unwrap().days,
            Days(0b1_1101)
        );
        assert!(window("mon", "25:00", "01:00")
            .unwrap_err()
            .contains("`from`"));
        assert!(window("mon", "08:00", "24:00").is_ok());
        assert!(window("mon", "24:00", "08:00").is_err());
        assert!(window("mon", "08:00", "08:00")
            .unwrap_err()
            .contains("equal"));
        assert!(window("mon-fry", "08:00", "09:00")
            .unwrap_err()
            .contains("fry"));
    }

    #[test]
    fn days_print_in_the_shortest_spelling() {
        for (text, shown) in [
            ("mon,tue,wed,thu,fri", "mon-fri"),
            ("sat,sun", "sat,sun"),
            ("fri-mon", "mon,fri-sun"),
            ("mon-sun", "mon-sun"),
            ("wed", "wed"),
        ] {
            assert_eq!(Days::parse(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts_on() {
        let tz = chrono_tz::Asia::Shanghai;
        let w = window("sun-thu", "22:00", "06:00").unwrap();
        // Sunday 2026-11-29.
        assert!(!w.contains(local(tz, 29, 21, 59), tz));
        assert!(w.contains(local(tz, 29, 22, 0), tz));
        assert!(
            w.contains(local(tz, 30, 5, 59), tz),
            "Monday morning: Sunday night"
        );
        assert!(!w.contains(local(tz, 30, 6, 0), tz));
        // Saturday 03:00 belongs to Friday night, which is off.
        assert!(!w.contains(
            tz.with_ymd_and_hms(2026, 12, 5, 3, 0, 0)
                .unwrap()
                .with_timezone(&Utc),
            tz
        ));
        let all_day = window("mon", "00:00", "24:00").unwrap();
        assert!(all_day.contains(local(tz, 30, 23, 59), tz));
        assert!(!all_day.contains(local(tz, 29, 23, 59), tz));
    }

    #[test]
    fn the_time_zone_decides_the_local_time() {
        let w = window("mon-sun", "08:00", "09:00").unwrap();
        // 00:30 UTC is 08:30 in Shanghai, 06:30 in Urumqi.
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 0, 30, 0).unwrap();
        assert!(w.contains(at, chrono_tz::Asia::Shanghai));
        assert!(!w.contains(at, chrono_tz::Asia::Urumqi));
        assert!(!w.contains(at, chrono_tz::UTC));
    }

    #[test]
    fn a_list_of_days_is_refused_with_the_string_to_write() {
        let e = toml::from_str::<ScheduleWindow>(
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\nfrom = \"08:00\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`days`") && e.contains("days = \"mon-fri\""),
            "{e}"
        );
        let e = toml::from_str::<ScheduleWindow>("days = [\"sat\", \"sun\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("days = \"sat,sun\""), "{e}");
        let w: ScheduleWindow = toml::from_str("days = \"sat,sun\"\n").unwrap();
        assert_eq!((w.from.as_str(), w.to.as_str()), ("00:00", "24:00"));
    }

    #[test]
    fn a_window_shows_in_the_configuration_spelling() {
        let w = window("mon,tue,wed,thu,fri", "20:00", "24:00").unwrap();
        assert_eq!(
            serde_json::to_value(w).unwrap(),
            serde_json::json!({ "days": "mon-fri", "from": "20:00", "to": "24:00" })
        );
    }
}
