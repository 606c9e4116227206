//! Media: live video from a GB/T 28181 device, MPEG-PS over RTP.
//!
//! - [`rtp`]: RTP packet parsing (RFC 3550).
//! - [`reorder`]: sequence-order reordering with a bounded window; gaps
//!   declared lost after a short wait.
//! - [`tcp_framing`]: RTP over TCP, RFC 4571 framing.
//! - [`ps`]: a streaming MPEG program stream demuxer yielding H.264/H.265
//!   access units ([`xueliang_ingest::AccessUnit`]).
//! - [`MediaReceiver`] puts them together on one port from a [`PortPool`],
//!   over UDP or TCP (passive: the device connects), counting what it sees
//!   in [`MediaCounters`].
//! - [`mux`] and [`packetize`]: the sending side, a PS muxer shaped like
//!   the devices' and an RTP packetizer; [`upward`] sends a camera's video
//!   with them to a superior platform (cascade).
//! - [`testing`]: clips for the tests and the `gb28181-ps-send` tool.
//!
//! The crate's `fuzz/` directory holds cargo-fuzz targets for the parsers;
//! they need a nightly toolchain (`cargo +nightly fuzz run ps_demux`) and
//! are not part of the workspace or CI.

pub mod counters;
pub mod mux;
mod nal;
pub mod packetize;
mod ports;
pub mod ps;
mod receiver;
pub mod reorder;
pub mod rtp;
mod ssrc;
pub mod tcp_framing;
pub mod testing;
pub mod upward;

pub use counters::{Counter, MediaCounters};
pub use ports::{PortLease, PortPool};
pub use ps::PsDemuxer;
pub use receiver::{MediaError, MediaReceiver, MediaTransport, ReceiverSettings};
