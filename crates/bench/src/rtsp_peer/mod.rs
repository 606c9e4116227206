//! The light RTSP peer (`xueliang-rtsp-peer`): one clip read once, cut into
//! access units and packetized into RTP once; each client gets a copy of the
//! prepared bytes with its own sequence numbers, time stamps and SSRC.
//!
//! - [`clip`]: the clip from `ffprobe`/`ffmpeg`, its access units and their
//!   RTP packets (RFC 6184 for H.264, RFC 7798 for H.265);
//! - [`rtsp`]: RTSP/1.0 requests and responses, without I/O;
//! - [`session`]: one client connection, from OPTIONS to TEARDOWN, pacing
//!   the frames in real time.

pub mod clip;
pub mod rtsp;
pub mod session;
