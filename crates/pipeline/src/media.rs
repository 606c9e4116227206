//! Each camera's compressed video beside the pipeline: a tap on ingest's
//! frame sink keeps the current GOP and, while someone watches, remuxes the
//! camera's own H.264/H.265 into fragmented MP4 once for every viewer
//! (`GET /api/v1/cameras/{id}/live.mp4`). Nothing is decoded or encoded.
//!
//! The tap runs on the camera's ingest task for every frame: a copy of the
//! access unit, a short lock, and while watched one `FragmentWriter::push`
//! and a broadcast send, which never waits for a viewer (a viewer that falls
//! [`PIECES`] behind skips to the next key frame, in the API).

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tracing::debug;
use xueliang_api::{LiveFeed, LivePiece, LiveRefusal, LiveTotals};
use xueliang_core::{CameraRef, EncodedFrame, FrameSink, LiveConfig, PushOutcome};
use xueliang_record::{FragmentWriter, Sample, Segment};

/// Pieces (about one frame each) a viewer may fall behind before it skips
/// to the next key frame: 2.5 s at 25 fps.
const PIECES: usize = 64;
/// The current GOP is kept up to this size (a new viewer starts with it);
/// a larger GOP is not kept, and a viewer then starts at the next key frame.
const GOP_BYTES: usize = 4 << 20;

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

    pub fn totals(&self) -> LiveTotals {
        LiveTotals {
            viewers: self.viewers.load(Ordering::Relaxed) as u64,
            bytes_sent: self.sent.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
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
    state: Mutex<MediaState>,
}

#[derive(Default)]
struct MediaState {
    /// Samples from the newest key frame on (empty while `keeping` is off).
    gop: Vec<Sample>,
    gop_bytes: usize,
    /// The current GOP fits [`GOP_BYTES`] so far.
    keeping: bool,
    /// The shared muxer, while anyone watches.
    live: Option<LiveMux>,
    viewers: usize,
    /// The camera stopped: no new viewers; the muxer is gone.
    closed: bool,
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
    pub fn new(limits: Arc<LiveLimits>) -> Arc<CameraMedia> {
        Arc::new(CameraMedia {
            limits,
            state: Mutex::new(MediaState::default()),
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
        if sample.is_key {
            state.gop.clear();
            state.gop_bytes = 0;
            state.keeping = true;
        }
        if state.keeping {
            state.gop_bytes += sample.data.len();
            if state.gop_bytes > GOP_BYTES {
                state.gop = Vec::new();
                state.keeping = false;
            } else {
                state.gop.push(sample);
            }
        }
    }

    /// Bytes of the current GOP held (for the memory figures).
    pub fn gop_bytes(&self) -> usize {
        let state = self.state();
        if state.keeping {
            state.gop_bytes
        } else {
            0
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
            for sample in &state.gop {
                mux.feed(sample);
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

    /// The camera stopped: viewers' streams end, no new ones start.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.live = None;
        state.gop = Vec::new();
        state.keeping = false;
    }
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
            .args(["-t", "2", "-c:v", "libx264", "-g", "25", "-bf", "0"])
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
                    received_at: chrono::Utc::now(),
                }
            })
            .collect()
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
        let media = CameraMedia::new(limits(4, 4));
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
        assert_eq!(media.limits.totals().viewers, 2);
    }

    #[test]
    fn viewer_limits_per_camera_and_in_all_and_the_last_viewer_stops_the_muxer() {
        let frames = frames();
        let shared = limits(2, 3);
        let east = CameraMedia::new(shared.clone());
        let west = CameraMedia::new(shared.clone());
        for f in &frames[..10] {
            east.push(f);
            west.push(f);
        }
        let e1 = east.watch().unwrap();
        let e2 = east.watch().unwrap();
        assert_eq!(east.watch().err(), Some(LiveRefusal::CameraFull(2)));
        let w1 = west.watch().unwrap();
        assert_eq!(west.watch().err(), Some(LiveRefusal::ServerFull(3)));
        assert_eq!(shared.totals().viewers, 3);
        assert_eq!(shared.totals().refused, 2);
        drop(e1);
        let w2 = west.watch().unwrap();
        drop((e2, w1, w2));
        assert_eq!(shared.totals().viewers, 0);
        assert!(east.state().live.is_none() && west.state().live.is_none());
        // The next viewer gets a new muxer, again from the key frame.
        assert_eq!(east.watch().unwrap().backlog.len(), 9);
    }

    #[test]
    fn a_viewer_before_the_first_key_frame_gets_the_init_when_it_comes() {
        let frames = frames();
        let media = CameraMedia::new(limits(1, 1));
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
        let media = CameraMedia::new(limits(1, 1));
        for f in &frames[..5] {
            media.push(f);
        }
        let mut rx = media.watch().unwrap().pieces;
        media.close();
        while let Ok(_piece) = rx.try_recv() {}
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Closed));
        assert_eq!(media.watch().err(), Some(LiveRefusal::NotRunning));
        assert_eq!(media.gop_bytes(), 0);
    }

    #[test]
    fn a_gop_too_large_is_not_kept() {
        let media = CameraMedia::new(limits(1, 1));
        let mut frame = frames().remove(0);
        frame.data.resize(GOP_BYTES + 1, 0);
        media.push(&frame);
        assert_eq!(media.gop_bytes(), 0);
        assert!(media.state().gop.is_empty());
    }
}
