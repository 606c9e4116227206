//! The API served on a free port over a real SQLite file (one test binary
//! for the crate).

mod access;
mod access_hardening;
mod api;
mod cluster;
mod common;
mod dashboard;
mod process_metrics;
