//! The record crate against real streams (one test binary: the fixtures'
//! variants are encoded once and shared).

mod browser;
mod clip;
mod common;
mod fmp4;
mod garbage;
mod ring;
