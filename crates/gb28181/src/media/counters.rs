//! What one media receiver has seen: packets, losses and the input it had
//! to throw away. Shared through an `Arc` with whoever exports metrics;
//! each counter only grows.

use std::sync::atomic::{AtomicU64, Ordering};

/// One counter of [`MediaCounters`]. [`Counter::ALL`] with [`Counter::name`]
/// and [`Counter::help`] is what a metrics exporter iterates over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// RTP packets accepted (after the RTP header check).
    Packets,
    /// Bytes received on the media port, headers included.
    Bytes,
    /// RTP packets declared lost (sequence gaps the reorder buffer gave up on).
    Lost,
    /// RTP packets that arrived out of order but in time to be used.
    Reordered,
    /// RTP packets dropped as late (their place was already given up) or duplicate.
    Late,
    /// Datagrams or TCP frames that are not RTP (too short, wrong version,
    /// broken padding or extension).
    BadRtp,
    /// RFC 4571 framing lost on a TCP connection (zero or oversized length,
    /// a frame that is not RTP); counted once per resynchronisation.
    FramingErrors,
    /// MPEG-PS input skipped: bytes that are no start code, broken headers,
    /// unsupported stream types, oversized units. Once per resynchronisation.
    PsErrors,
    /// RTP packets whose SSRC is not the expected one (the SDP `y=` hint, or
    /// the stream the receiver locked onto).
    SsrcMismatch,
    /// Access units handed out.
    Units,
    /// Access units dropped: damaged by a loss, waiting for a key frame
    /// after one, unknown codec, or over the size cap.
    UnitsDropped,
}

impl Counter {
    pub const ALL: [Counter; 11] = [
        Counter::Packets,
        Counter::Bytes,
        Counter::Lost,
        Counter::Reordered,
        Counter::Late,
        Counter::BadRtp,
        Counter::FramingErrors,
        Counter::PsErrors,
        Counter::SsrcMismatch,
        Counter::Units,
        Counter::UnitsDropped,
    ];

    /// A short snake_case name, usable inside a metric name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Packets => "packets",
            Counter::Bytes => "bytes",
            Counter::Lost => "lost_packets",
            Counter::Reordered => "reordered_packets",
            Counter::Late => "late_packets",
            Counter::BadRtp => "bad_rtp_packets",
            Counter::FramingErrors => "framing_errors",
            Counter::PsErrors => "ps_errors",
            Counter::SsrcMismatch => "ssrc_mismatch_packets",
            Counter::Units => "units",
            Counter::UnitsDropped => "dropped_units",
        }
    }

    /// One line for a metric's HELP text.
    pub fn help(self) -> &'static str {
        match self {
            Counter::Packets => "RTP packets accepted",
            Counter::Bytes => "bytes received on media ports",
            Counter::Lost => "RTP packets lost (sequence gaps)",
            Counter::Reordered => "RTP packets received out of order and used",
            Counter::Late => "RTP packets dropped as late or duplicate",
            Counter::BadRtp => "datagrams or TCP frames that are not RTP",
            Counter::FramingErrors => "RFC 4571 framing resynchronisations on TCP",
            Counter::PsErrors => "MPEG-PS resynchronisations and unusable streams",
            Counter::SsrcMismatch => "RTP packets with an unexpected SSRC",
            Counter::Units => "access units delivered",
            Counter::UnitsDropped => "access units dropped (loss, no key frame yet, too big)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one receiver (or one demuxer used alone).
#[derive(Debug, Default)]
pub struct MediaCounters {
    values: [AtomicU64; Counter::ALL.len()],
}

impl MediaCounters {
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index()].load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, counter: Counter, n: u64) {
        if n > 0 {
            self.values[counter.index()].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_slot_and_name() {
        let counters = MediaCounters::default();
        for (i, c) in Counter::ALL.iter().enumerate() {
            counters.add(*c, i as u64 + 1);
        }
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(counters.get(*c), i as u64 + 1, "{c:?}");
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }
}
