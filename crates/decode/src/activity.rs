//! Whether a camera is busy or idle, decided from the compressed stream alone
//! (so that deciding costs nothing), and what its decoder should do with each
//! packet.
//!
//! - **Busy**: every packet is decoded; frames go to the detector at the
//!   camera's detection rate.
//! - **Idle** (no motion hint for `idle_after_s` and no tracked object): only
//!   key frames are decoded, and each goes to the picture checks, not the
//!   model (the analytics hold their stationary tracks meanwhile). The other
//!   packets are kept, undecoded,
//!   since the last key frame; each key frame drops them.
//! - **Onset** (a motion hint, or the analytics reporting a tracked object,
//!   while idle): the kept packets are decoded in order, without detection,
//!   to bring the decoder's references up to date, and the onset packet goes
//!   to the detector at once. No wait for the next key frame.
//!
//! - **Woken** (motion seen in an idle key frame: `key_motion`, for encoders
//!   whose frame sizes do not move, e.g. constant bitrate): busy from the
//!   next packet.
//!
//! The motion hint: a non-key frame much larger than the quiet baseline of
//! non-key sizes (more than `MOTION_RATIO` times it and more than
//! `MOTION_MIN_BYTES`). On a still scene P-frames only code sensor noise
//! (~200 bytes at D1 here); anything moving costs bits (~3.6 KB a P-frame on
//! the busy clip). The baseline learns from the frames that are not motion,
//! and it starts at a share of the first key frame's size (a quiet P-frame is
//! ~0.4 % of a key frame on the bench's still clip), so a camera that starts
//! busy is recognised as busy instead of learning its busy level as "quiet".
//! The same hint serves while busy: sustained motion keeps the P-frames above
//! the threshold. A steady level that is all "motion" is slowly learned as
//! quiet (the baseline creeps up ~1 % a second while every frame reads as
//! motion): a noisy still scene (P-frames at 2-3 % of a key frame are common
//! with sensor noise) goes idle within a couple of minutes, and a scene busy
//! for minutes stays busy through its tracked objects, which is what
//! detection is for; sizes alone cannot tell a steady crowd from steady
//! noise. Until the baseline has crept up, the failure is the safe one: the
//! camera stays busy, costing CPU but missing nothing.
//!
//! Pure logic: time is the stream time passed in, so tests run in simulated time.

use std::collections::VecDeque;

/// A P-frame is a motion hint when larger than this many times the baseline...
pub const MOTION_RATIO: f64 = 3.0;
/// ...and larger than this (tiny streams: a few hundred bytes of noise).
pub const MOTION_MIN_BYTES: usize = 1000;
/// Before any quiet P-frame has been seen, the baseline is this share of the
/// last key frame's size.
const BASELINE_OF_KEY: f64 = 0.005;
/// How fast the baseline follows the frames that are not motion (a mean over
/// ~20 frames: noise sizes spread 3-4x between frames, and a low quantile
/// would read the noisy ones as motion).
const BASELINE_RATE: f64 = 0.05;
/// While frames read as motion, the baseline still creeps up by this share
/// per second (x3 in ~110 s, x10 in ~230 s of nothing but "motion").
const BASELINE_GROWTH_PER_S: f64 = 0.01;

/// How one camera's decoder follows activity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivitySettings {
    /// Decode key frames only while idle (false: always busy).
    pub idle_key_frames_only: bool,
    /// Seconds without a motion hint or tracked object before going idle.
    pub idle_after_s: f64,
    /// At most this many packets are kept while idle (a GOP of 10 s at 30 fps)...
    pub max_kept_packets: usize,
    /// ...and at most this many bytes.
    pub max_kept_bytes: usize,
}

impl Default for ActivitySettings {
    fn default() -> Self {
        ActivitySettings {
            idle_key_frames_only: true,
            idle_after_s: 10.0,
            max_kept_packets: 300,
            max_kept_bytes: 8 << 20,
        }
    }
}

/// What the decoder does with a packet.
#[derive(Debug, PartialEq)]
pub enum Step<P> {
    /// Busy: decode it; frames go to the detector at the camera's rate.
    Decode(P),
    /// Idle, a key frame: decode it for the picture checks. `skipped` packets kept
    /// since the previous key frame were dropped undecoded.
    Key { packet: P, skipped: usize },
    /// Idle: kept, not decoded (yet).
    Kept,
    /// Onset while idle: decode `kept` (oldest first: the packets since the
    /// last decoded key frame, which the decoder holds as reference) without
    /// detecting, then `onset`, which goes to the detector at once. The
    /// camera is busy again.
    CatchUp { kept: Vec<P>, onset: P },
    /// Idle, and the kept packets reached the bound (a GOP longer than the
    /// bound): decode them without detecting so that the decoder's
    /// references stay whole; still idle. The last one is the current packet.
    Flush(Vec<P>),
}

/// The busy/idle state of one camera's stream.
#[derive(Debug)]
pub struct Activity<P> {
    settings: ActivitySettings,
    idle: bool,
    /// Quiet level of non-key frame sizes, bytes (None: nothing seen yet).
    baseline: Option<f64>,
    /// Stream time of the last motion hint or tracked object (None: since the
    /// session started, nothing seen yet).
    last_active: Option<f64>,
    last_time: Option<f64>,
    kept: VecDeque<P>,
    kept_bytes: usize,
}

impl<P> Activity<P> {
    pub fn new(settings: ActivitySettings) -> Self {
        Activity {
            settings,
            idle: false,
            baseline: None,
            last_active: None,
            last_time: None,
            kept: VecDeque::new(),
            kept_bytes: 0,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// The quiet level of non-key frame sizes learned so far.
    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    /// Motion was seen in a decoded key frame at stream time `t` (a scene
    /// whose frame sizes do not show it: constant bitrate): busy from the
    /// next packet, and the quiet time starts again. The decoder is up to date
    /// (the key frame was the last packet, nothing is kept after it).
    pub fn wake(&mut self, t: f64) {
        self.idle = false;
        self.kept.clear();
        self.kept_bytes = 0;
        self.last_active = Some(t);
    }

    /// Packets kept undecoded now.
    pub fn kept(&self) -> usize {
        self.kept.len()
    }

    /// The decoder lost its references (packets dropped before it because
    /// its queue was full, a new session): the kept packets are useless, and
    /// it waits for the next key frame. What the scene does has not changed,
    /// so idle stays idle, and the quiet time and the baseline go on: an
    /// overloaded machine that drops packets must not keep every camera busy
    /// because of the drops (at a start of hundreds of cameras that would
    /// keep them all busy, and the overload with them). A new session with
    /// a restarted stream time is still a [`Activity::reset`]. Returns how
    /// many kept packets were dropped.
    pub fn lose_references(&mut self) -> usize {
        let dropped = self.kept.len();
        self.kept.clear();
        self.kept_bytes = 0;
        dropped
    }

    /// A new stream (its time started again): the kept packets are useless.
    /// Back to busy; the quiet time starts again. Returns how many kept
    /// packets were dropped.
    pub fn reset(&mut self) -> usize {
        let dropped = self.kept.len();
        self.kept.clear();
        self.kept_bytes = 0;
        self.idle = false;
        self.last_active = None;
        self.last_time = None;
        dropped
    }

    /// Whether a non-key frame of `size` bytes is a motion hint; learns the
    /// quiet baseline from the frames that are not.
    fn motion_hint(&mut self, size: usize, dt: f64) -> bool {
        let size = size as f64;
        let base = *self.baseline.get_or_insert(size);
        let motion = size > MOTION_RATIO * base && size > MOTION_MIN_BYTES as f64;
        if motion {
            self.baseline = Some(base * (1.0 + BASELINE_GROWTH_PER_S * dt.clamp(0.0, 1.0)));
        } else {
            self.baseline = Some(base + BASELINE_RATE * (size - base));
        }
        motion
    }

    /// One packet of `size` bytes at stream time `t` (seconds); `tracked`: the
    /// analytics currently track an object that needs full-rate detection.
    pub fn packet(
        &mut self,
        packet: P,
        size: usize,
        is_key: bool,
        t: f64,
        tracked: bool,
    ) -> Step<P> {
        // A new session restarts stream time.
        if self.last_time.is_some_and(|last| t + 1.0 < last) {
            self.reset();
        }
        let dt = self.last_time.map_or(0.0, |last| t - last);
        self.last_time = Some(t);
        let start = *self.last_active.get_or_insert(t);
        let active = if is_key {
            if self.baseline.is_none() {
                self.baseline = Some(size as f64 * BASELINE_OF_KEY);
            }
            tracked
        } else {
            // Learn from every P-frame, also while tracked.
            self.motion_hint(size, dt) || tracked
        };
        if active {
            self.last_active = Some(t);
        }
        if !self.settings.idle_key_frames_only {
            return Step::Decode(packet);
        }
        if !self.idle {
            if !active && t - start >= self.settings.idle_after_s {
                self.idle = true;
                // From here on the decoder has decoded everything before
                // this packet: nothing is kept yet.
                return self.idle_packet(packet, size, is_key);
            }
            return Step::Decode(packet);
        }
        if active {
            self.idle = false;
            self.kept_bytes = 0;
            let kept = self.kept.drain(..).collect();
            return Step::CatchUp {
                kept,
                onset: packet,
            };
        }
        self.idle_packet(packet, size, is_key)
    }

    fn idle_packet(&mut self, packet: P, size: usize, is_key: bool) -> Step<P> {
        if is_key {
            let skipped = self.kept.len();
            self.kept.clear();
            self.kept_bytes = 0;
            return Step::Key { packet, skipped };
        }
        self.kept.push_back(packet);
        self.kept_bytes += size;
        if self.kept.len() >= self.settings.max_kept_packets
            || self.kept_bytes >= self.settings.max_kept_bytes
        {
            self.kept_bytes = 0;
            return Step::Flush(self.kept.drain(..).collect());
        }
        Step::Kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f64 = 25.0;
    const GOP: u64 = 50;
    const QUIET: usize = 200;
    const MOVING: usize = 3600;
    const KEY: usize = 50_000;

    /// Frames numbered from 0, a key frame every GOP frames.
    struct Stream {
        a: Activity<u64>,
        n: u64,
    }

    impl Stream {
        fn new(settings: ActivitySettings) -> Self {
            Stream {
                a: Activity::new(settings),
                n: 0,
            }
        }

        fn next(&mut self, p_size: usize, tracked: bool) -> Step<u64> {
            let n = self.n;
            self.n += 1;
            let key = n.is_multiple_of(GOP);
            let size = if key { KEY } else { p_size };
            self.a.packet(n, size, key, n as f64 / FPS, tracked)
        }

        /// Feeds `frames` frames; returns the steps.
        fn run(&mut self, frames: u64, p_size: usize, tracked: bool) -> Vec<Step<u64>> {
            (0..frames).map(|_| self.next(p_size, tracked)).collect()
        }
    }

    fn seconds(s: f64) -> u64 {
        (s * FPS) as u64
    }

    #[test]
    fn a_quiet_stream_goes_idle_after_the_quiet_time() {
        let mut s = Stream::new(ActivitySettings::default());
        let steps = s.run(seconds(9.9), QUIET, false);
        assert!(steps.iter().all(|st| matches!(st, Step::Decode(_))));
        assert!(!s.a.is_idle());
        s.run(seconds(0.2), QUIET, false);
        assert!(s.a.is_idle(), "idle after 10 s without motion");
        let b = s.a.baseline().unwrap();
        assert!((150.0..300.0).contains(&b), "baseline {b}");
    }

    #[test]
    fn while_idle_only_key_frames_are_decoded() {
        let mut s = Stream::new(ActivitySettings::default());
        s.run(seconds(11.0), QUIET, false);
        assert!(s.a.is_idle());
        let first = s.n;
        let steps = s.run(GOP * 4, QUIET, false);
        let mut keys = 0;
        for (i, st) in steps.iter().enumerate() {
            let n = first + i as u64;
            match st {
                Step::Key { packet, skipped } => {
                    assert_eq!(*packet, n);
                    assert!(n.is_multiple_of(GOP));
                    // Every key frame after the first drops a whole GOP.
                    if keys > 0 {
                        assert_eq!(*skipped, GOP as usize - 1);
                    }
                    keys += 1;
                }
                Step::Kept => assert!(!n.is_multiple_of(GOP)),
                other => panic!("frame {n}: {other:?}"),
            }
        }
        assert_eq!(keys, 4);
    }

    #[test]
    fn a_size_jump_ends_idle_and_returns_the_kept_packets_in_order() {
        let mut s = Stream::new(ActivitySettings::default());
        s.run(seconds(11.0), QUIET, false);
        assert!(s.a.is_idle());
        // Run to a key frame, then 17 quiet P-frames after it.
        while !s.n.is_multiple_of(GOP) {
            s.next(QUIET, false);
        }
        let key = s.n;
        assert!(matches!(s.next(QUIET, false), Step::Key { .. }));
        s.run(17, QUIET, false);
        match s.next(MOVING, false) {
            Step::CatchUp { kept, onset } => {
                let want: Vec<u64> = (key + 1..key + 18).collect();
                assert_eq!(kept, want, "the packets after the key frame, in order");
                assert_eq!(onset, key + 18);
            }
            other => panic!("{other:?}"),
        }
        assert!(!s.a.is_idle());
        assert_eq!(s.a.kept(), 0);
        // Busy: everything decoded again.
        assert!(matches!(s.next(QUIET, false), Step::Decode(_)));
    }

    #[test]
    fn noise_below_the_thresholds_is_not_motion() {
        let mut s = Stream::new(ActivitySettings::default());
        s.run(seconds(11.0), QUIET, false);
        // Twice the baseline, and a big frame under the absolute floor.
        for size in [2 * QUIET, MOTION_MIN_BYTES - 1] {
            let st = s.next(size, false);
            assert!(matches!(st, Step::Kept | Step::Key { .. }), "{st:?}");
        }
        assert!(s.a.is_idle());
    }

    #[test]
    fn lost_references_do_not_restart_the_quiet_time() {
        // Overloaded at a start: packets dropped before the decoder every
        // few seconds. The camera still goes idle after its quiet time.
        let mut s = Stream::new(ActivitySettings::default());
        for _ in 0..3 {
            s.run(seconds(3.0), QUIET, false);
            s.a.lose_references();
        }
        assert!(!s.a.is_idle());
        s.run(seconds(1.2), QUIET, false);
        assert!(s.a.is_idle(), "idle 10 s after the start, drops or not");
        // And an idle camera stays idle; what it kept is gone.
        while !s.n.is_multiple_of(GOP) {
            s.next(QUIET, false);
        }
        assert!(matches!(s.next(QUIET, false), Step::Key { .. }));
        s.run(5, QUIET, false);
        assert_eq!(s.a.kept(), 5);
        assert_eq!(s.a.lose_references(), 5);
        assert!(s.a.is_idle());
        assert_eq!(s.a.kept(), 0);
        // A new session (stream time restarts) is busy again.
        s.n = 0;
        s.next(QUIET, false);
        assert!(!s.a.is_idle());
    }

    #[test]
    fn a_busy_stream_never_goes_idle() {
        // Starts busy: the baseline comes from the key frame, not from the
        // busy P-frames.
        let mut s = Stream::new(ActivitySettings::default());
        let steps = s.run(seconds(100.0), MOVING, false);
        assert!(steps.iter().all(|st| matches!(st, Step::Decode(_))));
        assert!(!s.a.is_idle());
    }

    #[test]
    fn a_noisy_still_scene_is_learned_as_quiet_within_minutes() {
        // P-frames at 3 % of a key frame: motion against the first guess.
        let noisy = KEY * 3 / 100;
        let mut s = Stream::new(ActivitySettings::default());
        let mut idle_at = None;
        for i in 0..seconds(300.0) {
            s.next(noisy, false);
            if s.a.is_idle() && idle_at.is_none() {
                idle_at = Some(i as f64 / FPS);
            }
        }
        let idle_at = idle_at.expect("never went idle");
        assert!((60.0..200.0).contains(&idle_at), "idle at {idle_at} s");
        // Learned: a real jump over the noise still wakes it.
        if s.n.is_multiple_of(GOP) {
            s.next(noisy, false);
        }
        assert!(matches!(s.next(4 * noisy, false), Step::CatchUp { .. }));
    }

    #[test]
    fn a_tracked_object_keeps_the_camera_busy() {
        let mut s = Stream::new(ActivitySettings::default());
        // Someone stands still in a loitering zone: no size jump, but tracked.
        let steps = s.run(seconds(60.0), QUIET, true);
        assert!(steps.iter().all(|st| matches!(st, Step::Decode(_))));
        // Gone: idle after the quiet time, counted from the last tracked frame.
        s.run(seconds(9.9), QUIET, false);
        assert!(!s.a.is_idle());
        s.run(seconds(0.2), QUIET, false);
        assert!(s.a.is_idle());
        // Tracked again (e.g. a parked car drives off): catch up at once.
        assert!(matches!(s.next(QUIET, true), Step::CatchUp { .. }));
    }

    #[test]
    fn the_kept_packets_are_bounded() {
        let settings = ActivitySettings {
            max_kept_packets: 20,
            ..ActivitySettings::default()
        };
        let mut s = Stream::new(settings);
        s.run(seconds(11.0), QUIET, false);
        while !s.n.is_multiple_of(GOP) {
            s.next(QUIET, false);
        }
        s.next(QUIET, false);
        let start = s.n;
        let steps = s.run(25, QUIET, false);
        let flushes: Vec<&Vec<u64>> = steps
            .iter()
            .filter_map(|st| match st {
                Step::Flush(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(flushes.len(), 1);
        assert_eq!(*flushes[0], (start..start + 20).collect::<Vec<u64>>());
        assert_eq!(s.a.kept(), 5);
        assert!(s.a.is_idle());
        // The bytes bound as well.
        let settings = ActivitySettings {
            max_kept_bytes: 10 * QUIET,
            ..ActivitySettings::default()
        };
        let mut s = Stream::new(settings);
        s.run(seconds(11.0), QUIET, false);
        let steps = s.run(GOP, QUIET, false);
        assert!(steps
            .iter()
            .any(|st| matches!(st, Step::Flush(p) if p.len() == 10)));
    }

    #[test]
    fn a_wake_makes_the_camera_busy_until_the_next_quiet_time() {
        let mut s = Stream::new(ActivitySettings::default());
        s.run(seconds(11.0), QUIET, false);
        while !s.n.is_multiple_of(GOP) {
            s.next(QUIET, false);
        }
        let t = s.n as f64 / FPS;
        assert!(matches!(s.next(QUIET, false), Step::Key { .. }));
        s.a.wake(t);
        assert!(!s.a.is_idle());
        // Busy from the next packet on (same-size P-frames: no hint)...
        let steps = s.run(seconds(9.8), QUIET, false);
        assert!(steps.iter().all(|st| matches!(st, Step::Decode(_))));
        // ...and idle again once quiet for the quiet time after the wake.
        s.run(seconds(0.3), QUIET, false);
        assert!(s.a.is_idle());
    }

    #[test]
    fn disabled_never_idles_but_still_learns() {
        let settings = ActivitySettings {
            idle_key_frames_only: false,
            ..ActivitySettings::default()
        };
        let mut s = Stream::new(settings);
        let steps = s.run(seconds(60.0), QUIET, false);
        assert!(steps.iter().all(|st| matches!(st, Step::Decode(_))));
        assert!(!s.a.is_idle());
    }

    #[test]
    fn a_new_session_starts_busy() {
        let mut s = Stream::new(ActivitySettings::default());
        s.run(seconds(11.0), QUIET, false);
        assert!(s.a.is_idle());
        s.run(7, QUIET, false);
        let kept = s.a.kept();
        assert!(kept > 0);
        assert_eq!(s.a.reset(), kept);
        assert!(!s.a.is_idle());
        // Stream time restarts at 0 without an explicit reset too.
        let mut s = Stream::new(ActivitySettings::default());
        s.run(seconds(11.0), QUIET, false);
        assert!(s.a.is_idle());
        s.n = 0;
        assert!(matches!(s.next(QUIET, false), Step::Decode(_)));
        assert!(!s.a.is_idle());
    }
}
