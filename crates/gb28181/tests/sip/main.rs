//! The SIP server against sipp as the device (one test binary).

mod alarm;
mod alarm_subscription;
mod bad_input;
mod cascade;
mod cascade_playback;
mod cascade_video;
mod catalog;
mod catalog_subscription;
mod common;
mod invite;
mod register;
