//! The SSD post-processing done here instead of in the graph: box decoding
//! against the anchors, the class sigmoid and NMS per class, for a model cut
//! at its raw outputs (models/cut-postprocess.py). Scores are thresholded on
//! the logits first, so only the few candidates above the camera's lowest
//! threshold are decoded: a fraction of what the graph spends on all 1917
//! anchors and 90 classes.

use crate::postprocess::{nms, Candidate};
use xueliang_core::BBox;

/// What the cut-off part of the graph did, from the model manifest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SsdRawParams {
    /// Candidates of one class overlapping a better one by more than this are dropped.
    pub iou: f32,
    /// At most this many boxes of one class.
    pub max_per_class: usize,
    /// At most this many boxes in all, the best first.
    pub max_detections: usize,
    /// Class 0 of the logits is the background (label id = class - 1).
    pub background: bool,
}

/// One picture's raw outputs: `encodings` `[anchors, 4]` (ty, tx, th, tw,
/// already divided by the box coder's scales), `logits` `[anchors, classes]`,
/// `anchors` `[anchors, 4]` (ycenter, xcenter, height, width) normalised.
pub struct RawOutputs<'a> {
    pub encodings: &'a [f32],
    pub logits: &'a [f32],
    pub anchors: &'a [f32],
}

/// Candidates with score >= `min_score`, boxes in model-input pixels
/// (`input_w x input_h`), as the graph's post-processing would give them.
pub fn decode_ssd_raw(
    raw: &RawOutputs,
    params: &SsdRawParams,
    input_w: u32,
    input_h: u32,
    min_score: f32,
) -> Vec<Candidate> {
    let anchors = raw.anchors.len() / 4;
    if anchors == 0
        || raw.encodings.len() < anchors * 4
        || !raw.logits.len().is_multiple_of(anchors)
    {
        return Vec::new();
    }
    let classes = raw.logits.len() / anchors;
    let first = usize::from(params.background);
    // sigmoid(x) >= p  <=>  x >= ln(p / (1 - p)); a threshold of 0 or less keeps all.
    let p = min_score.clamp(1e-8, 1.0 - 1e-7);
    let floor = (p / (1.0 - p)).ln();
    let (w, h) = (input_w as f32, input_h as f32);
    let mut found = Vec::new();
    for (a, row) in raw.logits.chunks_exact(classes).enumerate() {
        let mut decoded = None;
        for (c, &logit) in row.iter().enumerate().skip(first) {
            if logit < floor {
                continue;
            }
            let bbox = *decoded.get_or_insert_with(|| decode_box(raw, a, w, h));
            found.push(Candidate {
                class_id: (c - first) as u32,
                score: 1.0 / (1.0 + (-logit).exp()),
                bbox,
            });
        }
    }
    let mut kept = nms(found, params.iou);
    // `nms` keeps the best first: cap each class, then the whole.
    let mut per_class = std::collections::HashMap::<u32, usize>::new();
    kept.retain(|c| {
        let n = per_class.entry(c.class_id).or_default();
        *n += 1;
        *n <= params.max_per_class
    });
    kept.truncate(params.max_detections);
    kept
}

/// Anchor `a`'s box in model-input pixels.
fn decode_box(raw: &RawOutputs, a: usize, w: f32, h: f32) -> BBox {
    let e = &raw.encodings[a * 4..a * 4 + 4];
    let an = &raw.anchors[a * 4..a * 4 + 4];
    let (ya, xa, ha, wa) = (an[0], an[1], an[2], an[3]);
    let yc = e[0] * ha + ya;
    let xc = e[1] * wa + xa;
    let half_h = e[2].exp() * ha / 2.0;
    let half_w = e[3].exp() * wa / 2.0;
    BBox::new(
        (xc - half_w) * w,
        (yc - half_h) * h,
        (xc + half_w) * w,
        (yc + half_h) * h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: SsdRawParams = SsdRawParams {
        iou: 0.6,
        max_per_class: 20,
        max_detections: 20,
        background: true,
    };

    /// Logit of a probability.
    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn boxes_decode_against_their_anchors_and_classes_skip_the_background() {
        // One anchor at the centre, a quarter of the input; the encoding
        // moves it right by a tenth of its width and doubles its height.
        let anchors = [0.5, 0.5, 0.25, 0.25];
        let encodings = [0.0, 0.4, 2f32.ln(), 0.0];
        let logits = [logit(0.99), logit(0.1), logit(0.8)];
        let raw = RawOutputs {
            encodings: &encodings,
            logits: &logits,
            anchors: &anchors,
        };
        let c = decode_ssd_raw(&raw, &PARAMS, 300, 300, 0.5);
        assert_eq!(c.len(), 1, "the background is not a class: {c:?}");
        assert_eq!(c[0].class_id, 1, "logit 2 is label 1");
        assert!((c[0].score - 0.8).abs() < 1e-5);
        let b = c[0].bbox;
        // x centre 0.5 + 0.4 * 0.25 = 0.6, width 0.25; y centre 0.5, height 0.5.
        for (got, want) in [(b.x1, 142.5), (b.x2, 217.5), (b.y1, 75.0), (b.y2, 225.0)] {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
    }

    #[test]
    fn overlaps_of_one_class_are_suppressed_and_the_caps_hold() {
        // Five anchors: three nearly the same box, two apart; two classes.
        let anchors = [
            0.5, 0.5, 0.2, 0.2, //
            0.5, 0.51, 0.2, 0.2, //
            0.5, 0.49, 0.2, 0.2, //
            0.1, 0.1, 0.1, 0.1, //
            0.9, 0.9, 0.1, 0.1,
        ];
        let encodings = [0.0; 20];
        let bg = logit(0.01);
        let logits = [
            bg,
            logit(0.9),
            logit(0.7), //
            bg,
            logit(0.8),
            bg, //
            bg,
            logit(0.6),
            bg, //
            bg,
            logit(0.55),
            bg, //
            bg,
            logit(0.4),
            bg,
        ];
        let raw = RawOutputs {
            encodings: &encodings,
            logits: &logits,
            anchors: &anchors,
        };
        let c = decode_ssd_raw(&raw, &PARAMS, 100, 100, 0.5);
        let kept: Vec<(u32, f32)> = c
            .iter()
            .map(|c| (c.class_id, (c.score * 100.0).round()))
            .collect();
        // Class 0: 0.9 keeps, 0.8 and 0.6 overlap it; 0.55 apart; 0.4 below.
        // Class 1: 0.7 on the same box as class 0's best, kept (another class).
        assert_eq!(kept, vec![(0, 90.0), (1, 70.0), (0, 55.0)]);
        let capped = SsdRawParams {
            max_per_class: 1,
            max_detections: 20,
            ..PARAMS
        };
        let c = decode_ssd_raw(&raw, &capped, 100, 100, 0.5);
        assert_eq!(c.len(), 2, "one per class: {c:?}");
        let few = SsdRawParams {
            max_detections: 1,
            ..PARAMS
        };
        assert_eq!(decode_ssd_raw(&raw, &few, 100, 100, 0.5).len(), 1);
    }

    #[test]
    fn outputs_of_the_wrong_size_give_nothing_rather_than_panic() {
        let raw = RawOutputs {
            encodings: &[0.0; 3],
            logits: &[5.0; 7],
            anchors: &[0.5; 8],
        };
        assert!(decode_ssd_raw(&raw, &PARAMS, 300, 300, 0.5).is_empty());
        let raw = RawOutputs {
            encodings: &[],
            logits: &[],
            anchors: &[],
        };
        assert!(decode_ssd_raw(&raw, &PARAMS, 300, 300, 0.0).is_empty());
    }
}
