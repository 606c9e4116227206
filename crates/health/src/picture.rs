//! Picture checks on decoded frames, a few seconds apart: frozen picture,
//! blocked lens (black or uniform), scene changed (camera turned or moved).
//! Each is a [`Condition`] with hysteresis that opens an event while it lasts.

use crate::condition::{Change, Condition};
use chrono::{DateTime, Duration, Utc};
use xueliang_core::config::{CameraConfig, HealthSettings};
use xueliang_core::luma::LumaGrid;
use xueliang_core::{DecodedFrame, EventKind, EventUpdate, NewEvent, PictureFlags};

/// Coarse grid the checks compare: fine enough to see a turned camera, coarse
/// enough to average sensor noise and compression away.
const GRID_W: usize = 32;
const GRID_H: usize = 24;
/// A picture is unchanged when its cells differ by less than this on average (0-255).
const FROZEN_MAX_DIFF: f32 = 0.05;
/// After this long a changed view is accepted as the camera's new usual view.
const SCENE_ACCEPT_S: i64 = 3600;

pub struct PictureChecker {
    camera: CameraConfig,
    settings: HealthSettings,
    last_at: Option<DateTime<Utc>>,
    previous: Option<LumaGrid>,
    reference: Option<LumaGrid>,
    frozen: Condition,
    blocked: Condition,
    moved: Condition,
    keys: [Option<u64>; 3],
    next_key: u64,
}

#[derive(Clone, Copy)]
enum Check {
    Frozen = 0,
    Blocked = 1,
    Moved = 2,
}

impl PictureChecker {
    pub fn new(camera: CameraConfig) -> Self {
        PictureChecker {
            settings: camera.health.clone(),
            camera,
            last_at: None,
            previous: None,
            reference: None,
            frozen: Condition::default(),
            blocked: Condition::default(),
            moved: Condition::default(),
            keys: [None; 3],
            next_key: 1,
        }
    }

    pub fn flags(&self) -> PictureFlags {
        PictureFlags {
            frozen: self.frozen.is_active(),
            blocked: self.blocked.is_active(),
            scene_changed: self.moved.is_active(),
        }
    }

    /// Looks at a frame if the last look is `picture_interval_s` old; returns
    /// the events that start or end.
    pub fn observe(&mut self, frame: &DecodedFrame) -> Vec<EventUpdate> {
        let s = self.settings.clone();
        let now = frame.received_at;
        let interval = secs(s.picture_interval_s);
        if !s.picture_checks || self.last_at.is_some_and(|t| now - t < interval) {
            return Vec::new();
        }
        self.last_at = Some(now);
        let thumb = LumaGrid::from_luma(
            &frame.y,
            frame.width as usize,
            frame.height as usize,
            GRID_W,
            GRID_H,
        );
        let (mean, contrast) = (thumb.mean(), thumb.contrast());
        let is_blocked = contrast < s.blocked_max_contrast as f32
            || (mean < s.blocked_max_brightness as f32
                && contrast < 2.0 * s.blocked_max_contrast as f32);
        let is_frozen = !is_blocked
            && self
                .previous
                .as_ref()
                .is_some_and(|p| p.mean_abs_diff(&thumb) < FROZEN_MAX_DIFF);
        let correlation = self.reference.as_ref().map(|r| r.correlation(&thumb));
        let is_moved =
            !is_blocked && correlation.is_some_and(|c| c < s.scene_change_min_correlation as f32);

        // Clear after two normal looks in a row.
        let exit = interval * 2;
        let mut updates = Vec::new();
        let frozen_after = secs(s.frozen_after_s);
        let blocked_after = secs(s.blocked_after_s);
        let moved_after = secs(s.scene_change_after_s);
        let changes = [
            (
                Check::Frozen,
                self.frozen.update(now, is_frozen, frozen_after, exit),
            ),
            (
                Check::Blocked,
                self.blocked.update(now, is_blocked, blocked_after, exit),
            ),
            (
                Check::Moved,
                self.moved.update(now, is_moved, moved_after, exit),
            ),
        ];
        for (check, change) in changes {
            let detail = match check {
                Check::Frozen => "the picture has not changed".to_owned(),
                Check::Blocked if mean < s.blocked_max_brightness as f32 => {
                    format!("the picture is dark (brightness {mean:.0}/255, contrast {contrast:.1})")
                }
                Check::Blocked => format!("the picture is uniform (contrast {contrast:.1}): lens covered?"),
                Check::Moved => format!(
                    "the view differs from the usual one (correlation {:.2}): camera turned or moved?",
                    correlation.unwrap_or(0.0)
                ),
            };
            self.apply(check, change, detail, &mut updates);
        }

        // Learn the usual view: the first clear picture, then follow slow
        // changes (light, seasons) while the view matches; accept a changed
        // view as the new usual one after an hour.
        match (&mut self.reference, correlation) {
            (None, _) if !is_blocked => self.reference = Some(thumb.clone()),
            (Some(r), Some(c)) if c >= 0.8 && !is_blocked => r.blend(&thumb, 0.05),
            _ => {}
        }
        if self
            .moved
            .active_since()
            .is_some_and(|t| now - t >= Duration::seconds(SCENE_ACCEPT_S))
        {
            self.reference = Some(thumb.clone());
        }
        self.previous = Some(thumb);
        updates
    }

    fn apply(
        &mut self,
        check: Check,
        change: Option<Change>,
        detail: String,
        updates: &mut Vec<EventUpdate>,
    ) {
        let kind = match check {
            Check::Frozen => EventKind::VideoFrozen,
            Check::Blocked => EventKind::VideoBlocked,
            Check::Moved => EventKind::SceneChanged,
        };
        match change {
            Some(Change::Started(since)) => {
                let key = self.next_key;
                self.next_key += 1;
                self.keys[check as usize] = Some(key);
                updates.push(EventUpdate::Started {
                    key,
                    event: NewEvent::health(&self.camera, kind, since, detail),
                });
            }
            Some(Change::Ended(at)) => {
                if let Some(key) = self.keys[check as usize].take() {
                    updates.push(EventUpdate::end(key, at));
                }
            }
            None => {}
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::Arc;
    use xueliang_core::{CameraRef, Config};

    const W: usize = 64;
    const H: usize = 48;

    fn checker(extra: &str) -> PictureChecker {
        let text =
            format!("[[cameras]]\nid = \"c\"\nname = \"C\"\nurl = \"rtsp://h/p\"\n{extra}\n");
        PictureChecker::new(Config::parse(&text).unwrap().cameras.remove(0))
    }

    /// A textured scene: diagonal stripes shifted by `shift` pixels, plus a
    /// little noise that changes with `seed` (a live camera never repeats exactly).
    fn scene(shift: usize, seed: u32) -> Vec<u8> {
        (0..W * H)
            .map(|i| {
                let (x, y) = (i % W, i / W);
                let stripe = if ((x + y + shift) / 8).is_multiple_of(2) {
                    60
                } else {
                    190
                };
                let noise = ((i as u32 ^ seed).wrapping_mul(2654435761) >> 29) as u8;
                stripe + noise
            })
            .collect()
    }

    fn frame(y: Vec<u8>, at_s: i64) -> DecodedFrame {
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 23, 0, 0).unwrap() + Duration::seconds(at_s);
        let mut f = DecodedFrame::uniform(
            CameraRef {
                index: 0,
                id: Arc::from("c"),
            },
            W as u32,
            H as u32,
            0,
            at,
        );
        f.y = y;
        f
    }

    /// Feeds one frame per second from `from` to `to` (exclusive); returns the
    /// kinds of started events and the count of ended ones.
    fn feed(
        c: &mut PictureChecker,
        from: i64,
        to: i64,
        picture: impl Fn(i64) -> Vec<u8>,
    ) -> (Vec<EventKind>, usize) {
        let mut started = Vec::new();
        let mut ended = 0;
        for t in from..to {
            for u in c.observe(&frame(picture(t), t)) {
                match u {
                    EventUpdate::Started { event, .. } => started.push(event.kind),
                    EventUpdate::Ended { .. } => ended += 1,
                    other => panic!("unexpected update {other:?}"),
                }
            }
        }
        (started, ended)
    }

    #[test]
    fn a_live_picture_raises_nothing() {
        let mut c = checker("");
        let (started, _) = feed(&mut c, 0, 600, |t| scene(0, t as u32));
        assert!(started.is_empty(), "{started:?}");
        assert_eq!(c.flags(), PictureFlags::default());
    }

    #[test]
    fn a_frozen_picture_is_reported_after_frozen_after_s_and_clears() {
        let mut c = checker("health = { frozen_after_s = 30, picture_interval_s = 2 }");
        feed(&mut c, 0, 10, |t| scene(0, t as u32));
        // From t=10 the same picture repeats.
        let (started, _) = feed(&mut c, 10, 40, |_| scene(0, 7));
        assert!(started.is_empty(), "not before 30 s: {started:?}");
        let (started, _) = feed(&mut c, 40, 46, |_| scene(0, 7));
        assert_eq!(started, vec![EventKind::VideoFrozen]);
        assert!(c.flags().frozen);
        let (started, ended) = feed(&mut c, 46, 60, |t| scene(0, t as u32));
        assert_eq!((started.len(), ended), (0, 1));
        assert!(!c.flags().frozen);
    }

    #[test]
    fn a_covered_lens_is_blocked_not_frozen() {
        let mut c = checker("health = { blocked_after_s = 20 }");
        feed(&mut c, 0, 10, |t| scene(0, t as u32));
        let (started, _) = feed(&mut c, 10, 60, |t| vec![20 + (t % 2) as u8; W * H]);
        assert_eq!(started, vec![EventKind::VideoBlocked]);
        let (_, ended) = feed(&mut c, 60, 70, |t| scene(0, t as u32));
        assert_eq!(ended, 1);
    }

    #[test]
    fn a_turned_camera_is_a_scene_change_but_people_walking_by_are_not() {
        let mut c = checker("health = { scene_change_after_s = 20 }");
        feed(&mut c, 0, 60, |t| scene(0, t as u32));
        // Someone walks through: a bright block crosses part of the picture.
        let (started, _) = feed(&mut c, 60, 120, |t| {
            let mut y = scene(0, t as u32);
            let x0 = ((t - 60) as usize % 48) + 4;
            for row in 20..40 {
                for col in x0..x0 + 6 {
                    y[row * W + col] = 250;
                }
            }
            y
        });
        assert!(started.is_empty(), "{started:?}");
        // Brightness halves at dusk: the pattern is the same.
        let (started, _) = feed(&mut c, 120, 180, |t| {
            scene(0, t as u32).iter().map(|v| v / 2).collect()
        });
        assert!(started.is_empty(), "{started:?}");
        // The camera is turned: the stripes move by half a period.
        let (started, _) = feed(&mut c, 180, 230, |t| scene(8, t as u32));
        assert_eq!(started, vec![EventKind::SceneChanged]);
        assert!(c.flags().scene_changed);
        // Turned back.
        let (_, ended) = feed(&mut c, 230, 240, |t| scene(0, t as u32));
        assert_eq!(ended, 1);
    }

    #[test]
    fn checks_can_be_switched_off() {
        let mut c = checker("health = { picture_checks = false }");
        let (started, _) = feed(&mut c, 0, 120, |_| vec![0; W * H]);
        assert!(started.is_empty());
    }
}
