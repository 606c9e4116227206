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
mod params;
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
    /// A header was parsed once: garbage before that is where a stream was
    /// joined, not an error.
    synced_once: bool,
    /// Inside the body of a packet whose header was parsed.
    body: Option<Body>,
    video_stream: Option<u8>,
    /// The last PSM's (stream id, stream type) entries.
    stream_map: Vec<(u8, u8)>,
    units: UnitAssembler,
    ready: VecDeque<AccessUnit>,
    ended: bool,
    counters: Arc<MediaCounters>,
}

/// The rest of a packet, streamed rather than buffered whole.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// Video payload; `None`: a PES without length (allowed only in
    /// transport streams, sent by some devices anyway) that runs to the
    /// next packet start code.
    Video { remaining: Option<usize> },
    /// A packet the demuxer does not need (audio, private, padding, system
    /// header, other video streams).
    Skip { remaining: usize },
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
            body: None,
            video_stream: None,
            stream_map: Vec::new(),
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
        self.body = None;
        self.resyncing = true;
        self.units.note_loss(lost);
    }

    /// No more input will come: the unit in progress is complete.
    pub fn end_of_stream(&mut self) {
        self.ended = true;
    }

    fn step(&mut self) -> Step {
        if let Some(body) = self.body {
            return self.step_body(body);
        }
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
            pack::PACK_START => match pack::pack_header_len(data) {
                Parsed::Done(len) if data.len() < len => Parsed::Need,
                other => other,
            },
            pack::PROGRAM_END => Parsed::Done(4),
            pack::STREAM_MAP => match pack::packet_len(data) {
                Parsed::Done(len) if data.len() < len => Parsed::Need,
                Parsed::Done(len) => {
                    self.stream_map_packet(len);
                    Parsed::Done(len)
                }
                other => other,
            },
            id if pack::is_video_stream(id) && *self.video_stream.get_or_insert(id) == id => {
                self.video_header()
            }
            _ => match pack::packet_len(data) {
                Parsed::Done(len) => {
                    self.body = Some(Body::Skip { remaining: len - 6 });
                    Parsed::Done(6)
                }
                other => other,
            },
        };
        match parsed {
            Parsed::Need => Step::NeedMore,
            Parsed::Bad => {
                self.lose_sync();
                self.body = None;
                self.pos += 1;
                Step::Progress
            }
            Parsed::Done(len) => {
                self.pos += len;
                self.resyncing = false;
                self.synced_once = true;
                Step::Progress
            }
        }
    }

    /// The header of a PES packet of the video stream; its payload streams
    /// in after it.
    fn video_header(&mut self) -> Parsed<usize> {
        self.update_stream_codec();
        let data = &self.input[self.pos..];
        let len = match pack::packet_len(data) {
            Parsed::Done(len) => len,
            other => return other,
        };
        let open_ended = len == 6;
        let visible = if open_ended {
            data
        } else {
            &data[..len.min(data.len())]
        };
        let complete = self.ended || (!open_ended && data.len() >= len);
        let header = match pes::parse(visible, complete) {
            Parsed::Done(header) => header,
            Parsed::Need => return Parsed::Need,
            Parsed::Bad => return Parsed::Bad,
        };
        let remaining = (!open_ended).then(|| len - header.payload_start);
        self.units.begin_pes(header.pts);
        self.body = Some(Body::Video { remaining });
        Parsed::Done(header.payload_start)
    }

    /// Moves through the body of the current packet.
    fn step_body(&mut self, body: Body) -> Step {
        let data = &self.input[self.pos..];
        let (take, rest) = match body {
            Body::Video { remaining: Some(r) } | Body::Skip { remaining: r } => {
                let take = r.min(data.len());
                (take, (r > take).then(|| r - take))
            }
            Body::Video { remaining: None } => match pack::find_packet_start(data, 0) {
                Some(end) => (end, None),
                None if self.ended => (data.len(), None),
                // Keep three bytes back: they may begin the next start code.
                None => (data.len().saturating_sub(3), Some(0)),
            },
        };
        if take == 0 && rest.is_some() {
            return Step::NeedMore;
        }
        if let Body::Video { .. } = body {
            self.units.append(&data[..take], &mut self.ready);
        }
        self.pos += take;
        self.body = match (body, rest) {
            (_, None) => None,
            (Body::Video { remaining: None }, Some(_)) => Some(body),
            (Body::Video { .. }, Some(r)) => Some(Body::Video { remaining: Some(r) }),
            (Body::Skip { .. }, Some(r)) => Some(Body::Skip { remaining: r }),
        };
        Step::Progress
    }

    /// A whole PSM packet of `len` bytes at `pos`.
    fn stream_map_packet(&mut self, len: usize) {
        match psm::parse(&self.input[self.pos..self.pos + len]) {
            Some(map) => {
                self.stream_map = map;
                self.update_stream_codec();
            }
            None => self.counters.bump(Counter::PsErrors),
        }
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
