//! The command line against real databases (one test binary for the crate).

mod camera;
mod migrate;
