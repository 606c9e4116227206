//! End-to-end tests: the real `xueliang` binary against the real GStreamer
//! RTSP server, the real model and a real SQLite file.

mod access;
mod alerts;
mod bad_input;
mod cameras;
mod cluster;
mod config;
mod dashboard;
mod deploy;
mod full_disk;
mod gb28181;
mod gb28181_cascade_gb_camera;
mod gb28181_cascade_video;
mod gb28181_two_nodes;
mod gb_alarms;
mod gb_playback;
mod gb_superior;
mod health;
mod live_view;
mod logs;
mod paths;
mod pipeline;
mod rules;
mod schemathesis;
