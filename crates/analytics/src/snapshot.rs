//! JPEG snapshots straight from the decoder's I420 planes (no RGB round trip).

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};
use xueliang_core::{BBox, DecodedFrame};

#[derive(Debug, thiserror::Error)]
#[error("cannot encode snapshot: {0}")]
pub struct SnapshotError(String);

/// Quality of event snapshots: good enough to recognise a person at D1.
const QUALITY: u8 = 85;

struct I420View<'a> {
    frame: &'a DecodedFrame,
    /// Maps stored luma / chroma values to JPEG's full range.
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl<'a> I420View<'a> {
    fn new(frame: &'a DecodedFrame) -> Self {
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        for v in 0..256usize {
            (luma[v], chroma[v]) = if frame.full_range {
                (v as u8, v as u8)
            } else {
                // Video range: luma 16..235, chroma 16..240 around 128.
                (
                    ((v.saturating_sub(16) * 255 + 109) / 219).min(255) as u8,
                    ((v as i32 - 128) * 255 / 224 + 128).clamp(0, 255) as u8,
                )
            };
        }
        I420View {
            frame,
            luma,
            chroma,
        }
    }
}

impl ImageBuffer for I420View<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.frame.width as u16
    }

    fn height(&self) -> u16 {
        self.frame.height as u16
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let f = self.frame;
        let (w, cw) = (f.width as usize, f.chroma_width() as usize);
        let y = y as usize;
        let luma = &f.y[y * w..y * w + w];
        let cb = &f.u[(y / 2) * cw..(y / 2) * cw + cw];
        let cr = &f.v[(y / 2) * cw..(y / 2) * cw + cw];
        for x in 0..w {
            buffers[0].push(self.luma[luma[x] as usize]);
            buffers[1].push(self.chroma[cb[x / 2] as usize]);
            buffers[2].push(self.chroma[cr[x / 2] as usize]);
        }
    }
}

/// Encodes a frame as a JPEG of its full size with the boxes drawn in (a red
/// frame 2 px wide in each).
pub fn encode_jpeg_with_boxes(
    frame: &DecodedFrame,
    boxes: &[BBox],
) -> Result<Vec<u8>, SnapshotError> {
    if boxes.is_empty() {
        return encode_jpeg(frame);
    }
    let mut marked = frame.clone();
    for b in boxes {
        draw_box(&mut marked, b);
    }
    encode_jpeg(&marked)
}

/// Red in video-range YCbCr.
const RED: (u8, u8, u8) = (81, 90, 240);

fn draw_box(f: &mut DecodedFrame, b: &BBox) {
    let (w, h) = (f.width as i64, f.height as i64);
    let cw = f.chroma_width() as i64;
    let x1 = (b.x1 as i64).clamp(0, w - 1);
    let x2 = (b.x2 as i64).clamp(0, w - 1);
    let y1 = (b.y1 as i64).clamp(0, h - 1);
    let y2 = (b.y2 as i64).clamp(0, h - 1);
    let mut put = |x: i64, y: i64| {
        f.y[(y * w + x) as usize] = RED.0;
        let c = ((y / 2) * cw + x / 2) as usize;
        f.u[c] = RED.1;
        f.v[c] = RED.2;
    };
    for t in 0..2 {
        for x in x1..=x2 {
            put(x, (y1 + t).min(h - 1));
            put(x, (y2 - t).max(0));
        }
        for y in y1..=y2 {
            put((x1 + t).min(w - 1), y);
            put((x2 - t).max(0), y);
        }
    }
}

/// Encodes a frame as a JPEG of its full size.
pub fn encode_jpeg(frame: &DecodedFrame) -> Result<Vec<u8>, SnapshotError> {
    if frame.width == 0
        || frame.height == 0
        || frame.width > u16::MAX as u32
        || frame.height > u16::MAX as u32
    {
        return Err(SnapshotError(format!(
            "frame size {}x{} out of range",
            frame.width, frame.height
        )));
    }
    let mut out = Vec::with_capacity((frame.width * frame.height / 8) as usize);
    let mut encoder = Encoder::new(&mut out, QUALITY);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .encode_image(I420View::new(frame))
        .map_err(|e| SnapshotError(e.to_string()))?;
    Ok(out)
}
