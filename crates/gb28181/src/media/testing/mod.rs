//! The sending side of GB/T 28181 media, for tests and the
//! `gb28181-ps-send` tool: a clip read with `ffmpeg` and cut into access
//! units, a PS muxer shaped like what devices send, an RTP packetizer.
//! Small and always compiled, so the tool and integration tests share it.

mod clip;
mod mux;
mod packetize;

pub use clip::{split_access_units, Clip, ClipError};
pub use mux::{MuxOptions, PsMuxer};
pub use packetize::RtpPacketizer;
