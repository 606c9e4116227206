//! Each camera's compressed video beside the pipeline: a tap on ingest's
//! frame sink keeps a ring of recent video ([`PacketRing`]), remuxes the
//! camera's own H.264/H.265 into fragmented MP4 once for every viewer while
//! someone watches (`GET /api/v1/cameras/{id}/live.mp4`), and collects the
//! samples of event clips ([`crate::clips`]). Nothing is decoded or encoded.
//!
//! The tap runs on the camera's ingest task for every frame: a copy of the
//! access unit, a short lock, a ring push, and while watched one
//! `FragmentWriter::push` and a broadcast send, which never waits for a
//! viewer (a viewer that falls [`PIECES`] behind skips to the next key
//! frame, in the API). A finished clip is handed to the clip writer with
//! `try_send`: when the writer is behind (a slow disk) the clip is dropped
//! and counted, ingest never waits.
//!
//! The same units go, as they are, to whoever forwards the camera's video
//! (GB/T 28181 cascade, [`LiveUnits`]): a broadcast of [`UNITS`] units per
//! camera, sent to only while someone is subscribed; a subscriber that
//! falls behind skips to the next key frame, and every subscription starts
//! at one.

use crate::clips::{ClipSink, FinishedClip};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tracing::debug;
use xueliang_api::{LiveFeed, LivePiece, LiveRefusal};
use xueliang_core::{
    CameraRef, EncodedFrame, FrameSink, LiveConfig, LiveUnit, LiveUnitsError, PushOutcome,
};
use xueliang_record::{
    ticks_from_seconds, FragmentWriter, PacketRing, ParameterSets, Sample, Segment,
};

/// Pieces (about one frame each) a viewer may fall behind before it skips
/// to the next key frame: 2.5 s at 25 fps.
const PIECES: usize = 64;
/// Units a forwarding subscriber may fall behind before it skips to the
/// next key frame: 5 s at 25 fps.
const UNITS: usize = 128;
/// The ring's bound without clips: room for the current GOP, which a new
/// viewer starts with (a larger GOP is not kept, and a viewer then starts at
/// the next key frame).
const GOP_BYTES: usize = 4 << 20;
/// A clip that grows past this stops there (120 s at 8 Mb/s).
const CLIP_BYTES: usize = 128 << 20;

/// The viewer limits and counters shared by every camera.
#[derive(Debug, Default)]
pub struct LiveLimits {
    config: LiveConfig,
    viewers: AtomicUsize,
    sent: Arc<AtomicU64>,
    refused: AtomicU64,
}

impl LiveLimits {
    pub fn new(config: LiveConfig) -> LiveLimits {
        LiveLimits {
            config,
            ..LiveLimits::default()
        }
    }

    /// Viewers now, bytes sent, viewers refused.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.viewers.load(Ordering::Relaxed) as u64,
            self.sent.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Counts a viewer in, unless the server is full.
    fn admit(&self) -> Result<(), LiveRefusal> {
        let max = self.config.max_viewers;
        self.viewers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| {
                self.refused.fetch_add(1, Ordering::Relaxed);
                LiveRefusal::ServerFull(max)
            })
    }
}

/// One running camera's compressed video.
pub struct CameraMedia {
    limits: Arc<LiveLimits>,
    /// Where finished clips go; `None` when clips are off.
    clips: Option<ClipSink>,
    state: Mutex<MediaState>,
}

struct MediaState {
    ring: PacketRing,
    /// The newest sample's arrival and PTS: wall-clock times of events map
    /// to the stream's PTS through it.
    clock: Option<(DateTime<Utc>, i64)>,
    /// The shared muxer, while anyone watches.
    live: Option<LiveMux>,
    viewers: usize,
    recordings: Vec<Recording>,
    /// The camera stopped: no new viewers; the muxer is gone.
    closed: bool,
    /// The units as they come, for forwarding subscribers; dropped when
    /// the camera stops, which ends their streams.
    units: Option<broadcast::Sender<LiveUnit>>,
}

impl MediaState {
    /// The stream's PTS at wall-clock time `at` (`None` before any sample).
    fn pts_at(&self, at: DateTime<Utc>) -> Option<i64> {
        let (seen, pts) = self.clock?;
        let ahead = (at - seen).num_microseconds().unwrap_or(0) as f64 / 1e6;
        Some(pts.saturating_add(ticks_from_seconds(ahead)))
    }
}

/// An event clip being collected.
struct Recording {
    event_id: i64,
    samples: Vec<Sample>,
    bytes: usize,
    starts_late: bool,
    /// The parameter sets it started with: a key frame with others (a new
    /// resolution) ends the clip.
    sets: ParameterSets,
    /// Ends with the first sample at or after this PTS (once the event ended).
    until: Option<i64>,
    /// Ends here whatever happens (`[clips] max_s` after its first sample).
    cap: i64,
}

impl Recording {
    /// Adds a sample; `false` when the clip is complete (the sample then is
    /// not part of it).
    fn take(&mut self, sample: &Sample) -> bool {
        let last = self.samples.last().map_or(i64::MIN, |s| s.pts);
        let restarted = sample.is_key && sample.pts <= last;
        let new_sets = sample.is_key && {
            let sets = ParameterSets::from_annexb(sample.codec, &sample.data);
            !sets.is_empty() && sets != self.sets
        };
        let over = self.until.is_some_and(|u| sample.pts >= u)
            || sample.pts >= self.cap
            || self.bytes + sample.data.len() > CLIP_BYTES;
        if restarted || new_sets || over {
            return false;
        }
        self.bytes += sample.data.len();
        self.samples.push(sample.clone());
        true
    }

    fn finished(self) -> FinishedClip {
        FinishedClip {
            event_id: self.event_id,
            samples: self.samples,
            starts_late: self.starts_late,
        }
    }
}

/// The muxer every viewer of a camera shares.
struct LiveMux {
    writer: FragmentWriter,
    pieces: broadcast::Sender<LivePiece>,
    init: Option<(Arc<str>, Bytes)>,
    /// Media segments since the newest key frame.
    backlog: Vec<Bytes>,
}

impl LiveMux {
    fn new() -> LiveMux {
        LiveMux {
            writer: FragmentWriter::new(),
            pieces: broadcast::channel(PIECES).0,
            init: None,
            backlog: Vec::new(),
        }
    }

    fn feed(&mut self, sample: &Sample) {
        let segments = match self.writer.push(sample) {
            Ok(s) => s,
            Err(e) => {
                debug!(error = %e, "live view: sample skipped");
                return;
            }
        };
        for segment in segments {
            let piece = match segment {
                Segment::Init(init) => {
                    let mime: Arc<str> = Arc::from(init.config.mime_type());
                    self.init = Some((mime.clone(), init.data.clone()));
                    self.backlog.clear();
                    LivePiece::Init {
                        mime,
                        data: init.data,
                    }
                }
                Segment::Media(m) => {
                    if m.starts_with_key {
                        self.backlog.clear();
                    }
                    self.backlog.push(m.data.clone());
                    LivePiece::Media {
                        data: m.data,
                        key: m.starts_with_key,
                    }
                }
            };
            // No receiver: nobody to send to (only while subscribing).
            let _ = self.pieces.send(piece);
        }
    }
}

impl CameraMedia {
    /// With `clips`, the ring holds `[clips] ring_mb`; without, the current GOP.
    pub(crate) fn new(limits: Arc<LiveLimits>, clips: Option<ClipSink>) -> Arc<CameraMedia> {
        let ring_bytes = clips.as_ref().map_or(GOP_BYTES, |c| c.ring_bytes);
        Arc::new(CameraMedia {
            limits,
            clips,
            state: Mutex::new(MediaState {
                ring: PacketRing::new(ring_bytes),
                clock: None,
                live: None,
                viewers: 0,
                recordings: Vec::new(),
                closed: false,
                units: Some(broadcast::channel(UNITS).0),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MediaState> {
        crate::pipeline::lock(&self.state)
    }

    /// Takes a copy of an access unit as ingest hands it on.
    fn push(&self, frame: &EncodedFrame) {
        let sample = Sample::from_seconds(
            frame.codec,
            Bytes::copy_from_slice(&frame.data),
            frame.is_key,
            frame.stream_time,
        );
        let mut state = self.state();
        let state = &mut *state;
        if state.closed {
            return;
        }
        if let Some(live) = &mut state.live {
            live.feed(&sample);
        }
        if let Some(units) = state.units.as_ref().filter(|u| u.receiver_count() > 0) {
            // Never waits: a subscriber behind loses the oldest units.
            let _ = units.send(LiveUnit {
                codec: sample.codec,
                is_key: sample.is_key,
                pts: sample.pts,
                data: sample.data.clone(),
            });
        }
        if !state.recordings.is_empty() {
            let (going, done): (Vec<_>, Vec<_>) = std::mem::take(&mut state.recordings)
                .into_iter()
                .map(|mut r| (r.take(&sample), r))
                .partition(|(taken, _)| *taken);
            state.recordings = going.into_iter().map(|(_, r)| r).collect();
            for (_, r) in done {
                self.hand_over(r);
            }
        }
        state.clock = Some((frame.received_at, sample.pts));
        state.ring.push(sample);
    }

    /// Bytes the ring holds (for the memory figures).
    pub fn ring_bytes(&self) -> usize {
        self.state().ring.bytes()
    }

    /// Starts collecting event `event_id`'s clip: from the key frame at or
    /// before `pre_s` ahead of `started_at`, for at most `max_s`.
    pub(crate) fn record(&self, event_id: i64, started_at: DateTime<Utc>, pre_s: f64, max_s: f64) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        let (Some(start), Some((_, last))) = (state.pts_at(started_at), state.clock) else {
            return;
        };
        let from = start.saturating_sub(ticks_from_seconds(pre_s));
        let mut clip = state.ring.clip(from, last);
        // A new resolution inside the pre-roll: start at it.
        if let Some(cut) = clip.as_ref().and_then(|c| c.cut_at) {
            clip = state.ring.clip(cut, last);
        }
        let Some(clip) = clip.filter(|c| !c.samples.is_empty()) else {
            return;
        };
        let first = clip.samples[0].pts;
        let sets = ParameterSets::from_annexb(clip.samples[0].codec, &clip.samples[0].data);
        let bytes = clip.samples.iter().map(|s| s.data.len()).sum();
        state.recordings.push(Recording {
            event_id,
            samples: clip.samples,
            bytes,
            starts_late: clip.starts_late,
            sets,
            until: None,
            cap: first.saturating_add(ticks_from_seconds(max_s)),
        });
    }

    /// Event `event_id`'s clip ends with the sample at `until` (its end plus
    /// `post_s`).
    pub(crate) fn end_recording(&self, event_id: i64, until: DateTime<Utc>) {
        let mut state = self.state();
        let Some(pts) = state.pts_at(until) else {
            return;
        };
        if let Some(r) = state.recordings.iter_mut().find(|r| r.event_id == event_id) {
            r.until = Some(pts);
        }
    }

    /// Clips being collected (for tests and figures).
    pub fn recordings(&self) -> usize {
        self.state().recordings.len()
    }

    fn hand_over(&self, r: Recording) {
        if let Some(sink) = &self.clips {
            sink.send(r.finished());
        }
    }

    /// A new viewer: the shared stream from the newest key frame on.
    pub fn watch(self: &Arc<Self>) -> Result<LiveFeed, LiveRefusal> {
        let mut state = self.state();
        if state.closed {
            return Err(LiveRefusal::NotRunning);
        }
        let per_camera = self.limits.config.max_viewers_per_camera;
        if state.viewers >= per_camera {
            self.limits.refused.fetch_add(1, Ordering::Relaxed);
            return Err(LiveRefusal::CameraFull(per_camera));
        }
        self.limits.admit()?;
        state.viewers += 1;
        let state = &mut *state;
        let live = state.live.get_or_insert_with(|| {
            let mut mux = LiveMux::new();
            // From the newest key frame.
            let newest = state.ring.last_pts().unwrap_or(i64::MIN);
            for sample in state
                .ring
                .clip(newest, newest)
                .map(|c| c.samples)
                .unwrap_or_default()
            {
                mux.feed(&sample);
            }
            mux
        });
        Ok(LiveFeed {
            init: live.init.clone(),
            backlog: live.backlog.clone(),
            pieces: live.pieces.subscribe(),
            sent: self.limits.sent.clone(),
            guard: Box::new(Viewer(self.clone())),
        })
    }

    /// The camera's units from its next key frame on, until it stops.
    pub fn units(&self, camera_id: &str) -> Result<BoxStream<'static, LiveUnit>, LiveUnitsError> {
        let state = self.state();
        let units = state
            .units
            .as_ref()
            .filter(|_| !state.closed)
            .ok_or_else(|| LiveUnitsError::NotRunning(camera_id.to_owned()))?;
        Ok(from_key_frames(units.subscribe()))
    }

    /// The camera stopped: viewers' streams end, no new ones start, clips
    /// being collected are written as they are.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.live = None;
        state.units = None;
        state.ring.clear();
        for r in std::mem::take(&mut state.recordings) {
            self.hand_over(r);
        }
    }
}

/// A broadcast of units as a stream that starts at a key frame and, after
/// falling behind, skips to the next one; it ends when the sender is gone.
fn from_key_frames(receiver: broadcast::Receiver<LiveUnit>) -> BoxStream<'static, LiveUnit> {
    let stream = futures::stream::unfold((receiver, true), |(mut rx, mut wait_key)| async move {
        loop {
            match rx.recv().await {
                Ok(unit) if wait_key && !unit.is_key => continue,
                Ok(unit) => {
                    wait_key = false;
                    return Some((unit, (rx, wait_key)));
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    debug!(
                        skipped,
                        "forwarded video fell behind: waiting for a key frame"
                    );
                    wait_key = true;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Box::pin(stream)
}

/// Counts a viewer in while it lives; the last one out stops the muxer.
struct Viewer(Arc<CameraMedia>);

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.viewers -= 1;
        self.0.limits.viewers.fetch_sub(1, Ordering::AcqRel);
        if state.viewers == 0 {
            state.live = None;
        }
    }
}

/// Ingest's frame sink with the camera's media tap in front.
pub(crate) struct TappedSink {
    pub media: Arc<CameraMedia>,
    pub inner: Arc<dyn FrameSink>,
}

impl FrameSink for TappedSink {
    fn push(&self, frame: EncodedFrame) -> PushOutcome {
        self.media.push(&frame);
        self.inner.push(frame)
    }

    fn reset(&self, camera: &CameraRef) {
        self.inner.reset(camera)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use tokio::sync::broadcast::error::TryRecvError;
    use xueliang_core::VideoCodec;

    /// 2 s of H.264 (25 fps, a key frame every 25) as ingest hands it on:
    /// one access unit per frame, parameter sets before each key frame.
    fn frames() -> Vec<EncodedFrame> {
        frames_of(2)
    }

    /// `seconds` of it, received 40 ms apart from [`t0`].
    fn frames_of(seconds: u32) -> Vec<EncodedFrame> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clip.h264");
        let out = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=25",
            ])
            .args([
                "-t",
                &seconds.to_string(),
                "-c:v",
                "libx264",
                "-g",
                "25",
                "-bf",
                "0",
            ])
            .args(["-x264-params", "aud=1:repeat-headers=1", "-f", "h264"])
            .arg(&file)
            .output()
            .expect("ffmpeg");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let data = std::fs::read(&file).unwrap();
        // Access unit delimiters (type 9) start each access unit.
        let mut starts: Vec<usize> = (0..data.len().saturating_sub(4))
            .filter(|&i| {
                data[i..i + 4] == [0, 0, 1, 9]
                    || (data[i..i + 3] == [0, 0, 1] && data[i + 3] & 0x1f == 9)
            })
            .collect();
        starts.dedup();
        starts.push(data.len());
        let camera = CameraRef {
            index: 0,
            id: Arc::from("test"),
        };
        starts
            .windows(2)
            .enumerate()
            .map(|(n, w)| {
                let unit = &data[w[0]..w[1]];
                EncodedFrame {
                    camera: camera.clone(),
                    codec: VideoCodec::H264,
                    is_key: unit
                        .windows(4)
                        .any(|x| x[..3] == [0, 0, 1] && x[3] & 0x1f == 5),
                    new_parameters: false,
                    data: unit.to_vec(),
                    stream_time: n as f64 / 25.0,
                    received_at: at(n),
                }
            })
            .collect()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// When frame `n` arrived.
    fn at(n: usize) -> DateTime<Utc> {
        t0() + chrono::Duration::milliseconds(40 * n as i64)
    }

    fn limits(per_camera: usize, total: usize) -> Arc<LiveLimits> {
        Arc::new(LiveLimits::new(LiveConfig {
            max_viewers_per_camera: per_camera,
            max_viewers: total,
        }))
    }

    #[test]
    fn a_viewer_starts_at_the_last_key_frame_and_shares_the_stream() {
        let frames = frames();
        assert_eq!(frames.len(), 50);
        assert!(frames[0].is_key && frames[25].is_key && !frames[26].is_key);
        let media = CameraMedia::new(limits(4, 4), None);
        for f in &frames[..30] {
            media.push(f);
        }
        let first = media.watch().unwrap();
        let (mime, init) = first.init.clone().expect("an init segment");
        assert!(mime.starts_with("video/mp4; codecs=\"avc1."), "{mime}");
        assert_eq!(&init[4..8], b"ftyp");
        // Frames 25..30 are the current GOP; the last waits for its duration.
        assert_eq!(first.backlog.len(), 4, "segments since the key frame");
        let second = media.watch().unwrap();
        assert_eq!(second.backlog.len(), 4);
        let (mut a, mut b) = (first.pieces, second.pieces);
        for f in &frames[30..40] {
            media.push(f);
        }
        for rx in [&mut a, &mut b] {
            let mut n = 0;
            while let Ok(piece) = rx.try_recv() {
                assert!(matches!(piece, LivePiece::Media { key: false, .. }));
                n += 1;
            }
            assert_eq!(n, 10);
        }
        assert_eq!(media.limits.totals().0, 2);
    }

    #[test]
    fn viewer_limits_per_camera_and_in_all_and_the_last_viewer_stops_the_muxer() {
        let frames = frames();
        let shared = limits(2, 3);
        let east = CameraMedia::new(shared.clone(), None);
        let west = CameraMedia::new(shared.clone(), None);
        for f in &frames[..10] {
            east.push(f);
            west.push(f);
        }
        let e1 = east.watch().unwrap();
        let e2 = east.watch().unwrap();
        assert_eq!(east.watch().err(), Some(LiveRefusal::CameraFull(2)));
        let w1 = west.watch().unwrap();
        assert_eq!(west.watch().err(), Some(LiveRefusal::ServerFull(3)));
        assert_eq!(shared.totals().0, 3);
        assert_eq!(shared.totals().2, 2);
        drop(e1);
        let w2 = west.watch().unwrap();
        drop((e2, w1, w2));
        assert_eq!(shared.totals().0, 0);
        assert!(east.state().live.is_none() && west.state().live.is_none());
        // The next viewer gets a new muxer, again from the key frame.
        assert_eq!(east.watch().unwrap().backlog.len(), 9);
    }

    #[test]
    fn a_viewer_before_the_first_key_frame_gets_the_init_when_it_comes() {
        let frames = frames();
        let media = CameraMedia::new(limits(1, 1), None);
        for f in &frames[1..10] {
            media.push(f);
        }
        let feed = media.watch().unwrap();
        assert!(feed.init.is_none() && feed.backlog.is_empty());
        let mut rx = feed.pieces;
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
        for f in &frames[25..27] {
            media.push(f);
        }
        assert!(matches!(rx.try_recv(), Ok(LivePiece::Init { .. })));
    }

    #[test]
    fn a_stopped_camera_ends_its_streams_and_takes_no_viewer() {
        let frames = frames();
        let media = CameraMedia::new(limits(1, 1), None);
        for f in &frames[..5] {
            media.push(f);
        }
        let mut rx = media.watch().unwrap().pieces;
        media.close();
        while let Ok(_piece) = rx.try_recv() {}
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Closed));
        assert_eq!(media.watch().err(), Some(LiveRefusal::NotRunning));
        assert_eq!(media.ring_bytes(), 0);
    }

    #[tokio::test]
    async fn forwarded_units_start_at_a_key_frame_skip_after_lag_and_end_with_the_camera() {
        use futures::StreamExt;
        let frames = frames_of(8);
        let media = CameraMedia::new(limits(1, 1), None);
        for f in &frames[..5] {
            media.push(f);
        }
        let mut units = media.units("test").unwrap();
        // Frames 5..30: the stream starts at the key frame at 25.
        for f in &frames[5..30] {
            media.push(f);
        }
        let first = units.next().await.unwrap();
        assert!(first.is_key);
        assert_eq!(first.pts, 25 * 3600, "90 kHz");
        assert_eq!(first.data.len(), frames[25].data.len());
        for n in 26..30 {
            assert_eq!(units.next().await.unwrap().pts, n * 3600);
        }
        // 150 units unread, more than UNITS: the oldest 22 are lost, and it
        // skips on from frame 52 to the next key frame (75).
        for f in &frames[30..180] {
            media.push(f);
        }
        let after_lag = units.next().await.unwrap();
        assert!(after_lag.is_key);
        assert_eq!(after_lag.pts, 75 * 3600);
        media.close();
        let rest: Vec<_> = units.collect().await;
        assert_eq!(rest.len(), 104, "frames 76..180, then the end");
        assert_eq!(
            media.units("test").err(),
            Some(LiveUnitsError::NotRunning("test".into()))
        );
    }

    #[test]
    fn no_unit_is_sent_without_a_subscriber() {
        let media = CameraMedia::new(limits(1, 1), None);
        let before = media.state().units.as_ref().unwrap().len();
        for f in &frames()[..10] {
            media.push(f);
        }
        assert_eq!(media.state().units.as_ref().unwrap().len(), before);
    }

    #[test]
    fn a_gop_too_large_is_not_kept() {
        let media = CameraMedia::new(limits(1, 1), None);
        let mut frame = frames().remove(0);
        frame.data.resize(GOP_BYTES + 1, 0);
        media.push(&frame);
        assert_eq!(media.ring_bytes(), 0);
    }

    #[test]
    fn a_clip_runs_from_the_key_frame_before_its_pre_roll_to_its_end_plus_post() {
        let frames = frames_of(4);
        let (sink, mut rx, totals) = ClipSink::for_test(4, 8 << 20);
        let media = CameraMedia::new(limits(1, 1), Some(sink));
        for f in &frames[..60] {
            media.push(f);
        }
        // An event started on frame 55 with 1 s of pre-roll: from frame 30,
        // so from the key frame at 25.
        media.record(7, at(55), 1.0, 120.0);
        assert_eq!(media.recordings(), 1);
        for f in &frames[60..72] {
            media.push(f);
        }
        // It ended on frame 70; 0.4 s after is frame 80.
        media.end_recording(7, at(70) + chrono::Duration::milliseconds(400));
        for f in &frames[72..100] {
            media.push(f);
        }
        assert_eq!(media.recordings(), 0);
        let clip = rx.try_recv().expect("a finished clip");
        assert_eq!(clip.event_id, 7);
        assert!(!clip.starts_late);
        assert_eq!(clip.samples.len(), 55, "frames 25 to 79");
        assert!(clip.samples[0].is_key);
        let mut mp4 = Vec::new();
        let summary = xueliang_record::write_mp4(&clip.samples, &mut mp4).unwrap();
        assert!(
            (summary.duration_seconds() - 2.2).abs() < 0.05,
            "{}",
            summary.duration_seconds()
        );
        assert_eq!(totals.get(), (0, 0, 0));
    }

    #[test]
    fn a_clip_stops_at_max_s_and_a_stopped_camera_hands_over_what_it_has() {
        let frames = frames_of(4);
        let (sink, mut rx, _) = ClipSink::for_test(4, 8 << 20);
        let media = CameraMedia::new(limits(1, 1), Some(sink));
        for f in &frames[..30] {
            media.push(f);
        }
        media.record(1, at(29), 0.0, 1.0);
        media.record(2, at(29), 0.0, 120.0);
        for f in &frames[30..60] {
            media.push(f);
        }
        let capped = rx.try_recv().expect("the capped clip");
        assert_eq!(
            (capped.event_id, capped.samples.len()),
            (1, 25),
            "1 s from frame 25"
        );
        media.close();
        let cut = rx.try_recv().expect("the open clip");
        assert_eq!(
            (cut.event_id, cut.samples.len()),
            (2, 35),
            "frames 25 to 59"
        );
    }

    #[test]
    fn a_clip_is_dropped_and_counted_when_the_writer_is_behind() {
        let frames = frames();
        let (sink, mut rx, totals) = ClipSink::for_test(1, 8 << 20);
        let media = CameraMedia::new(limits(1, 1), Some(sink));
        for f in &frames[..5] {
            media.push(f);
        }
        media.record(1, at(4), 0.0, 0.1);
        media.record(2, at(4), 0.0, 0.1);
        for f in &frames[5..10] {
            media.push(f);
        }
        assert_eq!(rx.try_recv().unwrap().event_id, 1);
        assert_eq!(
            rx.try_recv().err(),
            Some(tokio::sync::mpsc::error::TryRecvError::Empty)
        );
        assert_eq!(totals.get(), (0, 0, 1));
    }

    #[test]
    fn an_event_before_any_video_or_older_than_the_ring_starts_late_or_not_at_all() {
        let frames = frames_of(4);
        let (sink, mut rx, _) = ClipSink::for_test(4, 8 << 20);
        let media = CameraMedia::new(limits(1, 1), Some(sink));
        media.record(1, at(0), 1.0, 10.0);
        assert_eq!(media.recordings(), 0, "no video yet");
        for f in &frames[..60] {
            media.push(f);
        }
        // Asked from before the ring's first sample: it starts at the ring's start.
        media.record(2, at(0) - chrono::Duration::seconds(30), 1.0, 0.5);
        for f in &frames[60..70] {
            media.push(f);
        }
        let late = rx.try_recv().unwrap();
        assert!(late.starts_late);
        assert!(late.samples[0].is_key);
    }
}
