//! Why a stream or a sample cannot be muxed.

/// Why a stream or a sample cannot be muxed. Per-sample errors (from
/// [`crate::FragmentWriter::push`], [`crate::Frame::from_sample`]) leave the
/// writer as it was: the caller logs, counts and goes on with the next
/// sample.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// No SPS/PPS (and VPS for H.265) seen yet: wait for a key frame that
    /// carries them.
    #[error("no parameter sets yet (a key frame with SPS/PPS{} is needed)", if *.h265 { "/VPS" } else { "" })]
    NoParameterSets { h265: bool },
    /// A parameter set that cannot be parsed (truncated, out-of-range
    /// fields, or a feature the MP4 boxes cannot describe).
    #[error("bad {what}: {reason}")]
    BadParameterSet {
        what: &'static str,
        reason: &'static str,
    },
    /// Parameters this crate does not write (e.g. a picture wider than the
    /// sample entry's 16 bits).
    #[error("unsupported stream: {0}")]
    Unsupported(String),
    /// The sample's data has no Annex B start code.
    #[error("sample at pts {pts} is not Annex B framed (no start code)")]
    NotAnnexB { pts: i64 },
    /// Nothing left once parameter sets and delimiters are taken out.
    #[error("sample at pts {pts} has no picture data")]
    EmptySample { pts: i64 },
    /// One NAL unit larger than a 32-bit length prefix can say.
    #[error("sample at pts {pts} has a NAL unit over 4 GiB")]
    SampleTooLarge { pts: i64 },
    /// A clip must begin with a key frame.
    #[error("the first sample (pts {pts}) is not a key frame")]
    NotKeyFrame { pts: i64 },
    /// A sample of another codec than the track's.
    #[error("sample at pts {pts} is {found}, the track is {track}")]
    CodecChanged {
        pts: i64,
        track: &'static str,
        found: &'static str,
    },
    /// A clip file has one sample description: its parameter sets change at
    /// this sample (index into the slice given), so the clip must be cut
    /// there (see [`crate::PacketRing::clip`], which does).
    #[error("parameter sets change at sample {index} (pts {pts}); a clip holds one set")]
    ParametersChanged { index: usize, pts: i64 },
    /// A clip of no samples.
    #[error("no samples to write")]
    NoSamples,
    #[error("writing the MP4: {0}")]
    Io(#[from] std::io::Error),
}

impl MuxError {
    /// Whether later data of the same stream can succeed where this failed:
    /// waiting for a key frame with parameter sets, skipping a bad sample.
    /// `false` for errors about the stream's parameters themselves (they
    /// repeat until the camera's configuration changes) and for I/O.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MuxError::NoParameterSets { .. }
                | MuxError::NotAnnexB { .. }
                | MuxError::EmptySample { .. }
                | MuxError::SampleTooLarge { .. }
                | MuxError::NotKeyFrame { .. }
        )
    }
}
