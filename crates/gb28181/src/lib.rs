//! GB/T 28181 device access (2016 and 2022 editions): Xueliang as the
//! platform that cameras and NVRs register to over SIP, that asks them for
//! live video (INVITE) and receives it as MPEG-PS over RTP.
//!
//! - [`media`]: RTP over UDP and TCP (RFC 4571 framing), reordering, and a
//!   streaming MPEG-PS demuxer that yields H.264/H.265 access units.
//! - [`sip`]: the SIP side: registrar with digest authentication,
//!   keepalives, catalog, INVITE/BYE.
//! - [`GbAccess`]: both for the pipeline: a channel as a camera's frame
//!   source, and the device directory the API shows.

mod access;
pub mod media;
pub mod sip;

pub use access::{sip_settings, GbAccess, GbSession, GbSource};
