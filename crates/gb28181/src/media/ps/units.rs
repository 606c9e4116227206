//! Access-unit assembly: the video stream's PES payloads in, whole Annex B
//! access units out.
//!
//! Where a unit ends, from what devices send: Hikvision opens every frame
//! with a pack header and one PES per NAL unit (SPS, PPS, SEI, slice, big
//! slices over several PES), only the first with a PTS; Dahua writes a PTS
//! on every PES; ffmpeg fills 2 kB packs, so one PES ends a frame and
//! starts the next, and its PTS belongs to the frame that starts in it
//! (ISO/IEC 13818-1 2.4.3.7). So neither a pack header nor a PES with a new
//! PTS is a frame boundary. The NAL units are: a unit ends before a NAL
//! unit that starts a new access unit (first slice of a picture, parameter
//! set, delimiter, SEI; H.264 7.4.1.2.3, H.265 7.4.2.4.4) once it has a
//! slice. A unit takes the PTS of the PES it starts in; one that starts in
//! a PES whose PTS was taken keeps the time of the one before. A unit leaves
//! when the next one starts (one frame of latency) or at the end of the
//! stream. Without a PSM the codec is the one the first decisive NAL unit
//! header proves (see `nal::guess_codec`); a proof against the PSM wins.
//!
//! After a loss (and at the start, which may be mid-stream) units are
//! dropped until a key frame whose start is whole and that is not the rest
//! of the unit the loss fell into (same PTS, or no PTS in a stream that has
//! them, or no parameter sets in a stream whose key frames carry them: a
//! loss that took a key frame's first PES, PTS and all, leaves PES with the
//! next PTS behind when every PES has one). Its `lost_packets` says how
//! many packets went missing.

use super::params::{self, ParamCache};
use super::pes::PtsClock;
use super::psm::{STREAM_TYPE_H264, STREAM_TYPE_H265};
use crate::media::counters::{Counter, MediaCounters};
use crate::media::nal::{self, NalKind};
use std::collections::VecDeque;
use std::sync::Arc;
use xueliang_core::VideoCodec;
use xueliang_ingest::AccessUnit;

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

/// NAL header bytes needed to classify a NAL unit (H.265's
/// first_slice_segment_in_pic_flag is in its third byte).
const HEADER_BYTES: usize = 3;

/// The unit being assembled.
#[derive(Default)]
struct Unit {
    data: Vec<u8>,
    pts: Option<u64>,
    /// Where the search for NAL unit headers goes on.
    scanned: usize,
    has_slice: bool,
    /// The codec `scanned` and `has_slice` were found with.
    scanned_as: Option<VideoCodec>,
    /// Went over the size cap: dropped when it ends; meanwhile only the
    /// bytes not yet scanned are kept.
    oversized: bool,
}

/// The PTS of a PES, for the unit that starts in it.
struct PtsMark {
    pts: u64,
    /// Where the PES payload starts in the current unit's data.
    offset: usize,
}

pub(super) struct UnitAssembler {
    max_unit: usize,
    counters: Arc<MediaCounters>,
    unit: Unit,
    mark: Option<PtsMark>,
    stream_codec: StreamCodec,
    codec: Option<VideoCodec>,
    codec_changed: bool,
    params: ParamCache,
    clock: PtsClock,
    awaiting_key: bool,
    /// The PTS of the unit a loss fell into: its remains are not a new unit.
    poisoned_pts: Option<u64>,
    /// The stream carries PTS: a unit whose first PES has none is a
    /// fragment of one whose start was lost.
    seen_pts: bool,
    /// Whether the last key frame passed on carried its parameter sets: in
    /// a stream whose key frames do, one without them after a loss lost its
    /// start with them (with a PTS on every PES, its remains look fresh).
    keys_carry_params: Option<bool>,
    lost: u32,
}

impl UnitAssembler {
    pub(super) fn new(max_unit: usize, counters: Arc<MediaCounters>) -> Self {
        UnitAssembler {
            max_unit,
            counters,
            unit: Unit::default(),
            mark: None,
            stream_codec: StreamCodec::Unknown,
            codec: None,
            codec_changed: false,
            params: ParamCache::default(),
            clock: PtsClock::default(),
            awaiting_key: true,
            poisoned_pts: None,
            seen_pts: false,
            keys_carry_params: None,
            lost: 0,
        }
    }

    pub(super) fn set_stream_codec(&mut self, codec: StreamCodec) {
        if codec != self.stream_codec {
            if let StreamCodec::Unsupported(stream_type) = codec {
                tracing::debug!(
                    stream_type,
                    "PS video stream type is neither H.264 nor H.265"
                );
                self.counters.bump(Counter::PsErrors);
            }
            self.stream_codec = codec;
        }
    }

    /// A PES packet of the video stream begins; its payload follows
    /// through [`Self::append`].
    pub(super) fn begin_pes(&mut self, pts: Option<u64>) {
        let Some(pts) = pts else { return };
        self.seen_pts = true;
        if self.unit.data.is_empty() {
            self.unit.pts = Some(pts);
            self.mark = None;
        } else {
            self.mark = Some(PtsMark {
                pts,
                offset: self.unit.data.len(),
            });
        }
    }

    /// Payload bytes of the PES packet begun last.
    pub(super) fn append(&mut self, bytes: &[u8], out: &mut VecDeque<AccessUnit>) {
        let unit = &mut self.unit;
        if !unit.oversized && unit.data.len() + bytes.len() > self.max_unit {
            unit.oversized = true;
            self.counters.bump(Counter::PsErrors);
        }
        unit.data.extend_from_slice(bytes);
        self.scan(out, false);
        let unit = &mut self.unit;
        if unit.oversized && unit.scanned > 0 {
            let gone = unit.scanned;
            unit.data.drain(..gone);
            unit.scanned = 0;
            if let Some(mark) = &mut self.mark {
                mark.offset = mark.offset.saturating_sub(gone);
            }
        }
    }

    /// Packets were lost (or the stream restarted) before the next payload.
    pub(super) fn note_loss(&mut self, lost: u32) {
        self.lost = self.lost.saturating_add(lost);
        self.awaiting_key = true;
        let unit = std::mem::take(&mut self.unit);
        self.poisoned_pts = unit.pts;
        self.mark = None;
        if !unit.data.is_empty() {
            self.counters.bump(Counter::UnitsDropped);
        }
    }

    /// The end of the stream: the last unit is whole.
    pub(super) fn flush(&mut self, out: &mut VecDeque<AccessUnit>) {
        self.scan(out, true);
        let unit = std::mem::take(&mut self.unit);
        self.finish(unit, out);
    }

    /// Walks the NAL unit headers not seen yet, cutting units where a new
    /// one starts. `at_end`: no more bytes will come.
    fn scan(&mut self, out: &mut VecDeque<AccessUnit>, at_end: bool) {
        loop {
            let hint = self.codec_hint();
            let unit = &mut self.unit;
            if unit.scanned_as != hint {
                // The codec became known (PSM or proof): read it all again.
                unit.scanned_as = hint;
                unit.scanned = 0;
                unit.has_slice = false;
            }
            let Some(at) = nal::find_start_code(&unit.data, unit.scanned) else {
                unit.scanned = unit.scanned.max(unit.data.len().saturating_sub(2));
                return;
            };
            let available = unit.data.len() - (at + 3);
            if available < HEADER_BYTES && !at_end {
                unit.scanned = at;
                return;
            }
            let mut head = [0u8; HEADER_BYTES];
            let len = available.min(HEADER_BYTES);
            head[..len].copy_from_slice(&unit.data[at + 3..at + 3 + len]);
            let header = &head[..len];
            let cut = if at > 0 && unit.data[at - 1] == 0 {
                at - 1
            } else {
                at
            };
            let codec = match nal::guess_codec(header).filter(|g| hint != Some(*g)) {
                // A codec proven before any unit was decided (the rescan
                // below reads what came before again with it).
                Some(proven) if self.codec.is_none() => {
                    self.codec = Some(proven);
                    continue;
                }
                // The codec changed: what came before is of the old one.
                Some(proven) => {
                    self.cut(cut, out);
                    self.codec = Some(proven);
                    self.codec_changed = true;
                    self.params = ParamCache::default();
                    self.keys_carry_params = None;
                    continue;
                }
                None => match hint {
                    Some(codec) => codec,
                    None => {
                        self.unit.scanned = at + 3;
                        continue;
                    }
                },
            };
            let kind = NalKind::of(codec, header);
            // A unit that opens mid-NAL (the rest of one whose start was
            // lost) ends at the first access unit start too.
            let fragment = cut > 0 && !nal::starts_with_start_code(&self.unit.data);
            if kind.starts_access_unit() && (self.unit.has_slice || fragment) {
                self.cut(cut, out);
                continue;
            }
            self.unit.has_slice |= matches!(kind, NalKind::Slice { .. });
            self.unit.scanned = at + 3;
        }
    }

    fn codec_hint(&self) -> Option<VideoCodec> {
        match self.stream_codec {
            StreamCodec::Known(codec) if self.codec.is_none() => Some(codec),
            _ => self.codec,
        }
    }

    /// Ends the current unit before byte `at`; the rest starts the next.
    fn cut(&mut self, at: usize, out: &mut VecDeque<AccessUnit>) {
        let rest = self.unit.data.split_off(at);
        let pts = match self.mark.take() {
            Some(mark) if mark.offset <= at + 4 => Some(mark.pts),
            Some(mark) => {
                self.mark = Some(PtsMark {
                    pts: mark.pts,
                    offset: mark.offset - at,
                });
                None
            }
            None => None,
        };
        let scanned_as = self.codec_hint();
        let done = std::mem::replace(
            &mut self.unit,
            Unit {
                data: rest,
                pts,
                scanned_as,
                ..Unit::default()
            },
        );
        self.finish(done, out);
    }

    fn finish(&mut self, unit: Unit, out: &mut VecDeque<AccessUnit>) {
        if unit.data.is_empty() {
            return;
        }
        if unit.oversized {
            self.drop_unit();
            return;
        }
        let codec = match self.stream_codec {
            StreamCodec::Unsupported(_) => None,
            _ => self.codec_hint(),
        };
        let Some(codec) = codec else {
            self.drop_unit();
            return;
        };
        self.codec = Some(codec);
        let Some(picture) = params::picture(codec, unit.data, &mut self.params) else {
            // Parameter sets or SEI on their own: remembered, nothing to decode.
            return;
        };
        if self.awaiting_key {
            let fresh = match unit.pts {
                Some(pts) => Some(pts) != self.poisoned_pts,
                None => !self.seen_pts,
            };
            let params_whole = picture.carried_params || self.keys_carry_params != Some(true);
            if !(picture.is_key && picture.whole_start && fresh && params_whole) {
                self.drop_unit();
                return;
            }
            self.awaiting_key = false;
            self.poisoned_pts = None;
        }
        if picture.is_key {
            self.keys_carry_params = Some(picture.carried_params);
        }
        self.counters.bump(Counter::Units);
        out.push_back(AccessUnit {
            codec,
            data: picture.data,
            is_key: picture.is_key,
            new_parameters: picture.new_sps || std::mem::take(&mut self.codec_changed),
            stream_time: self.clock.seconds(unit.pts),
            lost_packets: std::mem::take(&mut self.lost),
        });
    }

    fn drop_unit(&mut self) {
        self.counters.bump(Counter::UnitsDropped);
        self.awaiting_key = true;
    }
}
