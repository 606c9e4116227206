//! Reading model outputs into detections in frame pixel coordinates.

use xueliang_core::frame::Placement;
use xueliang_core::BBox;

/// A raw candidate: class id, score, box in model-input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub class_id: u32,
    pub score: f32,
    pub bbox: BBox,
}

/// SSD-style outputs: `boxes` is `[N, 4]` of (ymin, xmin, ymax, xmax)
/// normalised to the model input, `classes` and `scores` `[N]`, `count` valid rows.
pub fn decode_ssd(
    boxes: &[f32],
    classes: &[f32],
    scores: &[f32],
    count: usize,
    input_w: u32,
    input_h: u32,
    min_score: f32,
) -> Vec<Candidate> {
    let n = count
        .min(scores.len())
        .min(classes.len())
        .min(boxes.len() / 4);
    let (w, h) = (input_w as f32, input_h as f32);
    (0..n)
        .filter(|&i| scores[i] >= min_score && classes[i] >= 0.0)
        .map(|i| {
            let b = &boxes[i * 4..i * 4 + 4];
            Candidate {
                class_id: classes[i].round() as u32,
                score: scores[i],
                bbox: BBox::new(b[1] * w, b[0] * h, b[3] * w, b[2] * h),
            }
        })
        .collect()
}

/// YOLO-style output `[4 + classes, N]` (row-major, the batch dimension
/// removed): for each of N columns (cx, cy, w, h) in input pixels, then class
/// scores. Keeps each column's best class above `min_score`, then runs NMS per
/// class.
pub fn decode_yolo(
    data: &[f32],
    rows: usize,
    cols: usize,
    min_score: f32,
    iou: f32,
) -> Vec<Candidate> {
    if rows <= 4 || data.len() < rows * cols {
        return Vec::new();
    }
    let at = |r: usize, c: usize| data[r * cols + c];
    let mut out = Vec::new();
    for c in 0..cols {
        let (mut best, mut best_score) = (0usize, f32::MIN);
        for r in 4..rows {
            let s = at(r, c);
            if s > best_score {
                best = r - 4;
                best_score = s;
            }
        }
        if best_score < min_score {
            continue;
        }
        let (cx, cy, w, h) = (at(0, c), at(1, c), at(2, c), at(3, c));
        out.push(Candidate {
            class_id: best as u32,
            score: best_score,
            bbox: BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0),
        });
    }
    nms(out, iou)
}

/// Greedy non-maximum suppression per class: keeps the best-scoring box and
/// drops boxes of the same class overlapping it by more than `iou`.
pub fn nms(mut candidates: Vec<Candidate>, iou: f32) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if kept
            .iter()
            .all(|k| k.class_id != c.class_id || k.bbox.iou(&c.bbox) <= iou)
        {
            kept.push(c);
        }
    }
    kept
}

/// Maps a box from model-input pixels to frame pixels and clamps it to the frame.
pub fn to_frame(bbox: &BBox, placement: &Placement, frame_w: u32, frame_h: u32) -> BBox {
    let (x1, y1) = placement.to_frame(bbox.x1, bbox.y1);
    let (x2, y2) = placement.to_frame(bbox.x2, bbox.y2);
    BBox::new(x1, y1, x2, y2).clamp_to(frame_w as f32, frame_h as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xueliang_core::{InputGeometry, ResizeMode};

    #[test]
    fn ssd_boxes_are_yxyx_normalised_and_filtered_by_score_and_count() {
        let boxes = [0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 0.5];
        let classes = [0.0, 2.0, 0.0];
        let scores = [0.9, 0.3, 0.8];
        let c = decode_ssd(&boxes, &classes, &scores, 2, 300, 300, 0.4);
        assert_eq!(c.len(), 1, "row 2 is beyond count, row 1 below the score");
        let b = c[0].bbox;
        assert!((b.x1 - 60.0).abs() < 1e-3 && (b.y1 - 30.0).abs() < 1e-3);
        assert!((b.x2 - 180.0).abs() < 1e-3 && (b.y2 - 150.0).abs() < 1e-3);
    }

    #[test]
    fn yolo_picks_the_best_class_and_suppresses_overlaps() {
        // 3 columns, 2 classes: rows cx, cy, w, h, s0, s1.
        let data = [
            10.0, 11.0, 50.0, // cx
            10.0, 10.0, 50.0, // cy
            8.0, 8.0, 4.0, // w
            8.0, 8.0, 4.0, // h
            0.9, 0.8, 0.1, // class 0
            0.1, 0.2, 0.7, // class 1
        ];
        let c = decode_yolo(&data, 6, 3, 0.5, 0.45);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!((c[0].class_id, c[0].score), (0, 0.9));
        assert_eq!(c[1].class_id, 1);
        assert_eq!(c[1].bbox, BBox::new(48.0, 48.0, 52.0, 52.0));
    }

    #[test]
    fn nms_keeps_overlapping_boxes_of_different_classes() {
        let b = BBox::new(0.0, 0.0, 10.0, 10.0);
        let c = nms(
            vec![
                Candidate {
                    class_id: 0,
                    score: 0.5,
                    bbox: b,
                },
                Candidate {
                    class_id: 1,
                    score: 0.6,
                    bbox: b,
                },
                Candidate {
                    class_id: 0,
                    score: 0.7,
                    bbox: b,
                },
            ],
            0.5,
        );
        let kept: Vec<_> = c.iter().map(|c| (c.class_id, c.score)).collect();
        assert_eq!(kept, vec![(0, 0.7), (1, 0.6)]);
    }

    #[test]
    fn boxes_map_back_through_the_letterbox_and_are_clamped() {
        let g = InputGeometry {
            width: 640,
            height: 640,
            resize: ResizeMode::Letterbox { fill: 114 },
        };
        let p = g.placement(768, 576);
        // A box covering the padded band and beyond maps to the frame edges.
        let b = to_frame(&BBox::new(-10.0, 0.0, 320.0, 320.0), &p, 768, 576);
        assert_eq!(b.x1, 0.0);
        assert_eq!(b.y1, 0.0);
        assert!(
            (b.x2 - 384.0).abs() < 1e-3 && (b.y2 - 288.0).abs() < 1e-3,
            "{b:?}"
        );
    }
}
