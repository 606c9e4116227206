//! The error of the `[organisation]` and `[alerts]` tables: a message naming
//! the table, entry and field.

/// A configuration mistake, naming the table, entry and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AlertConfigError(pub String);

pub(super) fn err<T>(msg: impl Into<String>) -> Result<T, AlertConfigError> {
    Err(AlertConfigError(msg.into()))
}
