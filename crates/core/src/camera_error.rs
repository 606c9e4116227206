//! Why a camera definition (from the file or the API) was refused: the field
//! and a message. Its own module so that the parts of a camera (`config`,
//! `zones`) can both return it without depending on each other.

/// A camera definition that was refused: the field (`url`,
/// `detection.fps`, `zones.polygon`, ...) and what is wrong with it, as the
/// config file shows it after the camera's place. Never contains a password.
/// Parts of a camera (its `detection` table, its rules) are refused with the
/// field named inside that part; [`CameraError::within`] names the part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for CameraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CameraError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        CameraError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, of the field inside the table `table` (`fps` of
    /// `detection` -> `detection.fps`, message `detection: ...`).
    pub(crate) fn within(self, table: &str) -> Self {
        let field = if self.field.is_empty() {
            table.to_owned()
        } else {
            format!("{table}.{}", self.field)
        };
        CameraError {
            field,
            message: format!("{table}: {}", self.message),
        }
    }

    /// A value that does not fit the type: the field is where the
    /// deserializer was (empty at the top), named in the message like the
    /// checks' messages do (`field `fps`: invalid type: ...`).
    pub(crate) fn from_serde(e: serde_path_to_error::Error<toml::de::Error>) -> Self {
        let field = if e.path().iter().next().is_none() {
            String::new()
        } else {
            e.path().to_string()
        };
        let message = e.into_inner().message().trim_end().to_owned();
        let message = if field.is_empty() || message.contains(&format!("`{field}`")) {
            message
        } else {
            format!("field `{field}`: {message}")
        };
        CameraError { field, message }
    }
}
