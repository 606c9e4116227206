//! Region detection: where to look closer than the whole frame. One
//! inference on the whole frame squeezes a D1 picture into the model's
//! 300x300, and a person 50 px tall becomes 26 px, too small for the model.
//! A region is a crop of the frame at the model's shape, at least the
//! model's size (so it is seen at its own resolution, or a little
//! reduced), placed around what moves and around the rules' zones and
//! lines. Its detections are mapped back to the frame and merged with the
//! whole frame's.

use crate::BBox;

/// A crop of a frame, in whole frame pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Region {
    pub fn bbox(&self) -> BBox {
        BBox::new(
            self.x as f32,
            self.y as f32,
            (self.x + self.w) as f32,
            (self.y + self.h) as f32,
        )
    }

    /// Whether `b` lies inside (within a pixel).
    pub fn contains(&self, b: &BBox) -> bool {
        let r = self.bbox();
        b.x1 >= r.x1 - 1.0 && b.y1 >= r.y1 - 1.0 && b.x2 <= r.x2 + 1.0 && b.y2 <= r.y2 + 1.0
    }

    /// Whether `b` reaches one of this region's edges that lies inside the
    /// frame: the object may go on beyond the crop, and the model saw only
    /// part of it (the whole frame or another region sees it whole).
    pub fn cuts(&self, b: &BBox, frame_w: u32, frame_h: u32) -> bool {
        const TOUCH: f32 = 2.0;
        let r = self.bbox();
        (self.x > 0 && b.x1 <= r.x1 + TOUCH)
            || (self.y > 0 && b.y1 <= r.y1 + TOUCH)
            || (self.x + self.w < frame_w && b.x2 >= r.x2 - TOUCH)
            || (self.y + self.h < frame_h && b.y2 >= r.y2 - TOUCH)
    }
}

/// What a camera's regions look at, as the decode stage is told.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionLooks {
    /// The most regions a frame gets; 0: none (the whole frame only).
    pub max: usize,
    /// The boxes around the camera's zones and lines, normalised to the
    /// frame (0..1).
    pub rules: Vec<BBox>,
}

impl RegionLooks {
    /// A camera's `detection.regions` and the boxes around its zones and
    /// counting lines.
    pub fn of(camera: &crate::CameraConfig) -> Self {
        let bounds = |points: &mut dyn Iterator<Item = &crate::zones::Point>| {
            let mut b = BBox::new(f32::MAX, f32::MAX, f32::MIN, f32::MIN);
            for p in points {
                let (x, y) = (p[0] as f32, p[1] as f32);
                b = BBox::new(b.x1.min(x), b.y1.min(y), b.x2.max(x), b.y2.max(y));
            }
            (b.x1 <= b.x2).then_some(b)
        };
        let rules = &camera.rules;
        let zones = rules
            .zones
            .iter()
            .filter_map(|z| bounds(&mut z.polygon.iter()));
        let lines = rules
            .lines
            .iter()
            .filter_map(|l| bounds(&mut [l.from, l.to].iter()));
        RegionLooks {
            max: camera.detection.regions,
            rules: zones.chain(lines).collect(),
        }
    }

    /// The rule boxes in pixels of a `w x h` frame.
    pub fn rules_in(&self, w: u32, h: u32) -> Vec<BBox> {
        let (w, h) = (w as f32, h as f32);
        self.rules
            .iter()
            .map(|b| BBox::new(b.x1 * w, b.y1 * h, b.x2 * w, b.y2 * h))
            .collect()
    }
}

/// How regions are chosen for one camera's frames.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionPlanner {
    pub frame_w: u32,
    pub frame_h: u32,
    /// The model's input size.
    pub model_w: u32,
    pub model_h: u32,
    /// The most regions a frame gets (beside the whole frame).
    pub max: usize,
}

/// A region is worth its inference only when it shows things at least this
/// many times larger than the whole frame does.
const MIN_ZOOM: f32 = 1.5;
/// Room around a box inside its region, as a share of the box's size.
const MARGIN: f32 = 0.25;

impl RegionPlanner {
    /// How much the whole frame is reduced into the model (the smaller of
    /// the two axes' scales).
    fn frame_scale(&self) -> f32 {
        (self.model_w as f32 / self.frame_w.max(1) as f32)
            .min(self.model_h as f32 / self.frame_h.max(1) as f32)
    }

    /// The largest region width still worth an inference (its height at
    /// the model's aspect).
    fn max_width(&self) -> f32 {
        self.model_w as f32 / (MIN_ZOOM * self.frame_scale())
    }

    /// Whether regions help at all: a frame hardly larger than the model
    /// is seen whole at nearly its own resolution.
    pub fn useful(&self) -> bool {
        self.max_width() >= self.model_w as f32 && self.max > 0
    }

    /// The region around `b`: the model's aspect, at least the model's
    /// size, `b` with a margin, moved inside the frame. `None` when `b` is
    /// too large for a region to show it larger than the whole frame does.
    pub fn around(&self, b: &BBox) -> Option<Region> {
        let aspect = self.model_h as f32 / self.model_w as f32;
        let want_w = (b.width() * (1.0 + 2.0 * MARGIN))
            .max(b.height() * (1.0 + 2.0 * MARGIN) / aspect)
            .max(self.model_w as f32);
        if want_w > self.max_width() {
            return None;
        }
        let w = (want_w.round() as u32).min(self.frame_w);
        let h = ((want_w * aspect).round() as u32).min(self.frame_h);
        let centre = |lo: f32, hi: f32, size: u32, limit: u32| -> u32 {
            let start = ((lo + hi) / 2.0 - size as f32 / 2.0).round().max(0.0) as u32;
            start.min(limit - size)
        };
        Some(Region {
            x: centre(b.x1, b.x2, w, self.frame_w),
            y: centre(b.y1, b.y2, h, self.frame_h),
            w,
            h,
        })
    }

    /// Boxes covering `b` that each fit a region: `b` itself when it fits,
    /// else a grid of equal parts of it (a large zone seen piece by piece).
    pub fn pieces(&self, b: &BBox) -> Vec<BBox> {
        let aspect = self.model_h as f32 / self.model_w as f32;
        // A piece must fit a region with its margin.
        let side_w = self.max_width() / (1.0 + 2.0 * MARGIN);
        let side_h = side_w * aspect;
        let cols = (b.width() / side_w).ceil().max(1.0) as usize;
        let rows = (b.height() / side_h).ceil().max(1.0) as usize;
        let (pw, ph) = (b.width() / cols as f32, b.height() / rows as f32);
        let mut out = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for c in 0..cols {
                let x1 = b.x1 + c as f32 * pw;
                let y1 = b.y1 + r as f32 * ph;
                out.push(BBox::new(x1, y1, x1 + pw, y1 + ph));
            }
        }
        out
    }

    /// The regions for one frame: one around each of `moving` (what moved
    /// since the model last looked, most urgent first), then around each
    /// piece of `rules` (zones and lines), skipping what a region chosen
    /// already holds, at most [`RegionPlanner::max`].
    pub fn plan(&self, moving: &[BBox], rules: &[BBox]) -> Vec<Region> {
        let mut out: Vec<Region> = Vec::new();
        if !self.useful() {
            return out;
        }
        let candidates = moving
            .iter()
            .flat_map(|b| self.pieces(b))
            .chain(rules.iter().flat_map(|b| self.pieces(b)));
        for b in candidates {
            if out.len() >= self.max {
                break;
            }
            if out.iter().any(|r| r.contains(&b)) {
                continue;
            }
            if let Some(r) = self.around(&b) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d1() -> RegionPlanner {
        RegionPlanner {
            frame_w: 768,
            frame_h: 576,
            model_w: 300,
            model_h: 300,
            max: 4,
        }
    }

    #[test]
    fn a_small_box_gets_a_model_sized_region_around_it_inside_the_frame() {
        let p = d1();
        let r = p.around(&BBox::new(100.0, 100.0, 120.0, 160.0)).unwrap();
        assert_eq!((r.w, r.h), (300, 300));
        assert!(r.contains(&BBox::new(100.0, 100.0, 120.0, 160.0)));
        // Near the corner it is moved inside, not cut.
        let r = p.around(&BBox::new(740.0, 550.0, 760.0, 570.0)).unwrap();
        assert_eq!((r.x + r.w, r.y + r.h), (768, 576));
    }

    #[test]
    fn a_box_too_large_to_be_shown_larger_gets_no_region() {
        // The whole frame is reduced to 0.39; a region wider than 513 px
        // would show things less than 1.5 times larger.
        let p = d1();
        assert!(p.around(&BBox::new(0.0, 0.0, 300.0, 300.0)).is_some());
        assert!(p.around(&BBox::new(0.0, 0.0, 500.0, 400.0)).is_none());
        // A large zone is covered piece by piece instead.
        let pieces = p.pieces(&BBox::new(0.0, 0.0, 768.0, 576.0));
        assert!(pieces.len() >= 4, "{pieces:?}");
        assert!(pieces.iter().all(|b| p.around(b).is_some()));
    }

    #[test]
    fn the_plan_puts_motion_first_skips_what_is_covered_and_keeps_the_cap() {
        let p = d1();
        let moving = [
            BBox::new(100.0, 100.0, 130.0, 170.0),
            // Inside the first one's region: no second region.
            BBox::new(140.0, 120.0, 160.0, 180.0),
            BBox::new(600.0, 400.0, 640.0, 480.0),
        ];
        let zone = [BBox::new(300.0, 0.0, 500.0, 100.0)];
        let plan = p.plan(&moving, &zone);
        assert_eq!(plan.len(), 3, "{plan:?}");
        assert!(plan[0].contains(&moving[0]) && plan[0].contains(&moving[1]));
        assert!(plan[1].contains(&moving[2]));
        assert!(plan[2].contains(&zone[0]));
        // Nine movers no region holds two of: four regions.
        let many: Vec<BBox> = [10.0, 370.0, 740.0]
            .iter()
            .flat_map(|x| {
                [10.0, 290.0, 560.0]
                    .iter()
                    .map(move |y| BBox::new(*x, *y, x + 10.0, y + 10.0))
            })
            .collect();
        assert_eq!(p.plan(&many, &[]).len(), 4);
    }

    #[test]
    fn a_frame_near_the_model_size_needs_no_regions() {
        let p = RegionPlanner {
            frame_w: 352,
            frame_h: 288,
            ..d1()
        };
        assert!(!p.useful());
        assert!(p.plan(&[BBox::new(0.0, 0.0, 10.0, 10.0)], &[]).is_empty());
    }

    #[test]
    fn boxes_at_a_region_edge_inside_the_frame_are_cut_ones() {
        let r = Region {
            x: 100,
            y: 0,
            w: 300,
            h: 300,
        };
        // Touches the left edge (inside the frame): cut.
        assert!(r.cuts(&BBox::new(100.0, 50.0, 130.0, 120.0), 768, 576));
        // Touches the top edge, which is the frame's own: whole.
        assert!(!r.cuts(&BBox::new(150.0, 0.0, 180.0, 60.0), 768, 576));
        assert!(!r.cuts(&BBox::new(150.0, 50.0, 180.0, 120.0), 768, 576));
    }
}
