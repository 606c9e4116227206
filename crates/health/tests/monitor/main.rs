//! The health monitor with real workers' signals over a real SQLite file
//! (one test binary for the crate).

mod samples;
mod stuck_store;
