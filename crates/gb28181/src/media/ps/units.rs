//! Access-unit assembly: PES payloads of the video stream in, whole Annex B
//! access units out.
//!
//! Where a unit ends, from what devices send: Hikvision opens every frame
//! with a pack header and one PES per NAL unit (SPS, PPS, SEI, slice, big
//! slices over several PES), only the first with a PTS; Dahua and ffmpeg
//! write a PTS on a frame's first PES and split the rest by size, over
//! several packs. So a pack header is not a frame boundary. A unit ends
//! when a PES brings a different PTS, or when a PES opens with a NAL unit
//! that starts a new access unit (first slice of a picture, parameter set,
//! delimiter, SEI) while the unit already has a slice: that covers devices
//! that repeat one PTS or send none. The last unit leaves when the next one
//! starts (one frame of latency) or at the end of the stream.
//!
//! After a loss (and at the start, which may be mid-stream) units are
//! dropped until a key frame that is whole: it opens with a start code, its
//! first slice starts the picture and it is not the rest of the unit the
//! loss fell into (same PTS, or no PTS in a stream that has them). Its `lost_packets` says how many packets went missing.

use crate::media::counters::{Counter, MediaCounters};
use crate::media::nal::{self, NalKind, ParamKind};
use std::collections::VecDeque;
use std::sync::Arc;
use xueliang_core::VideoCodec;
use xueliang_ingest::AccessUnit;

use super::psm::{STREAM_TYPE_H264, STREAM_TYPE_H265};

/// Payload bytes [`UnitAssembler::begin_pes`] wants to see: a four-byte
/// start code and the first three bytes of a NAL unit.
pub(super) const PES_HEAD: usize = 7;

/// What the PSM says the video stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StreamCodec {
    /// No PSM seen, or the video stream is not in it: guess from NAL headers.
    Unknown,
    Known(VideoCodec),
    /// A type that is not H.264/H.265 (MPEG-4, SVAC, ...): nothing to decode.
    Unsupported(u8),
}

impl StreamCodec {
    pub(super) fn from_stream_type(stream_type: Option<u8>) -> StreamCodec {
        match stream_type {
            None => StreamCodec::Unknown,
            Some(STREAM_TYPE_H264) => StreamCodec::Known(VideoCodec::H264),
            Some(STREAM_TYPE_H265) => StreamCodec::Known(VideoCodec::H265),
            Some(other) => StreamCodec::Unsupported(other),
        }
    }
}

struct Pending {
    data: Vec<u8>,
    pts: Option<u64>,
    /// Bytes of `data` already searched for a slice.
    scanned: usize,
    has_slice: bool,
    /// Went over the size cap: its bytes were let go, it will be dropped.
    oversized: bool,
}

impl Pending {
    fn new(pts: Option<u64>) -> Self {
        Pending {
            data: Vec::new(),
            pts,
            scanned: 0,
            has_slice: false,
            oversized: false,
        }
    }

    /// Whether a slice NAL unit is in `data`, searching only new bytes.
    fn has_slice(&mut self, codec: VideoCodec) -> bool {
        while !self.has_slice {
            let Some(at) = nal::find_start_code(&self.data, self.scanned) else {
                self.scanned = self.data.len().saturating_sub(2);
                break;
            };
            let Some(header) = self.data.get(at + 3..).filter(|h| !h.is_empty()) else {
                self.scanned = at;
                break;
            };
            self.has_slice = matches!(NalKind::of(codec, header), NalKind::Slice { .. });
            self.scanned = at + 3;
        }
        self.has_slice
    }
}

/// The latest parameter sets, to put before key frames that lack them.
#[derive(Default)]
struct ParamCache {
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParamCache {
    fn slot(&mut self, kind: ParamKind) -> &mut Option<Vec<u8>> {
        match kind {
            ParamKind::Vps => &mut self.vps,
            ParamKind::Sps => &mut self.sps,
            ParamKind::Pps => &mut self.pps,
        }
    }

    fn needed(codec: VideoCodec) -> &'static [ParamKind] {
        match codec {
            VideoCodec::H264 => &[ParamKind::Sps, ParamKind::Pps],
            VideoCodec::H265 => &[ParamKind::Vps, ParamKind::Sps, ParamKind::Pps],
        }
    }

    /// Annex B of all the parameter sets `codec` needs, if all are known.
    fn annex_b(&mut self, codec: VideoCodec) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for &kind in Self::needed(codec) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(self.slot(kind).as_deref()?);
        }
        Some(out)
    }
}

/// 90 kHz PTS to seconds since the first unit, across the 33-bit wrap.
#[derive(Default)]
struct PtsClock {
    last: Option<u64>,
    ticks: i64,
    seconds: f64,
}

impl PtsClock {
    fn seconds(&mut self, pts: Option<u64>) -> f64 {
        const WRAP: u64 = 1 << 33;
        let Some(pts) = pts else {
            return self.seconds;
        };
        if let Some(last) = self.last {
            let diff = pts.wrapping_sub(last) & (WRAP - 1);
            let diff = if diff >= WRAP / 2 {
                diff as i64 - WRAP as i64
            } else {
                diff as i64
            };
            self.ticks += diff;
        }
        self.last = Some(pts);
        self.seconds = self.ticks as f64 / 90_000.0;
        self.seconds
    }
}

/// What one unit's NAL units say.
#[derive(Default)]
struct Summary {
    has_slice: bool,
    random_access: bool,
    /// The first slice is the first of its picture.
    starts_picture: bool,
    params: Vec<ParamKind>,
    new_sps: bool,
}

pub(super) struct UnitAssembler {
    max_unit: usize,
    counters: Arc<MediaCounters>,
    pending: Option<Pending>,
    stream_codec: StreamCodec,
    codec: Option<VideoCodec>,
    params: ParamCache,
    clock: PtsClock,
    awaiting_key: bool,
    /// The PTS of the unit a loss fell into: its remains are not a new unit.
    poisoned_pts: Option<u64>,
    /// The stream carries PTS: a unit whose first PES has none is a
    /// fragment of one whose start was lost.
    seen_pts: bool,
    lost: u32,
}

impl UnitAssembler {
    pub(super) fn new(max_unit: usize, counters: Arc<MediaCounters>) -> Self {
        UnitAssembler {
            max_unit,
            counters,
            pending: None,
            stream_codec: StreamCodec::Unknown,
            codec: None,
            params: ParamCache::default(),
            clock: PtsClock::default(),
            awaiting_key: true,
            poisoned_pts: None,
            seen_pts: false,
            lost: 0,
        }
    }

    pub(super) fn set_stream_codec(&mut self, codec: StreamCodec) {
        if codec != self.stream_codec {
            if let StreamCodec::Unsupported(stream_type) = codec {
                tracing::debug!(stream_type, "PS video stream type is neither H.264 nor H.265");
                self.counters.bump(Counter::PsErrors);
            }
            self.stream_codec = codec;
        }
    }

    /// A PES packet of the video stream begins; `head` is the start of its
    /// payload (up to [`PES_HEAD`] bytes, enough to see its first NAL unit
    /// header). The payload itself follows through [`Self::append`].
    pub(super) fn begin_pes(&mut self, pts: Option<u64>, head: &[u8], out: &mut VecDeque<AccessUnit>) {
        self.seen_pts |= pts.is_some();
        let hint = self.codec_hint();
        let ends_unit = match &mut self.pending {
            None => false,
            Some(p) if pts.is_some() && pts != p.pts => true,
            Some(p) => match hint {
                Some(codec) if !p.oversized => starts_access_unit(codec, head) && p.has_slice(codec),
                _ => false,
            },
        };
        if ends_unit {
            if let Some(done) = self.pending.take() {
                self.finish(done, out);
            }
        }
        self.pending.get_or_insert_with(|| Pending::new(pts));
    }

    /// Payload bytes of the PES packet begun last.
    pub(super) fn append(&mut self, bytes: &[u8]) {
        let Some(pending) = self.pending.as_mut().filter(|p| !p.oversized) else {
            return;
        };
        if pending.data.len() + bytes.len() > self.max_unit {
            pending.oversized = true;
            pending.data = Vec::new();
            self.counters.bump(Counter::PsErrors);
            return;
        }
        pending.data.extend_from_slice(bytes);
    }

    /// Packets were lost (or the stream restarted) before the next payload.
    pub(super) fn note_loss(&mut self, lost: u32) {
        self.lost = self.lost.saturating_add(lost);
        self.awaiting_key = true;
        if let Some(p) = self.pending.take() {
            self.poisoned_pts = p.pts;
            if !p.data.is_empty() || p.oversized {
                self.counters.bump(Counter::UnitsDropped);
            }
        }
    }

    /// The end of the stream: the last unit is whole.
    pub(super) fn flush(&mut self, out: &mut VecDeque<AccessUnit>) {
        if let Some(done) = self.pending.take() {
            self.finish(done, out);
        }
    }

    fn codec_hint(&self) -> Option<VideoCodec> {
        match self.stream_codec {
            StreamCodec::Known(codec) => Some(codec),
            _ => self.codec,
        }
    }

    fn finish(&mut self, unit: Pending, out: &mut VecDeque<AccessUnit>) {
        if unit.oversized {
            self.drop_unit();
            return;
        }
        let Some((codec, codec_changed)) = self.decide_codec(&unit.data) else {
            if !unit.data.is_empty() {
                self.counters.bump(Counter::UnitsDropped);
            }
            return;
        };
        let summary = self.summarise(codec, &unit.data);
        if !summary.has_slice {
            // Parameter sets or SEI on their own: remembered, nothing to decode.
            return;
        }
        let opens_cleanly = nal::starts_with_start_code(&unit.data);
        let mut data = unit.data;
        let has_all_params = ParamCache::needed(codec)
            .iter()
            .all(|k| summary.params.contains(k));
        let mut is_key = summary.random_access || has_all_params;
        if is_key && !has_all_params {
            match self.params.annex_b(codec) {
                Some(mut prefix) => {
                    let start = nal::find_start_code(&data, 0).unwrap_or(0);
                    prefix.extend_from_slice(&data[start..]);
                    data = prefix;
                }
                None => is_key = false,
            }
        }
        if self.awaiting_key {
            let fresh = match unit.pts {
                Some(pts) => Some(pts) != self.poisoned_pts,
                None => !self.seen_pts,
            };
            let clean = opens_cleanly && summary.starts_picture && fresh;
            if !(is_key && clean) {
                self.drop_unit();
                return;
            }
            self.awaiting_key = false;
            self.poisoned_pts = None;
        }
        self.counters.bump(Counter::Units);
        out.push_back(AccessUnit {
            codec,
            data,
            is_key,
            new_parameters: summary.new_sps || codec_changed,
            stream_time: self.clock.seconds(unit.pts),
            lost_packets: std::mem::take(&mut self.lost),
        });
    }

    fn drop_unit(&mut self) {
        self.counters.bump(Counter::UnitsDropped);
        self.awaiting_key = true;
    }

    /// The codec of a unit: what its parameter sets prove, else the PSM's,
    /// else the last one; and whether it changed. A change of codec forgets
    /// the parameter sets.
    fn decide_codec(&mut self, data: &[u8]) -> Option<(VideoCodec, bool)> {
        if let StreamCodec::Unsupported(_) = self.stream_codec {
            return None;
        }
        let proven = nal::nal_units(data).find_map(nal::guess_codec);
        let codec = match (proven, self.stream_codec) {
            (Some(codec), _) | (None, StreamCodec::Known(codec)) => codec,
            _ => self.codec?,
        };
        let changed = self.codec.is_some_and(|c| c != codec);
        if changed {
            self.params = ParamCache::default();
        }
        self.codec = Some(codec);
        Some((codec, changed))
    }

    fn summarise(&mut self, codec: VideoCodec, data: &[u8]) -> Summary {
        let mut s = Summary::default();
        for unit in nal::nal_units(data) {
            match NalKind::of(codec, unit) {
                NalKind::Slice {
                    random_access,
                    first_in_picture,
                } => {
                    if !s.has_slice {
                        s.starts_picture = first_in_picture;
                    }
                    s.has_slice = true;
                    s.random_access |= random_access;
                }
                NalKind::Param(kind) => {
                    let slot = self.params.slot(kind);
                    if slot.as_deref() != Some(unit) {
                        s.new_sps |= kind == ParamKind::Sps && slot.is_some();
                        *slot = Some(unit.to_vec());
                    }
                    s.params.push(kind);
                }
                NalKind::Leading | NalKind::Other => {}
            }
        }
        s
    }
}

/// Whether a PES payload opens with a NAL unit that starts an access unit.
fn starts_access_unit(codec: VideoCodec, payload: &[u8]) -> bool {
    if !nal::starts_with_start_code(payload) {
        return false;
    }
    nal::nal_units(payload)
        .next()
        .is_some_and(|first| NalKind::of(codec, first).starts_access_unit())
}
