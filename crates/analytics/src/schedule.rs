//! When a zone is watched: any of its windows (the configuration's one
//! schedule type, [`Window`]) in the configured time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use xueliang_core::schedule::{ScheduleWindow, Window};

#[derive(Clone, Debug)]
pub struct Schedule {
    windows: Vec<Window>,
    tz: Tz,
}

impl Schedule {
    /// Windows were validated with the config; an invalid one (impossible
    /// after validation) is skipped.
    pub fn new(windows: &[ScheduleWindow], tz: Tz) -> Self {
        Schedule {
            windows: windows
                .iter()
                .filter_map(|w| Window::parse(w).ok())
                .collect(),
            tz,
        }
    }

    /// Whether the schedule is active at `t`. No windows: always.
    pub fn active(&self, t: DateTime<Utc>) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|w| w.contains(t, self.tz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn shanghai(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_school_night_window_across_midnight() {
        // Sunday to Thursday nights 22:00-06:00 (school days follow).
        let s = Schedule::new(
            &[ScheduleWindow {
                days: "sun-thu".into(),
                from: "22:00".into(),
                to: "06:00".into(),
            }],
            chrono_tz::Asia::Shanghai,
        );
        // 2026-11-29 is a Sunday.
        assert!(!s.active(shanghai(2026, 11, 29, 21, 59)));
        assert!(s.active(shanghai(2026, 11, 29, 22, 0)));
        assert!(
            s.active(shanghai(2026, 11, 30, 5, 59)),
            "Monday morning belongs to Sunday night"
        );
        assert!(!s.active(shanghai(2026, 11, 30, 6, 0)));
        assert!(!s.active(shanghai(2026, 11, 30, 12, 0)));
        // Friday 23:00 is not in (Friday night is not listed) ...
        assert!(!s.active(shanghai(2026, 12, 4, 23, 0)));
        // ... but Friday 03:00 is (Thursday night).
        assert!(s.active(shanghai(2026, 12, 4, 3, 0)));
        assert!(
            !s.active(shanghai(2026, 12, 5, 3, 0)),
            "Saturday 03:00: Friday night is off"
        );
    }

    #[test]
    fn local_time_not_utc_and_no_windows_means_always() {
        let s = Schedule::new(
            &[ScheduleWindow {
                days: "mon-sun".into(),
                from: "08:00".into(),
                to: "09:00".into(),
            }],
            chrono_tz::Asia::Shanghai,
        );
        // 08:30 in Shanghai is 00:30 UTC.
        assert!(s.active(Utc.with_ymd_and_hms(2026, 11, 30, 0, 30, 0).unwrap()));
        assert!(!s.active(Utc.with_ymd_and_hms(2026, 11, 30, 8, 30, 0).unwrap()));
        assert!(Schedule::new(&[], chrono_tz::Asia::Shanghai).active(Utc::now()));
    }
}
