//! MP4 for live view and event clips (used by crates/pipeline's media tap;
//! design/live-view.md): the camera's own H.264/H.265 access units remuxed
//! into MP4 without decoding or encoding anything. A pure library: no I/O but the `impl Write` a clip is
//! written to, no threads, no clocks.
//!
//! # Input
//!
//! A [`Sample`] is one access unit as ingest yields it: Annex B framed,
//! parameter sets in-band before every key frame, in decode order, with its
//! presentation time in 90 kHz ticks (`Sample::from(EncodedFrame)` and
//! [`Sample::from_seconds`] convert ingest's seconds). [`Frame::from_sample`]
//! turns it into what MP4 stores: NAL units with 4-byte length prefixes,
//! parameter sets and access unit delimiters taken out. The parameter sets
//! become a [`TrackConfig`]: picture size from the SPS (cropping applied,
//! emulation-prevention bytes removed before parsing), the `avcC`/`hvcC`
//! decoder configuration record (for H.265 with profile/tier/level, chroma
//! format and bit depths from the SPS and VPS/SPS/PPS arrays), and the MSE
//! codec string (`avc1.64001e`, `hvc1.1.6.L90.90`).
//!
//! # Timing
//!
//! RTP gives presentation times only. [`derive_timing`] makes decode times
//! for samples in decode order: the i-th DTS is the i-th smallest PTS (what
//! a reordering decoder outputs), so DTS are monotonic and equal the PTS
//! without B-frames; composition offsets are signed; a sample lasts until
//! the next DTS, the last one as long as the one before.
//!
//! # Live view: [`FragmentWriter`]
//!
//! Samples in, [`Segment`]s out: an init segment (`ftyp` iso5/iso6, `moov`
//! with `mvex`/`trex`, one video track, timescale 90 000), then media
//! segments (`moof` with `mfhd` sequence, `tfhd`, `tfdt`, `trun` version 1
//! with per-sample duration, size, flags and composition offset; `mdat`).
//! A key frame with different parameter sets (a resolution change) yields a
//! new [`Segment::Init`] carrying the new [`TrackConfig`]; sequence numbers
//! and decode time go on across it. A key frame always starts a media
//! segment, so viewers can join a shared stream at one. Headless Chromium
//! (Debian's) plays the segments through Media Source Extensions, with and
//! without B-frames (`tests/media/browser.rs`); it takes H.264 but not H.265
//! (`MediaSource.isTypeSupported` says no for `hvc1`), so the dashboard
//! shows H.265 cameras as decoded frames there.
//!
//! # Event clips: [`PacketRing`] and [`write_mp4`]
//!
//! Each camera's [`PacketRing`] keeps recent samples, bounded by bytes,
//! dropping whole GOPs from the front so it always starts at a key frame.
//! [`PacketRing::clip`] picks the samples from the last key frame at or
//! before the start of a range, and cuts at a parameter change.
//! [`write_mp4`] writes them as one MP4 with `moov` before `mdat`
//! (faststart), `ctts` version 0 and an edit list when there are B-frames.
//!
//! # Reading clips back: [`read_mp4`]
//!
//! The samples of a clip file as Annex B access units again (parameter sets
//! from the `avcC`/`hvcC` before each key frame), PTS in 90 kHz ticks from
//! the first presented frame: what GB/T 28181 playback sends upward.
//!
//! Memory: for the D1 test clip (704x576, 25 fps, about 1 Mb/s, 2 s GOP) a
//! ring that can start a clip 10 s before any moment (from the key frame at
//! or before it) needs 1.60 MB (1 602 172 bytes, 56 bytes of it per sample
//! overhead); 10 s of samples alone are at most 1.35 MB; the rest is the
//! GOP alignment. `tests/media/ring.rs` measures it (run it with `--nocapture`).
//!
//! Errors are [`MuxError`]; nothing here panics on bad input (the
//! property tests in `tests/media/garbage.rs` feed random and damaged streams).

mod annexb;
mod bits;
mod boxes;
mod config;
mod demux;
mod error;
mod fmp4;
mod h264;
mod h265;
mod mp4;
mod ring;
mod sample;
mod timing;

pub use annexb::{nal_units, Frame, NalUnits, ParameterSets};
pub use config::TrackConfig;
pub use demux::{read_mp4, DemuxError};
pub use error::MuxError;
pub use fmp4::{init_segment, FragmentWriter, InitSegment, MediaSegment, Segment};
pub use mp4::{write_mp4, ClipSummary};
pub use ring::{Clip, PacketRing, ENTRY_OVERHEAD};
pub use sample::{seconds_from_ticks, ticks_from_seconds, Sample, TIMESCALE};
pub use timing::{derive_timing, SampleTiming, DEFAULT_DURATION};
