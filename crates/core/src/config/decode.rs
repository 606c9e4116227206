//! `[decode]`: decode threads, key-frames-only decoding of idle cameras, and
//! the hardware devices to decode on.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Decode threads shared by all cameras; 0 = one per core.
    pub threads: usize,
    /// While a camera is idle (no motion in the compressed stream, nothing
    /// tracked), decode and detect on its key frames only.
    pub idle_key_frames_only: bool,
    /// Seconds without motion or a tracked object before a camera is idle.
    pub idle_after_s: f64,
    /// FFmpeg hardware devices to decode on, tried in order; software
    /// decoding is always the last resort (empty: software only).
    pub hwaccel: Vec<HwAccel>,
    /// The DRM render node VA-API opens; `None`: FFmpeg's default
    /// (`/dev/dri/renderD128`).
    pub vaapi_device: Option<PathBuf>,
}

/// An FFmpeg hardware device type that decodes H.264 and H.265.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HwAccel {
    /// NVIDIA NVDEC (needs an NVIDIA GPU and its driver's `libcuda.so.1`).
    Cuda,
    /// VA-API (Intel and AMD GPUs; needs a render node and a VA driver).
    Vaapi,
}

impl HwAccel {
    pub const ALL: [HwAccel; 2] = [HwAccel::Cuda, HwAccel::Vaapi];

    pub fn as_str(self) -> &'static str {
        match self {
            HwAccel::Cuda => "cuda",
            HwAccel::Vaapi => "vaapi",
        }
    }
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            threads: 0,
            idle_key_frames_only: true,
            idle_after_s: 10.0,
            hwaccel: Vec::new(),
            vaapi_device: None,
        }
    }
}

impl DecodeConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(self.idle_after_s >= 1.0 && self.idle_after_s <= 3600.0) {
            return Err(format!(
                "field `idle_after_s`: must be in [1, 3600], got {}",
                self.idle_after_s
            ));
        }
        for (i, a) in self.hwaccel.iter().enumerate() {
            if self.hwaccel[..i].contains(a) {
                return Err(format!(
                    "field `hwaccel`: \"{}\" is listed twice",
                    a.as_str()
                ));
            }
        }
        if let Some(path) = &self.vaapi_device {
            if path.as_os_str().is_empty() || path.as_os_str().as_encoded_bytes().contains(&0) {
                return Err(format!(
                    "field `vaapi_device`: not a device path: {:?}",
                    path.display().to_string()
                ));
            }
        }
        Ok(())
    }
}
