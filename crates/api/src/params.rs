//! Query-string parsing with errors that name the parameter; unknown
//! parameters are refused so a typo does not silently widen a query.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::str::FromStr;

pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    pub fn new(map: HashMap<String, String>, known: &[&str]) -> Result<Params, ApiError> {
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_parameter(
                k,
                format!("unknown parameter (known: {})", known.join(", ")),
            ));
        }
        Ok(Params { map })
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.get(name) {
            Some(v) if v.is_empty() => Err(ApiError::bad_parameter(name, "must not be empty")),
            v => Ok(v.cloned()),
        }
    }

    pub fn parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T::Err: std::fmt::Display,
    {
        self.string(name)?
            .map(|v| v.parse::<T>().map_err(|e| ApiError::bad_parameter(name, e)))
            .transpose()
    }

    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.string(name)?
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::bad_parameter(
                            name,
                            format!("\"{v}\" is not an RFC 3339 time ({e})"),
                        )
                    })
            })
            .transpose()
    }
}
