//! A frame's regions as model inputs, and their detections merged with the
//! whole frame's (see `xueliang_core::regions` for where regions go).

use crate::postprocess::{nms, Candidate};
use std::collections::HashMap;
use xueliang_core::regions::Region;
use xueliang_core::{BBox, DecodedFrame, Detection, InputGeometry, ModelInput, ResizeMode};

/// Boxes of one label found by several looks overlapping more than this are
/// one object.
const MERGE_IOU: f32 = 0.5;

/// The model input for `region` of `frame`: its I420 pixels scaled
/// (bilinear; a region is at least the model's size, so only reduced) to
/// the model's size and converted to RGB as the decode stage does (BT.601,
/// video or full range). Fixed-point, with each column's and row's sampling
/// worked out once.
pub fn region_input(
    frame: &DecodedFrame,
    region: Region,
    model_w: u32,
    model_h: u32,
) -> ModelInput {
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let (cw, ch) = (
        frame.chroma_width() as usize,
        frame.chroma_height() as usize,
    );
    let (mw, mh) = (model_w as usize, model_h as usize);
    let mut rgb = vec![0u8; mw * mh * 3];
    let usable = fw > 0 && fh > 0 && frame.y.len() >= fw * fh && frame.u.len() >= cw * ch;
    if usable {
        let sx = region.w as f32 / mw as f32;
        let sy = region.h as f32 / mh as f32;
        // Luma and chroma sampling positions of each output column and row.
        let luma_x: Vec<Tap> = (0..mw)
            .map(|o| Tap::at(region.x as f32 + (o as f32 + 0.5) * sx - 0.5, fw))
            .collect();
        let chroma_x: Vec<Tap> = (0..mw)
            .map(|o| Tap::at((region.x as f32 + (o as f32 + 0.5) * sx - 1.0) / 2.0, cw))
            .collect();
        let colour = Colour::of(frame.full_range);
        for oy in 0..mh {
            let y = region.y as f32 + (oy as f32 + 0.5) * sy - 0.5;
            let ly = Tap::at(y, fh);
            let cy = Tap::at((y - 0.5) / 2.0, ch);
            let luma_rows = rows(&frame.y, fw, &ly);
            let u_rows = rows(&frame.u, cw, &cy);
            let v_rows = rows(&frame.v, cw, &cy);
            let out_row = &mut rgb[oy * mw * 3..][..mw * 3];
            for (ox, out) in out_row.chunks_exact_mut(3).enumerate() {
                let l = bilinear(luma_rows, &luma_x[ox], &ly);
                let u = bilinear(u_rows, &chroma_x[ox], &cy);
                let v = bilinear(v_rows, &chroma_x[ox], &cy);
                out.copy_from_slice(&colour.rgb(l, u, v));
            }
        }
    }
    let geometry = InputGeometry {
        width: model_w,
        height: model_h,
        resize: ResizeMode::Stretch,
    };
    ModelInput {
        width: model_w,
        height: model_h,
        rgb,
        placement: geometry.placement(region.w, region.h),
    }
}

/// Fixed-point fractions: 1.0 is `ONE`.
const FRACTION_BITS: u32 = 8;
const ONE: i32 = 1 << FRACTION_BITS;

/// Where one output pixel samples along one axis: between `a` and `b`,
/// `w` (of [`ONE`]) of the way to `b`.
struct Tap {
    a: usize,
    b: usize,
    w: i32,
}

impl Tap {
    /// At position `p` of an axis `len` long (clamped to it).
    fn at(p: f32, len: usize) -> Tap {
        let p = p.clamp(0.0, (len - 1) as f32);
        let a = p as usize;
        Tap {
            a,
            b: (a + 1).min(len - 1),
            w: ((p - a as f32) * ONE as f32).round() as i32,
        }
    }
}

/// The two rows of a plane (`stride` wide) a row tap samples.
fn rows<'a>(plane: &'a [u8], stride: usize, t: &Tap) -> (&'a [u8], &'a [u8]) {
    (
        &plane[t.a * stride..][..stride],
        &plane[t.b * stride..][..stride],
    )
}

/// The plane's value between two rows at a column's tap, in 1/[`ONE`]²
/// units.
fn bilinear((top, bottom): (&[u8], &[u8]), x: &Tap, y: &Tap) -> i32 {
    let mix = |row: &[u8]| row[x.a] as i32 * (ONE - x.w) + row[x.b] as i32 * x.w;
    mix(top) * (ONE - y.w) + mix(bottom) * y.w
}

/// BT.601 YCbCr to RGB in fixed point (16 fraction bits), video or full range.
struct Colour {
    y_offset: i32,
    y_scale: i32,
    r_v: i32,
    g_u: i32,
    g_v: i32,
    b_u: i32,
}

impl Colour {
    fn of(full_range: bool) -> Colour {
        let (y_offset, y_gain, c_gain) = if full_range {
            (0, 1.0, 1.0)
        } else {
            (16, 255.0 / 219.0, 255.0 / 224.0)
        };
        let fixed = |f: f64| (f * 65536.0).round() as i32;
        Colour {
            y_offset,
            y_scale: fixed(y_gain),
            r_v: fixed(1.402 * c_gain),
            g_u: fixed(0.344_136 * c_gain),
            g_v: fixed(0.714_136 * c_gain),
            b_u: fixed(1.772 * c_gain),
        }
    }

    /// `l`, `u`, `v` as [`bilinear`] gives them.
    fn rgb(&self, l: i32, u: i32, v: i32) -> [u8; 3] {
        const SHIFT: u32 = 2 * FRACTION_BITS;
        let round = |x: i32| (x + (1 << (SHIFT - 1))) >> SHIFT;
        let (l, u, v) = (round(l), round(u) - 128, round(v) - 128);
        let y = (l - self.y_offset) * self.y_scale + (1 << 15);
        let clamp = |x: i32| (x >> 16).clamp(0, 255) as u8;
        [
            clamp(y + self.r_v * v),
            clamp(y - self.g_u * u - self.g_v * v),
            clamp(y + self.b_u * u),
        ]
    }
}

/// One frame's detections from the whole frame and its regions (each in
/// its region's pixels, as the detector gives them for a `w x h` frame):
/// regions' boxes moved to frame pixels, those a region cut at one of its
/// edges inside the frame dropped, and boxes of one label found more than
/// once merged, the best score kept.
pub fn merge_regions(
    whole: &[Detection],
    regions: &[(Region, Vec<Detection>)],
    frame_w: u32,
    frame_h: u32,
) -> Vec<Detection> {
    let mut labels: HashMap<u32, String> = HashMap::new();
    let mut all: Vec<Candidate> = Vec::new();
    let mut add = |d: &Detection, bbox: BBox| {
        labels.entry(d.class_id).or_insert_with(|| d.label.clone());
        all.push(Candidate {
            class_id: d.class_id,
            score: d.score,
            bbox,
        });
    };
    for d in whole {
        add(d, d.bbox);
    }
    for (region, found) in regions {
        for d in found {
            let bbox = BBox::new(
                d.bbox.x1 + region.x as f32,
                d.bbox.y1 + region.y as f32,
                d.bbox.x2 + region.x as f32,
                d.bbox.y2 + region.y as f32,
            );
            if region.cuts(&bbox, frame_w, frame_h) {
                continue;
            }
            add(d, bbox);
        }
    }
    nms(all, MERGE_IOU)
        .into_iter()
        .map(|c| Detection {
            label: labels[&c.class_id].clone(),
            class_id: c.class_id,
            score: c.score,
            bbox: c.bbox,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use xueliang_core::CameraRef;

    fn person(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            label: "person".into(),
            class_id: 0,
            score,
            bbox: BBox::new(x1, y1, x2, y2),
        }
    }

    #[test]
    fn a_region_at_its_own_size_is_the_frame_s_pixels_in_rgb() {
        let camera = CameraRef {
            index: 0,
            id: "c".into(),
        };
        let mut frame = DecodedFrame::uniform(camera, 64, 48, 16, Utc::now());
        // A white square at (40..48, 20..28) in the luma plane.
        for y in 20..28 {
            for x in 40..48 {
                frame.y[y * 64 + x] = 235;
            }
        }
        let region = Region {
            x: 32,
            y: 16,
            w: 16,
            h: 16,
        };
        let input = region_input(&frame, region, 16, 16);
        let px = |x: usize, y: usize| &input.rgb[(y * 16 + x) * 3..][..3];
        assert_eq!(px(2, 2), [0, 0, 0], "video-range black");
        assert_eq!(px(10, 6), [255, 255, 255], "the square, 8 px right, 4 down");
        assert_eq!(input.placement.to_frame(16.0, 16.0), (16.0, 16.0));
        // Twice the model's size: reduced by two.
        let big = region_input(
            &frame,
            Region {
                w: 32,
                h: 32,
                ..region
            },
            16,
            16,
        );
        let px = |x: usize, y: usize| &big.rgb[(y * 16 + x) * 3..][..3];
        assert_eq!(px(5, 4), [255, 255, 255]);
        assert_eq!(px(1, 1), [0, 0, 0]);
    }

    #[test]
    fn region_boxes_move_to_the_frame_cut_ones_go_and_doubles_merge() {
        let region = Region {
            x: 200,
            y: 100,
            w: 300,
            h: 300,
        };
        let whole = vec![person(210.0, 110.0, 240.0, 190.0, 0.6)];
        let found = vec![
            // The same person, seen better.
            person(10.0, 10.0, 40.0, 90.0, 0.9),
            // A far person the whole frame missed.
            person(150.0, 150.0, 160.0, 175.0, 0.7),
            // Cut by the region's left edge (inside the frame).
            person(0.0, 200.0, 20.0, 260.0, 0.8),
        ];
        let merged = merge_regions(&whole, &[(region, found)], 768, 576);
        assert_eq!(merged.len(), 2, "{merged:?}");
        assert_eq!(merged[0].score, 0.9);
        assert_eq!(merged[0].bbox, BBox::new(210.0, 110.0, 240.0, 190.0));
        assert_eq!(merged[1].bbox, BBox::new(350.0, 250.0, 360.0, 275.0));
    }
}
