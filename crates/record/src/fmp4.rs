//! Fragmented MP4 for live view (Media Source Extensions): an init segment
//! (`ftyp` + `moov` with `mvex`), then media segments (`moof` + `mdat`).

use crate::boxes::{BoxWriter, TRACK_ID};
use crate::timing::{clamp_i32, clamp_u32, StreamingDts, DEFAULT_DURATION};
use crate::{Frame, MuxError, Sample, TrackConfig, TIMESCALE};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;

/// What [`FragmentWriter`] hands out, in the order to append them to a
/// `SourceBuffer`.
#[derive(Clone, Debug)]
pub enum Segment {
    /// The first segment, and again whenever the stream's parameter sets
    /// change (a new resolution): call `SourceBuffer.changeType` with its
    /// codec string if that changed, then append it.
    Init(InitSegment),
    Media(MediaSegment),
}

/// `ftyp` + `moov`, and the config it describes.
#[derive(Clone, Debug)]
pub struct InitSegment {
    pub data: Bytes,
    pub config: Arc<TrackConfig>,
}

/// `moof` + `mdat` holding one or more samples.
#[derive(Clone, Debug)]
pub struct MediaSegment {
    pub data: Bytes,
    /// The `mfhd` sequence number: 1, 2, 3, ... across init segments.
    pub sequence: u32,
    /// The `tfdt` base media decode time, 90 kHz ticks: the first sample's
    /// DTS on the writer's timeline (which starts at 0).
    pub base_decode_time: u64,
    /// Sum of the sample durations, 90 kHz ticks.
    pub duration: u64,
    pub samples: u32,
    /// The first sample is a key frame. A key frame always starts a
    /// segment, so a viewer joining a shared stream starts with the latest
    /// init segment and the next media segment for which this is true.
    pub starts_with_key: bool,
}

/// A sample whose DTS may not be known yet.
struct Pending {
    data: Bytes,
    is_key: bool,
    /// On the writer's timeline.
    pts: i64,
    dts: Option<i64>,
}

/// A presentation-time jump larger than this, at a key frame, is a new
/// timeline (the camera's session restarted): the writer's timeline goes on
/// without the gap.
const MAX_GAP: i64 = 10 * TIMESCALE as i64;

/// Turns a camera's samples (decode order) into fragmented MP4.
///
/// Samples before the first key frame are skipped. Each key frame whose
/// parameter sets differ from the current ones yields a new
/// [`Segment::Init`] (that is how the caller learns of a resolution
/// change: the init carries the new [`TrackConfig`]); media segments go on
/// with the same sequence numbers and decode timeline. Decode times come
/// from the presentation times ([`crate::derive_timing`], one sample at a
/// time): a sample waits for the SPS's reorder depth of later samples
/// (none without B-frames) plus one (its duration is up to the next DTS),
/// so live latency is one frame plus the reorder depth. Composition
/// offsets are signed (`trun` version 1). The timeline starts at 0 with the
/// first key frame; a jump back in time or forward by more than 10 s at a
/// key frame (a new session) continues it without the gap.
pub struct FragmentWriter {
    init: Option<InitSegment>,
    sequence: u32,
    dts: StreamingDts,
    pending: VecDeque<Pending>,
    /// Input PTS minus this is the writer's timeline.
    offset: i64,
    /// Largest PTS on the writer's timeline so far.
    max_pts: Option<i64>,
    last_dts: Option<i64>,
    last_duration: u32,
    skipped: u64,
    discontinuities: u64,
}

impl Default for FragmentWriter {
    fn default() -> Self {
        FragmentWriter::new()
    }
}

impl FragmentWriter {
    pub fn new() -> FragmentWriter {
        FragmentWriter {
            init: None,
            sequence: 0,
            dts: StreamingDts::new(0),
            pending: VecDeque::new(),
            offset: 0,
            max_pts: None,
            last_dts: None,
            last_duration: DEFAULT_DURATION,
            skipped: 0,
            discontinuities: 0,
        }
    }

    /// The current init segment: what a viewer joining now appends first.
    pub fn init(&self) -> Option<&InitSegment> {
        self.init.as_ref()
    }

    /// Samples skipped: before the first key frame, leading pictures that
    /// precede it.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Timeline restarts seen (see the type's documentation).
    pub fn discontinuities(&self) -> u64 {
        self.discontinuities
    }

    /// Samples held back, waiting for their decode time and duration.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes the next sample (decode order). Returns what can be sent now:
    /// possibly an init segment, and media segments for the samples whose
    /// timing is now known. On error nothing changed: skip the sample.
    pub fn push(&mut self, sample: &Sample) -> Result<Vec<Segment>, MuxError> {
        let mut out = Vec::new();
        let current = self.init.as_ref().map(|i| i.config.clone());
        if current.is_none() && !sample.is_key {
            self.skipped += 1;
            return Ok(out);
        }
        let frame = Frame::from_sample(sample)?;
        let codec_changed = current.as_ref().is_some_and(|c| c.codec() != sample.codec);
        if codec_changed && !sample.is_key {
            let track = current.as_ref().map_or("", |c| c.codec().as_str());
            return Err(MuxError::CodecChanged {
                pts: sample.pts,
                track,
                found: sample.codec.as_str(),
            });
        }
        let mut new_config = None;
        if sample.is_key {
            let sets = match &current {
                Some(c) if !codec_changed => frame.parameter_sets.merged_over(c.parameter_sets()),
                _ => frame.parameter_sets.clone(),
            };
            let same = current
                .as_ref()
                .is_some_and(|c| !codec_changed && c.parameter_sets() == &sets);
            if !same {
                new_config = Some(TrackConfig::new(sample.codec, sets)?);
            }
        }
        // Nothing fails from here on.
        let mut pts = sample.pts.saturating_sub(self.offset);
        if current.is_none() {
            self.offset = sample.pts;
            pts = 0;
        } else if sample.is_key {
            let back = self.max_pts.is_some_and(|m| pts <= m);
            let jump = self
                .max_pts
                .is_some_and(|m| pts.saturating_sub(m) > MAX_GAP);
            if back || jump {
                self.discontinuities += 1;
                out.extend(self.flush(None));
                let next = self
                    .last_dts
                    .map_or(0, |d| d.saturating_add(i64::from(self.last_duration)));
                self.offset = sample.pts.saturating_sub(next);
                pts = next;
            }
        }
        if let Some(config) = new_config {
            if current.is_some() {
                // Close the old configuration's samples; the last one lasts
                // until this key frame.
                out.extend(self.flush(Some(pts)));
            }
            self.install(config);
            if let Some(init) = &self.init {
                out.push(Segment::Init(init.clone()));
            }
        }
        if !frame.is_key && pts < 0 {
            // A leading picture presented before the first key frame.
            self.skipped += 1;
            return Ok(out);
        }
        self.max_pts = Some(self.max_pts.map_or(pts, |m| m.max(pts)));
        self.pending.push_back(Pending {
            data: frame.data,
            is_key: frame.is_key,
            pts,
            dts: None,
        });
        let known = self.dts.push(pts);
        self.assign(known);
        out.extend(self.emit(false, None));
        Ok(out)
    }

    /// Sends everything held back (end of the stream); the last sample
    /// lasts as long as the one before it.
    pub fn finish(&mut self) -> Vec<Segment> {
        self.flush(None)
    }

    fn flush(&mut self, next_dts: Option<i64>) -> Vec<Segment> {
        let known = self.dts.drain();
        self.assign(known);
        self.emit(true, next_dts)
    }

    fn install(&mut self, config: TrackConfig) {
        let window = config.reorder_depth().map_or(4, |r| r as usize);
        let mut dts = StreamingDts::new(window);
        dts.set_last(self.last_dts);
        self.dts = dts;
        let config = Arc::new(config);
        self.init = Some(InitSegment {
            data: init_segment(&config),
            config,
        });
    }

    fn assign(&mut self, known: Vec<i64>) {
        let mut known = known.into_iter();
        for p in self.pending.iter_mut().filter(|p| p.dts.is_none()) {
            match known.next() {
                Some(d) => p.dts = Some(d),
                None => break,
            }
        }
    }

    /// Media segments for the pending samples whose duration is known (all
    /// of them when `all`, the last lasting until `next_dts` or as long as
    /// the one before). A key frame starts a new segment.
    fn emit(&mut self, all: bool, next_dts: Option<i64>) -> Vec<Segment> {
        let ready = if all {
            self.pending.iter().take_while(|p| p.dts.is_some()).count()
        } else {
            // A sample is ready when the one after it has a DTS.
            self.pending
                .iter()
                .skip(1)
                .take_while(|p| p.dts.is_some())
                .count()
        };
        let mut samples = Vec::with_capacity(ready);
        for i in 0..ready {
            let dts = self.pending[i].dts.unwrap_or(0);
            let next = self.pending.get(i + 1).and_then(|p| p.dts);
            let duration = match next.or(next_dts) {
                Some(n) if n > dts && n.saturating_sub(dts) <= MAX_GAP => {
                    clamp_u32(n.saturating_sub(dts))
                }
                _ => self.last_duration,
            };
            self.last_duration = duration;
            samples.push((dts, duration));
        }
        let mut out = Vec::new();
        let taken: Vec<Pending> = self.pending.drain(..ready).collect();
        let mut start = 0;
        for i in 1..=taken.len() {
            if i == taken.len() || taken[i].is_key {
                out.push(Segment::Media(
                    self.fragment(&taken[start..i], &samples[start..i]),
                ));
                start = i;
            }
        }
        if let Some(&(dts, _)) = samples.last() {
            self.last_dts = Some(dts);
        }
        out
    }

    fn fragment(&mut self, samples: &[Pending], timing: &[(i64, u32)]) -> MediaSegment {
        self.sequence = self.sequence.wrapping_add(1);
        let base = timing[0].0.max(0) as u64;
        let mut w = BoxWriter::default();
        let moof = w.begin(b"moof");
        let mfhd = w.begin_full(b"mfhd", 0, 0);
        w.u32(self.sequence);
        w.end(mfhd);
        let traf = w.begin(b"traf");
        let tfhd = w.begin_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
        w.u32(TRACK_ID);
        w.end(tfhd);
        let tfdt = w.begin_full(b"tfdt", 1, 0);
        w.u64(base);
        w.end(tfdt);
        // data-offset, sample duration, size, flags, composition offset.
        let trun = w.begin_full(b"trun", 1, 0x00_0f01);
        w.u32(samples.len() as u32);
        let data_offset_at = w.buf.len();
        w.i32(0);
        for (s, &(dts, duration)) in samples.iter().zip(timing) {
            w.u32(duration);
            w.u32(s.data.len() as u32);
            w.u32(if s.is_key {
                0x0200_0000 // sample_depends_on 2: depends on no other
            } else {
                0x0101_0000 // sample_depends_on 1, sample_is_non_sync_sample
            });
            w.i32(clamp_i32(s.pts.saturating_sub(dts)));
        }
        w.end(trun);
        w.end(traf);
        w.end(moof);
        let data_offset = (w.buf.len() + 8) as i32;
        w.buf[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
        let payload: usize = samples.iter().map(|s| s.data.len()).sum();
        w.u32((payload + 8) as u32);
        w.bytes(b"mdat");
        for s in samples {
            w.bytes(&s.data);
        }
        MediaSegment {
            data: w.buf.into(),
            sequence: self.sequence,
            base_decode_time: base,
            duration: timing.iter().map(|&(_, d)| u64::from(d)).sum(),
            samples: samples.len() as u32,
            starts_with_key: samples[0].is_key,
        }
    }
}

/// The init segment for `config`: `ftyp` (iso5, iso6) and a `moov` with
/// one video track (timescale 90 kHz, no samples) and `mvex`/`trex`.
pub fn init_segment(config: &TrackConfig) -> Bytes {
    let mut w = BoxWriter::default();
    w.ftyp(b"iso5", 0x200, &[b"iso5", b"iso6", b"mp41"]);
    let moov = w.begin(b"moov");
    w.mvhd(TIMESCALE, 0);
    let trak = w.begin(b"trak");
    w.tkhd(0, config);
    let (minf, mdia) = w.begin_mdia(TIMESCALE, 0);
    let stbl = w.begin(b"stbl");
    w.stsd(config);
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = w.begin_full(fourcc, 0, 0);
        w.u32(0);
        w.end(b);
    }
    let stsz = w.begin_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.end(stsz);
    w.end(stbl);
    w.end(minf);
    w.end(mdia);
    w.end(trak);
    let mvex = w.begin(b"mvex");
    let trex = w.begin_full(b"trex", 0, 0);
    w.u32(TRACK_ID);
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(0); // default_sample_flags
    w.end(trex);
    w.end(mvex);
    w.end(moov);
    w.buf.into()
}
