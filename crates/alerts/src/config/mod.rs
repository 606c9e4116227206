//! `[organisation]` (villages, grids, officers, duty roster, duty leaders) and
//! `[alerts]` (routes, channels, delivery settings), parsed from the tables the
//! core config hands over and validated with messages that name the field.
//!
//! One file per table: `directory.rs` (villages and officers), `roster.rs`
//! (duty roster and duty leaders), `organisation.rs` (`[organisation]` put
//! together, who is on duty), `channels.rs`, `routes.rs`, `alerts.rs`
//! (`[alerts]` put together); `setup.rs` reads both from the core config.
//! `error.rs` and `fields.rs` hold the error type and the helpers they share.

mod alerts;
mod channels;
mod directory;
mod error;
mod fields;
mod organisation;
mod roster;
mod routes;
mod setup;
#[cfg(test)]
mod tests;

pub use alerts::AlertsConfig;
pub use channels::{ChannelConfig, ChannelKind};
pub use directory::{Officer, Village, VillageView};
pub use error::AlertConfigError;
pub use organisation::Organisation;
pub use roster::{LeaderEntry, RosterEntry};
pub use routes::{Route, DEFAULT_ALARM_PRIORITY};
pub use setup::AlertSetup;
