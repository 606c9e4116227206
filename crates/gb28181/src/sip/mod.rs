//! SIP: the platform side of GB/T 28181 signalling. Devices register to
//! [`SipServer`] (digest auth, keepalives, catalog); the platform asks them
//! for live video with [`SipServer::invite`], which gives a [`Dialog`].
//! Upward, [`SipServer::start_upstream`] registers us to a superior
//! platform as a lower platform (cascade: [`upstream`], [`cascade`]),
//! sends it alarms ([`alarm`]; as NOTIFY in its alarm subscription when
//! it has one, [`alarm_subscription`]) and notifies its catalog
//! subscription of changes.
//!
//! Our own small SIP layer (see design/gb28181.md): [`message`] and
//! [`parse`] for the wire form, [`headers`] for the header values GB uses,
//! [`transaction`] for retransmissions and timeouts, [`transport`] for UDP
//! and TCP on one port.

pub mod alarm;
pub mod alarm_subscription;
mod auth_limit;
mod build;
pub mod cascade;
mod cascade_playback;
mod cascade_video;
mod catalog;
mod catalog_notify;
pub mod charset;
mod counters;
mod device;
mod dialog;
pub mod digest;
mod error;
pub mod headers;
mod inbox;
mod invite;
mod keepalive;
pub mod manscdp;
pub mod message;
pub mod parse;
mod record_info;
mod registrar;
pub mod sdp;
mod server;
mod settings;
mod subscribe;
mod subscription;
mod transaction;
mod transport;
pub mod upstream;

pub use counters::SipCounters;
pub use device::{DeviceEvent, DeviceInfo, OfflineReason};
pub use dialog::{Dialog, DialogEnd};
pub use error::{InviteError, SipError};
pub use manscdp::{Channel, ChannelStatus};
pub use registrar::gb_date;
pub use sdp::{MediaOffer, MediaTransport};
pub use server::SipServer;
pub use settings::{Accept, SipSettings};
pub use transport::SipTransport;
pub use upstream::UpstreamSettings;
