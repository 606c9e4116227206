//! Frames as they move between stages: encoded (ingest -> decode) and decoded
//! (decode -> detect -> analytics), and the seam ingest pushes into.

use crate::camera::CameraRef;
use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }
}

/// One access unit from a camera, Annex B framed, with parameter sets before
/// every key frame (so a decoder can start at any key frame).
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub camera: CameraRef,
    pub codec: VideoCodec,
    pub data: Vec<u8>,
    pub is_key: bool,
    /// The stream's parameters (resolution, codec config) changed with this frame:
    /// the decoder must be rebuilt.
    pub new_parameters: bool,
    /// Presentation time in seconds since the start of the session.
    pub stream_time: f64,
    /// Wall-clock time the frame was received.
    pub received_at: DateTime<Utc>,
}

/// What a [`FrameSink`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Accepted,
    /// The queue was full; the frame was dropped (and the decoder will wait for
    /// the next key frame so it never decodes from a broken reference).
    Dropped,
    /// The consumer is gone (shutting down).
    Closed,
}

/// Where an ingest worker hands encoded frames. Never blocks.
pub trait FrameSink: Send + Sync {
    fn push(&self, frame: EncodedFrame) -> PushOutcome;
    /// The session restarted: the consumer must forget decoder state and wait for
    /// a key frame.
    fn reset(&self, camera: &CameraRef);
}

/// How the detector wants its input picture made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Scale each axis independently to the model size.
    Stretch,
    /// Keep the aspect ratio, centre, pad with `fill`.
    Letterbox { fill: u8 },
}

/// The model's input picture size and how to fit a frame into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputGeometry {
    pub width: u32,
    pub height: u32,
    pub resize: ResizeMode,
}

impl InputGeometry {
    /// Where a `frame_w x frame_h` frame lands inside the model input:
    /// `(scale_x, scale_y, pad_x, pad_y, scaled_w, scaled_h)`.
    pub fn placement(&self, frame_w: u32, frame_h: u32) -> Placement {
        match self.resize {
            ResizeMode::Stretch => Placement {
                scale_x: self.width as f32 / frame_w as f32,
                scale_y: self.height as f32 / frame_h as f32,
                pad_x: 0,
                pad_y: 0,
                scaled_w: self.width,
                scaled_h: self.height,
            },
            ResizeMode::Letterbox { .. } => {
                let s =
                    (self.width as f32 / frame_w as f32).min(self.height as f32 / frame_h as f32);
                let scaled_w = ((frame_w as f32 * s).round() as u32).clamp(1, self.width);
                let scaled_h = ((frame_h as f32 * s).round() as u32).clamp(1, self.height);
                Placement {
                    scale_x: scaled_w as f32 / frame_w as f32,
                    scale_y: scaled_h as f32 / frame_h as f32,
                    pad_x: (self.width - scaled_w) / 2,
                    pad_y: (self.height - scaled_h) / 2,
                    scaled_w,
                    scaled_h,
                }
            }
        }
    }
}

/// How a frame was placed into the model input; maps boxes back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: u32,
    pub pad_y: u32,
    pub scaled_w: u32,
    pub scaled_h: u32,
}

impl Placement {
    /// Model-input pixel coordinates to frame pixel coordinates.
    pub fn to_frame(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x - self.pad_x as f32) / self.scale_x,
            (y - self.pad_y as f32) / self.scale_y,
        )
    }
}

/// The detector's input picture: packed RGB24, `width x height`, made by the
/// decode stage in one scaling pass from the decoder's planes.
#[derive(Clone, Debug)]
pub struct ModelInput {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub placement: Placement,
}

/// A decoded picture at the detection rate: the full-resolution I420 planes
/// (for snapshots and the picture checks) and the model input.
#[derive(Clone, Debug)]
pub struct DecodedFrame {
    pub camera: CameraRef,
    pub width: u32,
    pub height: u32,
    /// I420, tightly packed: `y` is `width*height`, `u` and `v` are
    /// `ceil(width/2)*ceil(height/2)` each.
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// Full-range (JPEG) YCbCr rather than video range (16..235).
    pub full_range: bool,
    pub stream_time: f64,
    pub received_at: DateTime<Utc>,
    /// `None`: the picture is for the picture checks only (an idle camera's
    /// key frame with nothing to watch); the detector skips it.
    pub model_input: Option<ModelInput>,
    /// Crops the detector looks at besides the whole frame (region
    /// detection); empty for most cameras.
    pub regions: Vec<crate::regions::Region>,
}

impl DecodedFrame {
    /// A uniform video-range picture with a 1x1 model input: for tests and
    /// tools that feed the stages after detection.
    pub fn uniform(
        camera: CameraRef,
        width: u32,
        height: u32,
        luma: u8,
        received_at: DateTime<Utc>,
    ) -> Self {
        let chroma = (width.div_ceil(2) * height.div_ceil(2)) as usize;
        DecodedFrame {
            camera,
            width,
            height,
            y: vec![luma; (width * height) as usize],
            u: vec![128; chroma],
            v: vec![128; chroma],
            full_range: false,
            stream_time: 0.0,
            received_at,
            model_input: Some(ModelInput {
                width: 1,
                height: 1,
                rgb: vec![0; 3],
                placement: Placement {
                    scale_x: 1.0,
                    scale_y: 1.0,
                    pad_x: 0,
                    pad_y: 0,
                    scaled_w: 1,
                    scaled_h: 1,
                },
            }),
            regions: Vec::new(),
        }
    }

    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }
}

/// A decoded frame shared by the stages after detection.
pub type SharedFrame = Arc<DecodedFrame>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_maps_corners_back_to_frame_corners() {
        let g = InputGeometry {
            width: 300,
            height: 300,
            resize: ResizeMode::Stretch,
        };
        let p = g.placement(768, 576);
        assert_eq!(p.to_frame(0.0, 0.0), (0.0, 0.0));
        let (x, y) = p.to_frame(300.0, 300.0);
        assert!((x - 768.0).abs() < 1e-3 && (y - 576.0).abs() < 1e-3);
    }

    #[test]
    fn letterbox_centres_a_wide_frame_and_maps_back() {
        let g = InputGeometry {
            width: 640,
            height: 640,
            resize: ResizeMode::Letterbox { fill: 114 },
        };
        // 768x576 -> scale 640/768 = 0.8333: 640x480, padded 80 top and bottom.
        let p = g.placement(768, 576);
        assert_eq!(
            (p.scaled_w, p.scaled_h, p.pad_x, p.pad_y),
            (640, 480, 0, 80)
        );
        let (x, y) = p.to_frame(320.0, 80.0);
        assert!((x - 384.0).abs() < 1e-3 && y.abs() < 1e-3);
        let (x, y) = p.to_frame(640.0, 560.0);
        assert!((x - 768.0).abs() < 1e-3 && (y - 576.0).abs() < 1e-3);
    }

    #[test]
    fn letterbox_centres_a_tall_frame() {
        let g = InputGeometry {
            width: 64,
            height: 64,
            resize: ResizeMode::Letterbox { fill: 0 },
        };
        let p = g.placement(100, 200);
        assert_eq!((p.scaled_w, p.scaled_h, p.pad_x, p.pad_y), (32, 64, 16, 0));
        let (x, y) = p.to_frame(16.0, 64.0);
        assert!(x.abs() < 1e-3 && (y - 200.0).abs() < 1e-3);
    }
}
