//! Test clips made from the walkway footage (768x576, 10 fps, 2 s GOP) with
//! the `ffmpeg` CLI as raw Annex B (what retina hands the decoder), and a
//! camera decoder fed packet by packet.

use crate::activity::ActivitySettings;
use crate::hardware::HwDevice;
use crate::pool::CameraDecodeSpec;
use crate::replay::{annexb_packets, ReplayDecoder};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use xueliang_core::{
    CameraRef, CameraStats, DecodedFrame, EncodedFrame, InputGeometry, ResizeMode, VideoCodec,
};

pub const FPS: f64 = 10.0;
pub const GOP: usize = 20;

fn footage() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vtest-h264.mp4")
}

/// Runs the `ffmpeg` CLI on the footage with `args`, writing `out`.
pub fn ffmpeg(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(footage())
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg CLI (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg failed making {}", out.display());
}

/// A fresh directory for one test's clip (removed by [`packets`]).
pub fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xueliang-idle-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The footage as it is, in Annex B.
pub fn busy_clip(name: &str) -> PathBuf {
    let out = work_dir(name).join("clip.h264");
    ffmpeg(
        &["-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264"],
        &out,
    );
    out
}

/// The clip's packets as the ingest worker would push them.
pub fn packets(clip: &Path) -> Vec<EncodedFrame> {
    let camera = CameraRef {
        index: 0,
        id: Arc::from("walkway"),
    };
    let out = annexb_packets(clip, VideoCodec::H264, &camera, FPS, chrono::Utc::now()).unwrap();
    assert!(out.len() > 300, "{} packets", out.len());
    assert!(out[0].is_key && out[GOP].is_key && !out[1].is_key);
    std::fs::remove_dir_all(clip.parent().unwrap()).ok();
    out
}

/// One camera's decoder (5 detections a second, a 300x300 model input),
/// driven packet by packet.
pub struct Decoder {
    replay: ReplayDecoder,
    pub stats: Arc<CameraStats>,
}

impl Decoder {
    /// `device`: the hardware device its decode thread would hand it.
    pub fn new(device: Option<HwDevice>) -> Decoder {
        let stats = Arc::new(CameraStats::default());
        let spec = CameraDecodeSpec {
            camera: CameraRef {
                index: 0,
                id: Arc::from("walkway"),
            },
            stats: stats.clone(),
            detect_fps: 5.0,
            reduced_fps: 5.0,
            activity: ActivitySettings::default(),
            regions: Default::default(),
        };
        let geometry = InputGeometry {
            width: 300,
            height: 300,
            resize: ResizeMode::Stretch,
        };
        Decoder {
            replay: ReplayDecoder::on_device(spec, geometry, device),
            stats,
        }
    }

    /// Pushes one packet; returns the frames it handed on.
    pub fn push_frames(&mut self, p: EncodedFrame) -> Vec<DecodedFrame> {
        self.replay.push(p)
    }

    /// Pushes one packet; returns the frames it handed on: stream time, and
    /// whether it carries a model input (false: picture checks only).
    pub fn push(&mut self, p: EncodedFrame) -> Vec<(f64, bool)> {
        self.push_frames(p)
            .into_iter()
            .map(|f| (f.stream_time, f.model_input.is_some()))
            .collect()
    }

    pub fn decoded(&self) -> u64 {
        CameraStats::get(&self.stats.frames_decoded)
    }
}
