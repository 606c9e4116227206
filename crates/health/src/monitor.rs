//! Connectivity and degradation of one camera, and the `camera_offline` /
//! `camera_recovered` events.

use crate::condition::{Change, Condition};
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use xueliang_core::config::{CameraConfig, HealthSettings};
use xueliang_core::{
    CameraHealth, CameraState, CameraStats, CameraStatus, EventKind, EventUpdate, HealthReason,
    NewEvent, PictureFlags,
};

/// Rates are measured over this window.
const WINDOW_S: i64 = 10;

/// A snapshot of a camera's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    pub frames_received: u64,
    pub bytes_received: u64,
    pub frames_decoded: u64,
    pub decode_errors: u64,
    pub lost_packets: u64,
    pub frames_detected: u64,
}

impl Counters {
    pub fn read(s: &CameraStats) -> Self {
        Counters {
            frames_received: CameraStats::get(&s.frames_received),
            bytes_received: CameraStats::get(&s.bytes_received),
            frames_decoded: CameraStats::get(&s.frames_decoded),
            decode_errors: CameraStats::get(&s.decode_errors),
            lost_packets: CameraStats::get(&s.lost_packets),
            frames_detected: CameraStats::get(&s.frames_detected),
        }
    }
}

/// Rates over the window.
#[derive(Clone, Copy, Debug, Default)]
struct Rates {
    span_s: f64,
    fps: f64,
    kbps: f64,
    detection_fps: f64,
    decoded: u64,
    received: u64,
    decode_errors: u64,
    lost_per_min: f64,
}

pub struct CameraMonitor {
    camera: CameraConfig,
    settings: HealthSettings,
    window: VecDeque<(DateTime<Utc>, Counters)>,
    nominal_fps: Option<f64>,
    health: CameraHealth,
    /// Present while the camera delivers no video; active after the grace period.
    down: Condition,
    /// Present while the camera delivers video with a problem.
    problem: Condition,
    problem_reason: Option<HealthReason>,
    /// Last offline reason and detail, kept while the worker reconnects.
    last_offline: Option<(HealthReason, Option<String>)>,
    offline_event: Option<u64>,
    next_key: u64,
}

impl CameraMonitor {
    pub fn new(camera: CameraConfig, now: DateTime<Utc>) -> Self {
        let state = if camera.enabled {
            CameraState::Connecting
        } else {
            CameraState::Disabled
        };
        CameraMonitor {
            settings: camera.health.clone(),
            camera,
            window: VecDeque::new(),
            nominal_fps: None,
            health: CameraHealth::new(state, now),
            down: Condition::default(),
            problem: Condition::default(),
            problem_reason: None,
            last_offline: None,
            offline_event: None,
            next_key: 1,
        }
    }

    pub fn health(&self) -> &CameraHealth {
        &self.health
    }

    pub fn camera(&self) -> &CameraConfig {
        &self.camera
    }

    fn rates(&mut self, now: DateTime<Utc>, counters: Counters) -> Rates {
        self.window.push_back((now, counters));
        while self.window.len() > 2 && now - self.window[1].0 >= Duration::seconds(WINDOW_S) {
            self.window.pop_front();
        }
        let (t0, c0) = self.window[0];
        let span_s = (now - t0).num_milliseconds() as f64 / 1000.0;
        if span_s < 0.5 {
            return Rates::default();
        }
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let received = d(counters.frames_received, c0.frames_received);
        Rates {
            span_s,
            fps: received as f64 / span_s,
            kbps: d(counters.bytes_received, c0.bytes_received) as f64 * 8.0 / 1000.0 / span_s,
            detection_fps: d(counters.frames_detected, c0.frames_detected) as f64 / span_s,
            decoded: d(counters.frames_decoded, c0.frames_decoded),
            received,
            decode_errors: d(counters.decode_errors, c0.decode_errors),
            lost_per_min: d(counters.lost_packets, c0.lost_packets) as f64 * 60.0 / span_s,
        }
    }

    /// The camera stops being watched (deleted, disabled or replaced): ends
    /// its open `camera_offline` event, if any, without a recovery.
    pub fn stop(&mut self, now: DateTime<Utc>) -> Vec<EventUpdate> {
        self.offline_event
            .take()
            .map(|key| EventUpdate::end(key, now))
            .into_iter()
            .collect()
    }

    /// One look at the camera; returns the health events to store.
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        ingest: &CameraStatus,
        counters: Counters,
        picture: PictureFlags,
    ) -> Vec<EventUpdate> {
        let rates = self.rates(now, counters);
        let full_window = rates.span_s >= WINDOW_S as f64 * 0.8;
        let (state, reason, detail) = match ingest.state {
            CameraState::Disabled => (CameraState::Disabled, None, None),
            CameraState::Offline => {
                let reason = ingest.reason.unwrap_or(HealthReason::Other);
                self.last_offline = Some((reason, ingest.detail.clone()));
                (CameraState::Offline, Some(reason), ingest.detail.clone())
            }
            // Between two failed attempts the worker is connecting again: the
            // camera is still offline, for the same reason.
            CameraState::Connecting => match &self.last_offline {
                Some((reason, detail)) => (CameraState::Offline, Some(*reason), detail.clone()),
                None => (CameraState::Connecting, None, None),
            },
            CameraState::Online | CameraState::Degraded => {
                self.last_offline = None;
                if full_window
                    && rates.received > 0
                    && rates.decoded == 0
                    && rates.decode_errors > 0
                {
                    (
                        CameraState::Offline,
                        Some(HealthReason::DecodeFailed),
                        Some(format!("{} frames received, none decoded", rates.received)),
                    )
                } else {
                    self.online_state(now, &rates, full_window)
                }
            }
        };

        let mut updates = Vec::new();
        let delivering = state.delivers_video();
        let grace = Duration::milliseconds((self.settings.offline_grace_s * 1000.0) as i64);
        let absent = !delivering && state != CameraState::Disabled;
        let down_since = self.down.active_since();
        match self.down.update(now, absent, grace, Duration::zero()) {
            Some(Change::Started(since)) => {
                let key = self.key();
                let what = match (reason, &detail) {
                    (Some(r), Some(d)) => format!("{}: {d}", r.as_str()),
                    (Some(r), None) => r.as_str().to_owned(),
                    _ => "never connected".to_owned(),
                };
                self.offline_event = Some(key);
                updates.push(EventUpdate::Started {
                    key,
                    event: NewEvent::health(&self.camera, EventKind::CameraOffline, since, what),
                });
            }
            Some(Change::Ended(at)) => {
                if let Some(key) = self.offline_event.take() {
                    updates.push(EventUpdate::end(key, at));
                    let minutes = down_since.map_or(0.0, |t| (at - t).num_seconds() as f64 / 60.0);
                    let mut event = NewEvent::health(
                        &self.camera,
                        EventKind::CameraRecovered,
                        at,
                        format!("video back after {minutes:.1} min without it"),
                    );
                    event.ended_at = Some(at);
                    let key = self.key();
                    updates.push(EventUpdate::Started { key, event });
                }
            }
            None => {}
        }

        if (state, reason) != (self.health.state, self.health.reason) {
            self.health.since = now;
        }
        let h = &mut self.health;
        h.state = state;
        h.reason = reason;
        h.detail = detail;
        h.fps = if delivering { round1(rates.fps) } else { 0.0 };
        h.bitrate_kbps = if delivering { round1(rates.kbps) } else { 0.0 };
        h.detection_fps = if delivering {
            round1(rates.detection_fps)
        } else {
            0.0
        };
        h.nominal_fps = self.nominal_fps.map(round1);
        h.picture = picture;
        updates
    }

    /// Online, or degraded with hysteresis; learns the usual frame rate while healthy.
    fn online_state(
        &mut self,
        now: DateTime<Utc>,
        r: &Rates,
        full_window: bool,
    ) -> (CameraState, Option<HealthReason>, Option<String>) {
        let s = &self.settings;
        let mut problem = None;
        if full_window {
            if let Some(nominal) = self.nominal_fps {
                if r.fps < s.min_fps_ratio * nominal {
                    problem = Some((
                        HealthReason::LowFps,
                        format!("{:.1} fps, usually {nominal:.1}", r.fps),
                    ));
                }
            }
        }
        if problem.is_none() && r.lost_per_min > s.max_lost_packets_per_min {
            problem = Some((
                HealthReason::PacketLoss,
                format!("{:.0} RTP packets lost per minute", r.lost_per_min),
            ));
        }
        if problem.is_none() && r.decode_errors > 0 {
            problem = Some((
                HealthReason::DecodeErrors,
                format!("{} decode errors in {:.0} s", r.decode_errors, r.span_s),
            ));
        }
        let after = Duration::milliseconds((s.degraded_after_s * 1000.0) as i64);
        self.problem.update(now, problem.is_some(), after, after);
        if let Some((reason, _)) = &problem {
            self.problem_reason = Some(*reason);
        }
        if self.problem.is_active() {
            let reason = self.problem_reason.unwrap_or(HealthReason::Other);
            let detail = problem
                .map(|p| p.1)
                .unwrap_or_else(|| "recovering".to_owned());
            return (CameraState::Degraded, Some(reason), Some(detail));
        }
        if full_window && problem.is_none() {
            // Decay slowly so one burst (frames buffered during a stall) does not
            // set the bar for good.
            let decayed = self.nominal_fps.map_or(0.0, |n| n * 0.999);
            self.nominal_fps = Some(r.fps.max(decayed));
        }
        (CameraState::Online, None, None)
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key - 1
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use xueliang_core::{Clock, Config, ManualClock};

    fn camera(extra: &str) -> CameraConfig {
        let text = format!("[[cameras]]\nid = \"c\"\nname = \"C\"\nurl = \"rtsp://h/p\"\nvillage = \"东村\"\n{extra}\n");
        Config::parse(&text).unwrap().cameras.remove(0)
    }

    /// Drives a monitor second by second in simulated time.
    struct Sim {
        clock: ManualClock,
        m: CameraMonitor,
        counters: Counters,
        events: Vec<EventUpdate>,
    }

    impl Sim {
        fn new(extra: &str) -> Sim {
            let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 29, 20, 0, 0).unwrap());
            let m = CameraMonitor::new(camera(extra), clock.now());
            Sim {
                clock,
                m,
                counters: Counters::default(),
                events: Vec::new(),
            }
        }

        /// `secs` seconds with the ingest in `status`, receiving `fps` frames per second.
        fn run(&mut self, secs: i64, state: CameraState, reason: Option<HealthReason>, fps: u64) {
            for _ in 0..secs {
                self.clock.advance(Duration::seconds(1));
                self.counters.frames_received += fps;
                self.counters.frames_decoded += fps;
                self.counters.bytes_received += fps * 10_000;
                let status = CameraStatus {
                    state,
                    reason,
                    detail: reason.map(|_| "x".into()),
                    since: self.clock.now(),
                };
                let u = self.m.observe(
                    self.clock.now(),
                    &status,
                    self.counters,
                    PictureFlags::default(),
                );
                self.events.extend(u);
            }
        }

        fn kinds(&self) -> Vec<(&'static str, bool)> {
            self.events
                .iter()
                .map(|u| match u {
                    EventUpdate::Started { event, .. } => {
                        (event.kind.as_str(), event.ended_at.is_some())
                    }
                    EventUpdate::Ended { .. } => ("ended", true),
                    other => panic!("unexpected update {other:?}"),
                })
                .collect()
        }
    }

    #[test]
    fn offline_event_only_after_the_grace_period_and_recovered_after() {
        let mut sim = Sim::new("health = { offline_grace_s = 30 }");
        sim.run(20, CameraState::Online, None, 25);
        assert_eq!(sim.m.health().state, CameraState::Online);
        assert_eq!(sim.m.health().fps, 25.0);
        // 29 s offline (with reconnect attempts in between): no event yet.
        for _ in 0..29 {
            let state = if sim.clock.now().timestamp() % 2 == 0 {
                CameraState::Offline
            } else {
                CameraState::Connecting
            };
            sim.run(1, state, Some(HealthReason::Refused), 0);
        }
        assert!(sim.events.is_empty(), "{:?}", sim.kinds());
        assert_eq!(sim.m.health().state, CameraState::Offline);
        assert_eq!(sim.m.health().reason, Some(HealthReason::Refused));
        sim.run(2, CameraState::Offline, Some(HealthReason::Refused), 0);
        assert_eq!(sim.kinds(), vec![("camera_offline", false)]);
        let EventUpdate::Started { event, .. } = &sim.events[0] else {
            panic!()
        };
        assert_eq!(
            event.started_at,
            Utc.with_ymd_and_hms(2026, 11, 29, 20, 0, 21).unwrap(),
            "starts when video stopped"
        );
        assert!(event.detail.as_deref().unwrap().contains("refused"));
        assert_eq!(event.village.as_deref(), Some("东村"));
        sim.run(5, CameraState::Offline, Some(HealthReason::Refused), 0);
        assert_eq!(sim.events.len(), 1, "one event per outage");
        sim.run(1, CameraState::Online, None, 25);
        assert_eq!(
            sim.kinds(),
            vec![
                ("camera_offline", false),
                ("ended", true),
                ("camera_recovered", true)
            ]
        );
    }

    #[test]
    fn a_short_outage_makes_no_event() {
        let mut sim = Sim::new("health = { offline_grace_s = 60 }");
        sim.run(20, CameraState::Online, None, 25);
        sim.run(50, CameraState::Offline, Some(HealthReason::Stalled), 0);
        sim.run(20, CameraState::Online, None, 25);
        assert!(sim.events.is_empty());
    }

    #[test]
    fn a_camera_that_never_connects_goes_offline_after_the_grace_period() {
        let mut sim = Sim::new("health = { offline_grace_s = 10 }");
        sim.run(9, CameraState::Connecting, None, 0);
        assert_eq!(sim.m.health().state, CameraState::Connecting);
        sim.run(2, CameraState::Connecting, None, 0);
        assert_eq!(sim.kinds(), vec![("camera_offline", false)]);
    }

    #[test]
    fn low_frame_rate_degrades_after_it_lasts_and_recovers_with_hysteresis() {
        let mut sim = Sim::new("health = { degraded_after_s = 10, min_fps_ratio = 0.5 }");
        sim.run(30, CameraState::Online, None, 25);
        assert_eq!(sim.m.health().nominal_fps, Some(25.0));
        sim.run(15, CameraState::Online, None, 5);
        assert_eq!(
            sim.m.health().state,
            CameraState::Online,
            "the window still holds good seconds"
        );
        sim.run(10, CameraState::Online, None, 5);
        assert_eq!(sim.m.health().state, CameraState::Degraded);
        assert_eq!(sim.m.health().reason, Some(HealthReason::LowFps));
        sim.run(12, CameraState::Online, None, 25);
        assert_eq!(
            sim.m.health().state,
            CameraState::Degraded,
            "not yet: hysteresis"
        );
        sim.run(10, CameraState::Online, None, 25);
        assert_eq!(sim.m.health().state, CameraState::Online);
        assert!(sim.events.is_empty(), "degraded is a state, not an event");
    }

    #[test]
    fn frames_that_never_decode_are_decode_failed() {
        let mut sim = Sim::new("");
        for _ in 0..12 {
            sim.clock.advance(Duration::seconds(1));
            sim.counters.frames_received += 25;
            sim.counters.decode_errors += 25;
            let status = CameraStatus::new(CameraState::Online, sim.clock.now());
            sim.m.observe(
                sim.clock.now(),
                &status,
                sim.counters,
                PictureFlags::default(),
            );
        }
        assert_eq!(sim.m.health().state, CameraState::Offline);
        assert_eq!(sim.m.health().reason, Some(HealthReason::DecodeFailed));
    }

    #[test]
    fn disabled_cameras_make_no_events() {
        let mut sim = Sim::new("enabled = false");
        sim.run(600, CameraState::Disabled, None, 0);
        assert_eq!(sim.m.health().state, CameraState::Disabled);
        assert!(sim.events.is_empty());
    }
}
