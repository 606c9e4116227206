//! The sending side of GB/T 28181 media, for tests and the
//! `gb28181-ps-send` tool: a clip read with `ffmpeg` and cut into access
//! units, and (from the library proper, where cascade uses them) the PS
//! muxer and RTP packetizer. Small and always compiled, so the tool and
//! integration tests share it.

mod clip;

pub use super::mux::{MuxOptions, PsMuxer};
pub use super::packetize::RtpPacketizer;
pub use clip::{split_access_units, Clip, ClipError};
