//! A streaming MPEG program stream demuxer (ISO/IEC 13818-1 section 2.5) as
//! GB/T 28181 devices send it over RTP: pack headers (MPEG-2 with stuffing,
//! or MPEG-1), system headers, the program stream map, and PES packets of
//! one H.264 or H.265 video stream, reassembled into access units.
//! Audio and private streams are skipped.
//!
//! Bytes go in with [`PsDemuxer::push`] in pieces of any size (RTP
//! payloads, TCP reads, one byte at a time); units come out of
//! [`PsDemuxer::pop`]. Input that is not a program stream (broken headers,
//! garbage, the tail of a packet whose start was lost) is skipped up to the
//! next packet start code and counted once in [`Counter::PsErrors`]; the
//! demuxer never panics on input. How units are cut and what happens after
//! a loss: see `units.rs`.

mod pack;
mod pes;
mod psm;
mod units;

use crate::media::counters::{Counter, MediaCounters};
use pack::Parsed;
use std::collections::VecDeque;
use std::sync::Arc;
use units::{StreamCodec, UnitAssembler};
use xueliang_ingest::AccessUnit;

/// The largest access unit kept by default; bigger ones are dropped and
/// counted (a 4K H.265 key frame is well under 2 MiB).
pub const DEFAULT_MAX_UNIT: usize = 4 << 20;

pub struct PsDemuxer {
    input: Vec<u8>,
    /// Where unparsed input starts in `input`.
    pos: usize,
    /// Skipping to the next start code; the error was already counted.
    resyncing: bool,
    /// A whole packet was parsed once: garbage before that is where a
    /// stream was joined, not an error.
    synced_once: bool,
    /// For a video PES without a length: how far (from `pos`) the search
    /// for its end has got.
    open_pes_scan: Option<usize>,
    video_stream: Option<u8>,
    /// The last PSM's (stream id, stream type) entries.
    stream_map: Vec<(u8, u8)>,
    max_unit: usize,
    units: UnitAssembler,
    ready: VecDeque<AccessUnit>,
    ended: bool,
    counters: Arc<MediaCounters>,
}

enum Step {
    Progress,
    NeedMore,
}

impl Default for PsDemuxer {
    fn default() -> Self {
        PsDemuxer::new(Arc::default(), DEFAULT_MAX_UNIT)
    }
}

impl PsDemuxer {
    /// A demuxer counting into `counters`, dropping units over `max_unit`
    /// bytes.
    pub fn new(counters: Arc<MediaCounters>, max_unit: usize) -> Self {
        PsDemuxer {
            input: Vec::new(),
            pos: 0,
            resyncing: false,
            synced_once: false,
            open_pes_scan: None,
            video_stream: None,
            stream_map: Vec::new(),
            max_unit,
            units: UnitAssembler::new(max_unit, counters.clone()),
            ready: VecDeque::new(),
            ended: false,
            counters,
        }
    }

    pub fn counters(&self) -> &Arc<MediaCounters> {
        &self.counters
    }

    /// More of the stream. Nothing is parsed until [`PsDemuxer::pop`].
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.input.len() / 2 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The next whole access unit, or `None` until more input is pushed.
    pub fn pop(&mut self) -> Option<AccessUnit> {
        loop {
            if let Some(unit) = self.ready.pop_front() {
                return Some(unit);
            }
            if let Step::NeedMore = self.step() {
                if self.ended {
                    self.units.flush(&mut self.ready);
                    return self.ready.pop_front();
                }
                return None;
            }
        }
    }

    /// `lost` packets of the stream went missing just before the input that
    /// will be pushed next (0: the stream restarted). What is whole is kept
    /// for [`PsDemuxer::pop`]; the unit in progress and the bytes of the
    /// packet cut short are dropped, and units are dropped until a whole key
    /// frame, which carries the count.
    pub fn note_loss(&mut self, lost: u32) {
        while let Step::Progress = self.step() {}
        self.input.clear();
        self.pos = 0;
        self.open_pes_scan = None;
        self.resyncing = true;
        self.units.note_loss(lost);
    }

    /// No more input will come: the unit in progress is complete.
    pub fn end_of_stream(&mut self) {
        self.ended = true;
    }

    fn step(&mut self) -> Step {
        let data = &self.input[self.pos..];
        if data.len() < 4 {
            return Step::NeedMore;
        }
        if !(data[..3] == [0, 0, 1] && pack::is_packet_start(data[3])) {
            let skip = pack::find_packet_start(data, 1).unwrap_or(data.len() - 3);
            self.lose_sync();
            self.pos += skip;
            return Step::Progress;
        }
        let parsed = match data[3] {
            pack::PACK_START => pack::pack_header_len(data),
            pack::PROGRAM_END => Parsed::Done(4),
            id => match pack::packet_len(data) {
                Parsed::Done(6) if pack::is_video_stream(id) => self.open_pes(id),
                Parsed::Done(len) if data.len() < len => Parsed::Need,
                Parsed::Done(len) => {
                    self.packet(id, len);
                    Parsed::Done(len)
                }
                other => other,
            },
        };
        match parsed {
            Parsed::Need => Step::NeedMore,
            Parsed::Bad => {
                self.lose_sync();
                self.open_pes_scan = None;
                self.pos += 1;
                Step::Progress
            }
            Parsed::Done(len) => {
                self.pos += len;
                self.resyncing = false;
                self.synced_once = true;
                self.open_pes_scan = None;
                Step::Progress
            }
        }
    }

    /// A whole packet of `len` bytes at `pos` with stream id `id`.
    fn packet(&mut self, id: u8, len: usize) {
        let packet = &self.input[self.pos..self.pos + len];
        match id {
            pack::STREAM_MAP => match psm::parse(packet) {
                Some(map) => {
                    self.stream_map = map;
                    self.update_stream_codec();
                }
                None => self.counters.bump(Counter::PsErrors),
            },
            id if pack::is_video_stream(id) => {
                if *self.video_stream.get_or_insert(id) != id {
                    return;
                }
                self.update_stream_codec();
                let packet = &self.input[self.pos..self.pos + len];
                match pes::parse(packet, true) {
                    Parsed::Done(h) => {
                        let payload = &packet[h.payload_start..];
                        self.units.push_pes(h.pts, payload, &mut self.ready);
                    }
                    _ => self.counters.bump(Counter::PsErrors),
                }
            }
            // System header, audio, private and padding streams.
            _ => {}
        }
    }

    /// A video PES with length 0 (allowed only in transport streams, sent by
    /// some devices anyway): it runs to the next packet start code.
    fn open_pes(&mut self, id: u8) -> Parsed<usize> {
        let data = &self.input[self.pos..];
        let header = match pes::parse(data, false) {
            Parsed::Done(h) => h,
            Parsed::Need => return Parsed::Need,
            Parsed::Bad => return Parsed::Bad,
        };
        let from = self.open_pes_scan.unwrap_or(0).max(header.payload_start);
        let end = match pack::find_packet_start(data, from) {
            Some(end) => end,
            None if self.ended => data.len(),
            None if data.len() > self.max_unit => return Parsed::Bad,
            None => {
                self.open_pes_scan = Some(data.len().saturating_sub(3).max(from));
                return Parsed::Need;
            }
        };
        if *self.video_stream.get_or_insert(id) == id {
            self.update_stream_codec();
            let payload = &self.input[self.pos + header.payload_start..self.pos + end];
            self.units.push_pes(header.pts, payload, &mut self.ready);
        }
        Parsed::Done(end)
    }

    fn update_stream_codec(&mut self) {
        let Some(video) = self.video_stream else {
            return;
        };
        let stream_type = self
            .stream_map
            .iter()
            .find(|(id, _)| *id == video)
            .map(|(_, t)| *t);
        self.units
            .set_stream_codec(StreamCodec::from_stream_type(stream_type));
    }

    fn lose_sync(&mut self) {
        if !std::mem::replace(&mut self.resyncing, true) && self.synced_once {
            self.counters.bump(Counter::PsErrors);
        }
    }
}
