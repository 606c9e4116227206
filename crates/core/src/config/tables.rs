//! TOML and JSON tables: reading a table as a type with the failing field
//! named, deep-merging a camera's table over the defaults, and converting
//! between the file's TOML and the API's JSON.

use crate::camera_error::CameraError;

/// Reads `value` as `T`; the error names the field.
pub(super) fn deserialize<T: serde::de::DeserializeOwned>(
    value: toml::Value,
) -> Result<T, CameraError> {
    serde_path_to_error::deserialize(value).map_err(CameraError::from_serde)
}

/// Deep-merges a camera's table over the defaults' table and reads the result.
pub(super) fn settings<T: serde::de::DeserializeOwned>(
    defaults: &toml::Table,
    camera: Option<&toml::Table>,
) -> Result<T, CameraError> {
    let mut merged = defaults.clone();
    if let Some(c) = camera {
        merge(&mut merged, c);
    }
    deserialize(toml::Value::Table(merged))
}

fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// JSON to TOML for a camera definition: `null` members are left out (the
/// field is absent); `Err` names a path where `null` cannot be left out.
pub(super) fn json_to_toml(
    v: &serde_json::Value,
    path: &str,
) -> Result<Option<toml::Value>, String> {
    use serde_json::Value as J;
    Ok(Some(match v {
        J::Null => return Ok(None),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match json_to_toml(item, &format!("{path}[{i}]"))? {
                    Some(v) => out.push(v),
                    None => return Err(format!("{path}[{i}]")),
                }
            }
            toml::Value::Array(out)
        }
        J::Object(map) => {
            let mut t = toml::Table::new();
            for (k, item) in map {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(v) = json_to_toml(item, &at)? {
                    t.insert(k.clone(), v);
                }
            }
            toml::Value::Table(t)
        }
    }))
}

/// TOML to JSON (dates become strings).
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
