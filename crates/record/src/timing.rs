//! Decode timestamps for samples given in decode order with presentation
//! times only (what RTP gives).
//!
//! A decoder that reorders by at most `R` frames outputs, after each decoded
//! frame, the smallest presentation time it holds once it holds more than
//! `R`. So the decode time of the i-th sample is taken as the i-th smallest
//! presentation time: monotonic, one frame duration apart for a steady
//! camera, and equal to the PTS when there are no B-frames. A B-frame's DTS
//! can then be above its PTS: the composition offset is signed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A frame's duration when nothing tells it (a lone sample): 40 ms, one
/// frame of a 25 fps (PAL-region) camera.
pub const DEFAULT_DURATION: u32 = 3_600;

/// Timing of one sample, 90 kHz ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleTiming {
    pub dts: i64,
    /// Until the next sample's DTS; the last one repeats the previous.
    pub duration: u32,
    /// PTS - DTS.
    pub composition_offset: i32,
}

/// Timing for samples in decode order, from their PTS, all of them known
/// (a clip). DTS strictly increase (equal PTS are pushed one tick apart);
/// `last_duration` is the last sample's duration when there is only one
/// sample (default [`DEFAULT_DURATION`]).
pub fn derive_timing(pts: &[i64], last_duration: Option<u32>) -> Vec<SampleTiming> {
    let mut sorted = pts.to_vec();
    sorted.sort_unstable();
    let mut dts: Vec<i64> = Vec::with_capacity(pts.len());
    for (i, &t) in sorted.iter().enumerate() {
        let d = match i {
            0 => t,
            _ => t.max(dts[i - 1].saturating_add(1)),
        };
        dts.push(d);
    }
    let mut out = Vec::with_capacity(pts.len());
    let mut previous = last_duration.unwrap_or(DEFAULT_DURATION);
    for i in 0..pts.len() {
        let duration = match dts.get(i + 1) {
            Some(next) => clamp_u32(next.saturating_sub(dts[i])),
            None => previous,
        };
        previous = duration;
        out.push(SampleTiming {
            dts: dts[i],
            duration,
            composition_offset: clamp_i32(pts[i].saturating_sub(dts[i])),
        });
    }
    out
}

pub(crate) fn clamp_u32(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

pub(crate) fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The same, one sample at a time (live view): the DTS of a sample is known
/// once `window` later samples have arrived (the reorder depth). When a
/// sample comes whose PTS is below a DTS already given out, the window was
/// too small: the DTS stays monotonic (that sample just gets a negative
/// offset) and the window grows by one for what follows.
#[derive(Debug)]
pub(crate) struct StreamingDts {
    window: usize,
    /// PTS not yet given out as a DTS.
    heap: BinaryHeap<Reverse<i64>>,
    last_dts: Option<i64>,
    /// Times the window grew.
    pub grown: u32,
}

/// How far the window may grow.
pub(crate) const MAX_WINDOW: usize = 16;

impl StreamingDts {
    pub fn new(window: usize) -> StreamingDts {
        StreamingDts {
            window: window.min(MAX_WINDOW),
            heap: BinaryHeap::new(),
            last_dts: None,
            grown: 0,
        }
    }

    #[cfg(test)]
    pub fn window(&self) -> usize {
        self.window
    }

    /// Takes the next sample's PTS; returns the DTS values now known, for
    /// the oldest samples without one, in decode order.
    pub fn push(&mut self, pts: i64) -> Vec<i64> {
        if self.last_dts.is_some_and(|d| pts < d) && self.window < MAX_WINDOW {
            self.window += 1;
            self.grown += 1;
        }
        self.heap.push(Reverse(pts));
        let mut out = Vec::new();
        while self.heap.len() > self.window {
            out.push(self.pop());
        }
        out
    }

    /// Gives out every remaining DTS (end of stream, or a parameter
    /// change).
    pub fn drain(&mut self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.heap.len());
        while !self.heap.is_empty() {
            out.push(self.pop());
        }
        out
    }

    fn pop(&mut self) -> i64 {
        let Reverse(t) = self.heap.pop().unwrap_or(Reverse(0));
        let dts = match self.last_dts {
            Some(last) => t.max(last.saturating_add(1)),
            None => t,
        };
        self.last_dts = Some(dts);
        dts
    }

    /// Continue from `last_dts` (after a drain, for a new segment of the
    /// timeline).
    pub fn set_last(&mut self, last_dts: Option<i64>) {
        self.last_dts = last_dts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: i64 = 3600;

    #[test]
    fn no_b_frames_dts_equals_pts() {
        let pts: Vec<i64> = (0..5).map(|i| i * F).collect();
        let t = derive_timing(&pts, None);
        for (i, s) in t.iter().enumerate() {
            assert_eq!(s.dts, pts[i]);
            assert_eq!(s.composition_offset, 0);
            assert_eq!(s.duration, F as u32);
        }
    }

    #[test]
    fn b_frames_get_monotonic_dts_and_offsets() {
        // I0 P3 B1 B2 P6 B4 B5 in decode order.
        let pts: Vec<i64> = [0, 3, 1, 2, 6, 4, 5].iter().map(|i| i * F).collect();
        let t = derive_timing(&pts, None);
        let dts: Vec<i64> = t.iter().map(|s| s.dts).collect();
        assert_eq!(dts, (0..7).map(|i| i * F).collect::<Vec<_>>());
        for (s, p) in t.iter().zip(&pts) {
            assert_eq!(s.dts + i64::from(s.composition_offset), *p);
            assert_eq!(s.duration, F as u32);
        }
        // The same one at a time with a window of 1 gives the same DTS.
        let mut live = StreamingDts::new(1);
        let mut got = Vec::new();
        for p in &pts {
            got.extend(live.push(*p));
        }
        got.extend(live.drain());
        assert_eq!(got, dts);
        assert_eq!(live.grown, 0);
    }

    #[test]
    fn a_window_too_small_stays_monotonic_and_grows() {
        // Pyramid: I0 P4 B2 b1 b3, reorder depth 2, given a window of 0.
        let pts: Vec<i64> = [0, 4, 2, 1, 3, 8, 6, 5, 7].iter().map(|i| i * F).collect();
        let mut live = StreamingDts::new(0);
        let mut got = Vec::new();
        for p in &pts {
            got.extend(live.push(*p));
        }
        got.extend(live.drain());
        assert_eq!(got.len(), pts.len());
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(live.window() >= 1);
    }

    #[test]
    fn equal_pts_and_the_last_duration() {
        let t = derive_timing(&[5, 5, 5], None);
        assert_eq!(t.iter().map(|s| s.dts).collect::<Vec<_>>(), vec![5, 6, 7]);
        assert_eq!(t[2].duration, 1);
        assert_eq!(derive_timing(&[9], Some(3000))[0].duration, 3000);
        assert_eq!(derive_timing(&[9], None)[0].duration, DEFAULT_DURATION);
        assert!(derive_timing(&[], None).is_empty());
        let huge = derive_timing(&[i64::MIN, i64::MAX], None);
        assert_eq!(huge[0].duration, u32::MAX);
    }
}
