//! A condition with hysteresis: it becomes active after it has been present
//! for `enter_after`, and inactive after it has been absent for `exit_after`.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub struct Condition {
    /// When the condition was first seen present (while inactive).
    present_since: Option<DateTime<Utc>>,
    /// When the condition was first seen absent (while active).
    absent_since: Option<DateTime<Utc>>,
    /// Since when it is active.
    active_since: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Became active; it had been present since the given time.
    Started(DateTime<Utc>),
    /// Became inactive at the given time.
    Ended(DateTime<Utc>),
}

impl Condition {
    pub fn update(
        &mut self,
        now: DateTime<Utc>,
        present: bool,
        enter_after: Duration,
        exit_after: Duration,
    ) -> Option<Change> {
        match (self.active_since, present) {
            (None, true) => {
                let since = *self.present_since.get_or_insert(now);
                if now - since >= enter_after {
                    self.active_since = Some(since);
                    self.present_since = None;
                    return Some(Change::Started(since));
                }
            }
            (None, false) => self.present_since = None,
            (Some(_), true) => self.absent_since = None,
            (Some(_), false) => {
                let since = *self.absent_since.get_or_insert(now);
                if now - since >= exit_after {
                    self.active_since = None;
                    self.absent_since = None;
                    return Some(Change::Ended(now));
                }
            }
        }
        None
    }

    pub fn is_active(&self) -> bool {
        self.active_since.is_some()
    }

    pub fn active_since(&self) -> Option<DateTime<Utc>> {
        self.active_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn enters_and_exits_only_after_the_condition_held() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = |n: i64| t0 + Duration::seconds(n);
        let (enter, exit) = (Duration::seconds(10), Duration::seconds(4));
        let mut c = Condition::default();
        assert_eq!(c.update(s(0), true, enter, exit), None);
        assert_eq!(
            c.update(s(5), false, enter, exit),
            None,
            "a gap resets the wait"
        );
        assert_eq!(c.update(s(6), true, enter, exit), None);
        assert_eq!(c.update(s(15), true, enter, exit), None);
        assert_eq!(
            c.update(s(16), true, enter, exit),
            Some(Change::Started(s(6)))
        );
        assert!(c.is_active());
        assert_eq!(c.update(s(17), false, enter, exit), None);
        assert_eq!(
            c.update(s(18), true, enter, exit),
            None,
            "a blip does not end it"
        );
        assert_eq!(c.update(s(19), false, enter, exit), None);
        assert_eq!(
            c.update(s(23), false, enter, exit),
            Some(Change::Ended(s(23)))
        );
        assert!(!c.is_active());
    }
}
