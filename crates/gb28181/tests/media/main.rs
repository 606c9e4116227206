//! The media path (RTP, RFC 4571 framing, PS) against real streams and
//! ffmpeg (one test binary).

mod common;
mod garbage;
mod ps_ffprobe;
mod ps_roundtrip;
mod receiver;
