//! Decoding on dedicated threads. A pool of decode threads, sized to the cores,
//! holds the cameras' decoders (each camera is pinned to one thread, so its
//! decoder state never moves). Ingest pushes encoded frames into a bounded
//! queue per thread without blocking; a full queue drops the frame and makes
//! that camera's decoder wait for the next key frame.
//!
//! At the camera's detection rate a decoded frame is copied out as I420 (for
//! snapshots) and scaled in one pass to the detector's input, then put in the
//! camera's latest-frame slot.
//!
//! Cost follows activity: while a camera shows no motion (judged from the
//! compressed frame sizes) and tracks nothing, only its key frames are
//! decoded; on motion onset the packets kept since the last key frame are
//! decoded to catch up (see [`activity`]).
//!
//! Decoding runs on a hardware device (NVDEC, VA-API) where one is
//! configured and starts, in software otherwise (see [`hardware`]).
//!
//! Each camera's counters say how much of its decode thread's CPU went into
//! the decoder and how much into converting pictures (`decode_cpu_ns`,
//! `convert_cpu_ns`).

pub mod activity;
mod convert;
mod cpu_split;
pub mod hardware;
#[cfg(test)]
mod hardware_tests;
#[cfg(test)]
mod idle_tests;
mod key_motion;
mod motion_mask;
mod pacing;
mod pool;
mod replay;
#[cfg(test)]
mod test_clips;

pub use activity::ActivitySettings;
pub use convert::FrameConverter;
pub use hardware::HardwarePlan;
pub use pool::{CameraDecodeSpec, DecodePool};
pub use replay::{annexb_packets, ReplayDecoder};

/// Initialises FFmpeg once per process and keeps its logging quiet (decode
/// errors are counted per camera instead of printed per frame).
pub fn init() -> Result<(), ffmpeg_next::Error> {
    ffmpeg_next::init()?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    Ok(())
}
