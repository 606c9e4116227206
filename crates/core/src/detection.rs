//! Detections: what the detector found in one frame.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixel coordinates of some image (`x1 <= x2`, `y1 <= y2`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BBox { x1, y1, x2, y2 }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The box limited to `[0, width] x [0, height]`.
    pub fn clamp_to(&self, width: f32, height: f32) -> BBox {
        BBox {
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
            x2: self.x2.clamp(0.0, width),
            y2: self.y2.clamp(0.0, height),
        }
    }
}

/// One object found in a frame, in the frame's pixel coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub label: String,
    pub class_id: u32,
    pub score: f32,
    pub bbox: BBox,
}

/// A frame and what the detector found in it: the detector's output, the
/// analytics stage's input.
#[derive(Debug)]
pub struct FrameDetections {
    pub frame: crate::frame::DecodedFrame,
    /// `None`: the frame did not go through the model (a picture for the
    /// picture checks only); it says nothing about objects.
    pub detections: Option<Vec<Detection>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        // Overlap 5x10 = 50, union 150.
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn clamp_keeps_boxes_inside_the_frame() {
        let b = BBox::new(-5.0, 3.0, 800.0, 600.0).clamp_to(768.0, 576.0);
        assert_eq!(b, BBox::new(0.0, 3.0, 768.0, 576.0));
    }
}
