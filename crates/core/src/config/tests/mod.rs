//! Tests of the configuration file, one file per concern: the whole file,
//! the sections, `[[cameras]]` tables, and cameras given as JSON.

use super::*;

mod camera;
mod camera_json;
mod file;
mod sections;

const MINIMAL: &str = r#"
[[cameras]]
id = "east-gate"
name = "东门"
url = "rtsp://127.0.0.1:8554/cam1"
"#;

fn err(text: &str) -> String {
    Config::parse(text).unwrap_err()
}
