//! The input: one compressed access unit as ingest yields it.

use bytes::Bytes;
use xueliang_core::{EncodedFrame, VideoCodec};

/// Ticks per second of every timestamp in this crate, and of the MP4
/// tracks it writes: the RTP video clock.
pub const TIMESCALE: u32 = 90_000;

/// One access unit, Annex B framed as ingest yields it (parameter sets
/// in-band before every key frame), in decode order.
///
/// `pts` is in 90 kHz ticks, not seconds: MP4 timestamps are integers in
/// the track's timescale, and converting once at the edge keeps DTS,
/// durations and offsets exact (no float drift over hours, no two samples
/// rounding to one tick); 90 kHz is the RTP clock cameras stamp frames
/// with, so nothing is lost. [`Sample::from_seconds`] converts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub codec: VideoCodec,
    /// Annex B bytes. `Bytes`, so that clips taken from a
    /// [`crate::PacketRing`] share the ring's buffers.
    pub data: Bytes,
    pub is_key: bool,
    /// Presentation time, 90 kHz ticks, on one timeline for the stream.
    pub pts: i64,
}

impl Sample {
    pub fn new(codec: VideoCodec, data: impl Into<Bytes>, is_key: bool, pts: i64) -> Sample {
        Sample {
            codec,
            data: data.into(),
            is_key,
            pts,
        }
    }

    /// With the presentation time in seconds (ingest's `stream_time`).
    pub fn from_seconds(
        codec: VideoCodec,
        data: impl Into<Bytes>,
        is_key: bool,
        seconds: f64,
    ) -> Sample {
        Sample::new(codec, data, is_key, ticks_from_seconds(seconds))
    }
}

impl From<EncodedFrame> for Sample {
    /// Takes the frame's buffer without copying it.
    fn from(frame: EncodedFrame) -> Sample {
        Sample::from_seconds(frame.codec, frame.data, frame.is_key, frame.stream_time)
    }
}

/// Seconds to 90 kHz ticks, rounded; NaN is 0, infinities saturate.
pub fn ticks_from_seconds(seconds: f64) -> i64 {
    // `as` saturates and maps NaN to 0.
    (seconds * f64::from(TIMESCALE)).round() as i64
}

/// 90 kHz ticks to seconds.
pub fn seconds_from_ticks(ticks: i64) -> f64 {
    ticks as f64 / f64::from(TIMESCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_ticks() {
        assert_eq!(ticks_from_seconds(0.04), 3600);
        assert_eq!(ticks_from_seconds(1.0 / 30.0), 3000);
        assert_eq!(ticks_from_seconds(f64::NAN), 0);
        assert_eq!(ticks_from_seconds(f64::INFINITY), i64::MAX);
        assert_eq!(seconds_from_ticks(45_000), 0.5);
    }
}
