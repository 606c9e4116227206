//! The store against real SQLite files (one test binary for the crate).

mod cameras;
mod concurrency;
mod conformance;
mod full_disk;
mod retention;
