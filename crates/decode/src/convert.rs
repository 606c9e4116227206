//! From a decoded FFmpeg picture to owned I420 planes and the detector's RGB input.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling::{Context as Scaler, Flags};
use ffmpeg_next::util::frame::Video as VideoFrame;
use xueliang_core::frame::Placement;
use xueliang_core::{InputGeometry, ModelInput, ResizeMode};

/// Per-camera conversion state: scalers are cached and rebuilt only when the
/// source format or size changes.
///
/// The model input is made in two passes: scaling in YUV (4:2:0, full
/// size to the model's), then YUV to RGB at the model's size. swscale's
/// one pass that scales and converts at once costs 2.5-3 times as much
/// on a D1 picture (its output stage converts through its generic path);
/// the second pass here takes its unscaled SIMD path (docs/performance.md).
pub struct FrameConverter {
    geometry: InputGeometry,
    to_small_yuv: Pass,
    to_rgb: Pass,
    to_i420: Pass,
}

/// One swscale pass: the scaler for the current source and the picture it
/// writes (both rebuilt when the source's format or size changes).
struct Pass {
    scaler: Option<(ScalerKey, Scaler)>,
    out: VideoFrame,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct ScalerKey {
    format: Pixel,
    width: u32,
    height: u32,
    out_w: u32,
    out_h: u32,
    /// YUV to RGB from a full-range source whose format does not say so
    /// (NV12 from hardware decoders, YUV420P from HEVC): swscale is told.
    full_range_source: bool,
}

/// Owned I420 planes of a frame.
pub struct I420 {
    pub full_range: bool,
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl FrameConverter {
    /// The model input's size and fit.
    pub fn geometry(&self) -> InputGeometry {
        self.geometry
    }

    pub fn new(geometry: InputGeometry) -> Self {
        FrameConverter {
            geometry,
            to_small_yuv: Pass::default(),
            to_rgb: Pass::default(),
            to_i420: Pass::default(),
        }
    }

    /// Copies the picture out as tightly packed I420 (converting other
    /// formats, such as hardware decoders' NV12, without changing the range).
    pub fn i420(&mut self, src: &VideoFrame) -> Result<I420, ffmpeg_next::Error> {
        let (w, h) = (src.width(), src.height());
        let full_range = src.format() == Pixel::YUVJ420P || flagged_full_range(src);
        let planar = match src.format() {
            Pixel::YUV420P | Pixel::YUVJ420P => src,
            format => {
                let key = ScalerKey {
                    format,
                    width: w,
                    height: h,
                    out_w: w,
                    out_h: h,
                    full_range_source: false,
                };
                self.to_i420.run(key, Pixel::YUV420P, src)?
            }
        };
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Ok(I420 {
            full_range,
            width: w,
            height: h,
            y: packed_plane(planar, 0, w, h),
            u: packed_plane(planar, 1, cw, ch),
            v: packed_plane(planar, 2, cw, ch),
        })
    }

    /// Scales the picture to the model's input (RGB24), padding for
    /// letterbox.
    pub fn model_input(&mut self, src: &VideoFrame) -> Result<ModelInput, ffmpeg_next::Error> {
        let g = self.geometry;
        let placement: Placement = g.placement(src.width(), src.height());
        // Scaling keeps the samples' range: full-range pictures stay in the
        // JPEG variant, whose range swscale knows; others (NV12 and
        // YUV420P flagged full range included) keep their values, and the
        // flag goes to the conversion to RGB.
        let small_format = match src.format() {
            Pixel::YUVJ420P => Pixel::YUVJ420P,
            _ => Pixel::YUV420P,
        };
        let scale = ScalerKey {
            format: src.format(),
            width: src.width(),
            height: src.height(),
            out_w: placement.scaled_w,
            out_h: placement.scaled_h,
            full_range_source: false,
        };
        let small = self.to_small_yuv.run(scale, small_format, src)?;
        let convert = ScalerKey {
            format: small_format,
            width: placement.scaled_w,
            height: placement.scaled_h,
            out_w: placement.scaled_w,
            out_h: placement.scaled_h,
            // YUVJ420P says it is full range; swscale refuses being told.
            full_range_source: small_format != Pixel::YUVJ420P && flagged_full_range(src),
        };
        let scaled = self.to_rgb.run(convert, Pixel::RGB24, small)?;
        let fill = match g.resize {
            ResizeMode::Letterbox { fill } => fill,
            ResizeMode::Stretch => 0,
        };
        let row = g.width as usize * 3;
        let mut rgb = vec![fill; row * g.height as usize];
        let stride = scaled.stride(0);
        let data = scaled.data(0);
        let scaled_row = placement.scaled_w as usize * 3;
        let x0 = placement.pad_x as usize * 3;
        for y in 0..placement.scaled_h as usize {
            let dst = (y + placement.pad_y as usize) * row + x0;
            rgb[dst..dst + scaled_row].copy_from_slice(&data[y * stride..y * stride + scaled_row]);
        }
        Ok(ModelInput {
            width: g.width,
            height: g.height,
            rgb,
            placement,
        })
    }
}

impl Default for Pass {
    fn default() -> Self {
        Pass {
            scaler: None,
            out: VideoFrame::empty(),
        }
    }
}

impl Pass {
    /// Runs the pass on `src` (described by `key`) into `out` format; returns
    /// the picture written.
    fn run(
        &mut self,
        key: ScalerKey,
        out: Pixel,
        src: &VideoFrame,
    ) -> Result<&VideoFrame, ffmpeg_next::Error> {
        if self.scaler.as_ref().is_none_or(|(k, _)| *k != key) {
            let mut scaler = Scaler::get(
                key.format,
                key.width,
                key.height,
                out,
                key.out_w,
                key.out_h,
                Flags::BILINEAR,
            )?;
            if key.full_range_source && !crate::hardware::set_full_range_source(&mut scaler) {
                return Err(ffmpeg_next::Error::InvalidData);
            }
            self.scaler = Some((key, scaler));
            // The old picture has the old size or format: the scaler
            // allocates a new one.
            self.out = VideoFrame::empty();
        }
        let (_, scaler) = self.scaler.as_mut().expect("just set");
        scaler.run(src, &mut self.out)?;
        Ok(&self.out)
    }
}

fn flagged_full_range(frame: &VideoFrame) -> bool {
    frame.color_range() == ffmpeg_next::util::color::Range::JPEG
}

fn packed_plane(frame: &VideoFrame, plane: usize, width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let stride = frame.stride(plane);
    let data = frame.data(plane);
    let mut out = Vec::with_capacity(w * h);
    for row in 0..h {
        out.extend_from_slice(&data[row * stride..row * stride + w]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stretched(width: u32, height: u32) -> InputGeometry {
        InputGeometry {
            width,
            height,
            resize: ResizeMode::Stretch,
        }
    }

    fn letterboxed(width: u32, height: u32) -> InputGeometry {
        InputGeometry {
            width,
            height,
            resize: ResizeMode::Letterbox { fill: 114 },
        }
    }

    /// A synthetic YUV420P picture: left half white, right half black.
    fn half_white(w: u32, h: u32) -> VideoFrame {
        let mut f = VideoFrame::new(Pixel::YUV420P, w, h);
        let stride = f.stride(0);
        for y in 0..h as usize {
            for x in 0..w as usize {
                f.data_mut(0)[y * stride + x] = if (x as u32) < w / 2 { 235 } else { 16 };
            }
        }
        for p in 1..3 {
            let s = f.stride(p);
            for y in 0..h.div_ceil(2) as usize {
                for x in 0..w.div_ceil(2) as usize {
                    f.data_mut(p)[y * s + x] = 128;
                }
            }
        }
        f
    }

    /// A picture with a luma ramp across and chroma ramps down, in `format`
    /// (YUV420P, YUVJ420P or NV12: the same samples, planar or interleaved).
    fn ramps(format: Pixel, w: u32, h: u32) -> VideoFrame {
        let mut f = VideoFrame::new(format, w, h);
        let stride = f.stride(0);
        for y in 0..h as usize {
            for x in 0..w as usize {
                f.data_mut(0)[y * stride + x] = 16 + (x * 219 / (w as usize - 1)) as u8;
            }
        }
        let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        let u = |y: usize| 64 + (y * 128 / ch) as u8;
        let v = |y: usize| 192 - (y * 128 / ch) as u8;
        if format == Pixel::NV12 {
            let s = f.stride(1);
            for y in 0..ch {
                for x in 0..cw {
                    f.data_mut(1)[y * s + 2 * x] = u(y);
                    f.data_mut(1)[y * s + 2 * x + 1] = v(y);
                }
            }
        } else {
            for (p, value) in [(1, &u as &dyn Fn(usize) -> u8), (2, &v)] {
                let s = f.stride(p);
                for y in 0..ch {
                    for x in 0..cw {
                        f.data_mut(p)[y * s + x] = value(y);
                    }
                }
            }
        }
        f
    }

    fn max_difference(a: &[u8], b: &[u8]) -> u8 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn nv12_from_a_hardware_decoder_converts_like_the_same_picture_in_yuv420p() {
        crate::init().unwrap();
        let g = letterboxed(96, 96);
        let planar = ramps(Pixel::YUV420P, 162, 91);
        let nv12 = ramps(Pixel::NV12, 162, 91);
        let (mut a, mut b) = (FrameConverter::new(g), FrameConverter::new(g));
        let (pa, pb) = (a.i420(&planar).unwrap(), b.i420(&nv12).unwrap());
        assert_eq!((pb.width, pb.height, pb.full_range), (162, 91, false));
        assert!(
            pa.y == pb.y && pa.u == pb.u && pa.v == pb.v,
            "I420 planes differ"
        );
        let (ma, mb) = (
            a.model_input(&planar).unwrap(),
            b.model_input(&nv12).unwrap(),
        );
        assert_eq!(ma.placement, mb.placement);
        let d = max_difference(&ma.rgb, &mb.rgb);
        assert!(d <= 2, "model input differs by {d}");
    }

    #[test]
    fn full_range_nv12_goes_to_the_model_like_yuvj420p() {
        crate::init().unwrap();
        let g = stretched(64, 64);
        let jpeg = ramps(Pixel::YUVJ420P, 128, 64);
        let mut full = ramps(Pixel::NV12, 128, 64);
        full.set_color_range(ffmpeg_next::util::color::Range::JPEG);
        let limited = ramps(Pixel::NV12, 128, 64);
        let mut c = FrameConverter::new(g);
        let want = c.model_input(&jpeg).unwrap().rgb;
        // Decoders flag yuvj frames as full range too: told twice, no change.
        let mut flagged = ramps(Pixel::YUVJ420P, 128, 64);
        flagged.set_color_range(ffmpeg_next::util::color::Range::JPEG);
        assert_eq!(
            max_difference(&want, &c.model_input(&flagged).unwrap().rgb),
            0
        );
        let got = c.model_input(&full).unwrap().rgb;
        let d = max_difference(&want, &got);
        assert!(d <= 2, "full-range NV12 differs from YUVJ420P by {d}");
        // The same samples read as limited range are stretched: unlike.
        let stretched = c.model_input(&limited).unwrap().rgb;
        assert!(max_difference(&want, &stretched) > 10);
        assert!(c.i420(&full).unwrap().full_range);
        assert!(!c.i420(&limited).unwrap().full_range);
    }

    #[test]
    fn a_camera_that_changes_its_picture_size_keeps_converting() {
        crate::init().unwrap();
        let g = letterboxed(64, 64);
        let mut c = FrameConverter::new(g);
        let wide = c.model_input(&half_white(128, 64)).unwrap();
        let tall = c.model_input(&half_white(64, 128)).unwrap();
        let back = c.model_input(&half_white(128, 64)).unwrap();
        assert_eq!((wide.placement.scaled_w, wide.placement.scaled_h), (64, 32));
        assert_eq!((tall.placement.scaled_w, tall.placement.scaled_h), (32, 64));
        assert_eq!(wide.rgb, back.rgb);
        assert_eq!(c.i420(&half_white(64, 128)).unwrap().y.len(), 64 * 128);
    }

    #[test]
    fn letterbox_pads_with_fill_and_keeps_content_left_aligned_in_content_area() {
        crate::init().unwrap();
        let g = letterboxed(64, 64);
        let mut c = FrameConverter::new(g);
        let input = c.model_input(&half_white(128, 64)).unwrap();
        assert_eq!(input.rgb.len(), 64 * 64 * 3);
        // 128x64 -> 64x32, padded 16 rows top and bottom.
        assert_eq!((input.placement.pad_x, input.placement.pad_y), (0, 16));
        let px = |x: usize, y: usize| input.rgb[(y * 64 + x) * 3];
        assert_eq!(px(10, 5), 114, "top padding");
        assert_eq!(px(10, 60), 114, "bottom padding");
        assert!(px(10, 32) > 240, "white content at left");
        assert!(px(54, 32) < 15, "black content at right");
    }

    #[test]
    fn stretch_fills_the_whole_input_and_i420_is_tightly_packed() {
        crate::init().unwrap();
        let g = stretched(30, 30);
        let mut c = FrameConverter::new(g);
        let src = half_white(101, 57);
        let input = c.model_input(&src).unwrap();
        assert!(input.rgb[0] > 240 && input.rgb[(29 * 30 + 29) * 3] < 15);
        let planes = c.i420(&src).unwrap();
        assert_eq!(planes.y.len(), 101 * 57);
        assert_eq!(planes.u.len(), 51 * 29);
        assert_eq!(planes.y[100], 16);
        assert_eq!(planes.y[0], 235);
    }
}
