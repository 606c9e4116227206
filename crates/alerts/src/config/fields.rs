//! Helpers every table's parser shares: reading one entry of a list with its
//! number and name in the message, ids, secrets given directly or through an
//! environment variable, and HTTP URLs.

use super::error::{err, AlertConfigError};
use xueliang_core::Secret;

/// Reads entry `i` (counted from 0) of the list `what` as `T`; the message
/// names the entry by number and by its `id`, `name` or `officer`.
pub(super) fn entry<T: serde::de::DeserializeOwned>(
    what: &str,
    i: usize,
    v: toml::Value,
) -> Result<T, AlertConfigError> {
    let name = v
        .get("id")
        .or_else(|| v.get("name"))
        .or_else(|| v.get("officer"))
        .and_then(|n| n.as_str())
        .map(|n| format!(" (`{n}`)"))
        .unwrap_or_default();
    T::deserialize(v)
        .map_err(|e| AlertConfigError(format!("{what} #{}{name}: {}", i + 1, e.message())))
}

pub(super) fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn secret_from(
    at: &str,
    field: &str,
    value: Option<Secret>,
    env: Option<String>,
) -> Result<Option<Secret>, AlertConfigError> {
    match (value, env) {
        (Some(_), Some(_)) => err(format!("{at}: give `{field}` or `{field}_env`, not both")),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => err(format!(
                "{at} field `{field}_env`: environment variable `{var}` is not set"
            )),
        },
        (None, None) => Ok(None),
    }
}

pub(super) fn http_url(at: &str, field: &str, s: &str) -> Result<url::Url, AlertConfigError> {
    let u =
        url::Url::parse(s).map_err(|e| AlertConfigError(format!("{at} field `{field}`: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return err(format!(
            "{at} field `{field}`: must be an http:// or https:// URL"
        ));
    }
    Ok(u)
}
