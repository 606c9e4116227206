//! The per-camera ring of recent compressed samples that event clips are
//! cut from.

use crate::{ParameterSets, Sample};
use std::collections::VecDeque;
use xueliang_core::VideoCodec;

/// One stored sample and the parameter-set generation it belongs to.
#[derive(Debug)]
struct Entry {
    sample: Sample,
    generation: u64,
}

/// What the ring counts per sample beyond its bytes: the entry itself (the
/// `Sample` header, the `Bytes` handle, the generation).
pub const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>();

/// Recent samples of one camera in decode order, bounded by bytes.
///
/// The ring always starts at a key frame: when it is over its bound it
/// drops whole GOPs from the front. If the newest GOP alone is over the
/// bound, everything goes and the ring waits for the next key frame
/// (samples that arrive meanwhile are dropped and counted; they could not
/// be decoded anyway). A key frame whose PTS is not after every PTS stored
/// means the timeline restarted (a new camera session): the ring starts
/// over (what it held is counted as dropped).
///
/// Bytes are counted as each sample's data plus [`ENTRY_OVERHEAD`]. A
/// sample whose `Bytes` is a slice of a larger buffer keeps that buffer
/// alive: give the ring owned buffers (`Sample::from(EncodedFrame)` does).
#[derive(Debug)]
pub struct PacketRing {
    max_bytes: usize,
    entries: VecDeque<Entry>,
    bytes: usize,
    keys: usize,
    dropped: u64,
    waiting_for_key: bool,
    generation: u64,
    /// The codec and parameter sets of the newest key frame.
    current: Option<(VideoCodec, ParameterSets)>,
    max_pts: Option<i64>,
}

/// Samples taken from a [`PacketRing`] for one clip.
#[derive(Clone, Debug, Default)]
pub struct Clip {
    /// Decode order, the first a key frame; all with one set of parameter
    /// sets (ready for [`crate::write_mp4`]).
    pub samples: Vec<Sample>,
    /// The ring no longer held a key frame at or before `from_pts`: the
    /// clip starts later than asked, at the ring's first key frame.
    pub starts_late: bool,
    /// The parameter sets changed inside the range: the clip ends before
    /// the key frame at this PTS. `ring.clip(pts, to_pts)` gives the rest.
    pub cut_at: Option<i64>,
}

impl PacketRing {
    /// A ring that holds at most `max_bytes` (see the type's
    /// documentation for how they are counted).
    pub fn new(max_bytes: usize) -> PacketRing {
        PacketRing {
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            keys: 0,
            dropped: 0,
            waiting_for_key: true,
            generation: 0,
            current: None,
            max_pts: None,
        }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes held, counted as the bound counts them.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Samples dropped since the ring was made: pushed out by the bound,
    /// or never kept (before a key frame, or after a GOP too large for the
    /// bound).
    pub fn dropped_samples(&self) -> u64 {
        self.dropped
    }

    /// PTS of the oldest sample held (a key frame).
    pub fn first_pts(&self) -> Option<i64> {
        self.entries.front().map(|e| e.sample.pts)
    }

    /// Largest PTS held.
    pub fn last_pts(&self) -> Option<i64> {
        self.max_pts.filter(|_| !self.entries.is_empty())
    }

    /// Forgets everything (a new session whose timestamps start over).
    pub fn clear(&mut self) {
        self.dropped += self.entries.len() as u64;
        self.entries.clear();
        self.bytes = 0;
        self.keys = 0;
        self.waiting_for_key = true;
        self.max_pts = None;
    }

    /// Adds the next sample (decode order). Never fails and never blocks:
    /// it may drop old GOPs, or this sample.
    pub fn push(&mut self, sample: Sample) {
        if sample.is_key {
            if self.max_pts.is_some_and(|m| sample.pts <= m) {
                self.clear();
            }
            let sets = ParameterSets::from_annexb(sample.codec, &sample.data);
            let changed = match &self.current {
                None => true,
                Some((codec, _)) if *codec != sample.codec => true,
                Some((_, old)) if !sets.is_empty() => sets.merged_over(old) != *old,
                Some(_) => false,
            };
            if changed {
                self.generation += 1;
                let sets = match &self.current {
                    Some((codec, old)) if *codec == sample.codec => sets.merged_over(old),
                    _ => sets,
                };
                self.current = Some((sample.codec, sets));
            }
            self.waiting_for_key = false;
        }
        if self.waiting_for_key {
            self.dropped += 1;
            return;
        }
        self.bytes += sample.data.len() + ENTRY_OVERHEAD;
        self.keys += usize::from(sample.is_key);
        self.max_pts = Some(self.max_pts.map_or(sample.pts, |m| m.max(sample.pts)));
        self.entries.push_back(Entry {
            sample,
            generation: self.generation,
        });
        while self.bytes > self.max_bytes {
            if self.keys <= 1 {
                // The newest GOP alone is over the bound.
                self.clear();
                return;
            }
            self.drop_front_gop();
        }
    }

    fn drop_front_gop(&mut self) {
        let mut first = true;
        while let Some(front) = self.entries.front() {
            if front.sample.is_key && !first {
                break;
            }
            first = false;
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.sample.data.len() + ENTRY_OVERHEAD;
                self.keys -= usize::from(e.sample.is_key);
                self.dropped += 1;
            }
        }
    }

    /// The samples for a clip of `from_pts..=to_pts` (90 kHz ticks): from
    /// the last key frame at or before `from_pts` (or the ring's first key
    /// frame, with `starts_late`, when older data is gone) through the last
    /// sample, in decode order, whose PTS is at most `to_pts` (B-frames'
    /// references after it in presentation come along). Clones share the
    /// ring's buffers.
    ///
    /// A clip file has one set of parameter sets, so when they change
    /// inside the range the clip is cut before the key frame that changes
    /// them and `cut_at` says where: the part that starts where the caller
    /// asked (its pre-roll and the event's start) is the one returned; the
    /// rest is one more call away. `None` when the ring holds nothing in
    /// the range.
    pub fn clip(&self, from_pts: i64, to_pts: i64) -> Option<Clip> {
        if to_pts < from_pts {
            return None;
        }
        let start = self
            .entries
            .iter()
            .rposition(|e| e.sample.is_key && e.sample.pts <= from_pts);
        let starts_late = start.is_none();
        let start = start.unwrap_or(0);
        let mut end = self
            .entries
            .iter()
            .rposition(|e| e.sample.pts <= to_pts)
            .filter(|&end| end >= start)?;
        let generation = self.entries[start].generation;
        let mut cut_at = None;
        if let Some(change) = self
            .entries
            .range(start..=end)
            .position(|e| e.generation != generation)
        {
            let index = start + change;
            cut_at = Some(self.entries[index].sample.pts);
            end = index - 1;
        }
        Some(Clip {
            samples: self
                .entries
                .range(start..=end)
                .map(|e| e.sample.clone())
                .collect(),
            starts_late,
            cut_at,
        })
    }
}
