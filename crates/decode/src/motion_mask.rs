//! "Nothing else moves": while the analytics need only the reduced rate, each
//! decoded picture's coarse luma grid is compared with the last picture the
//! model saw. Cells that changed (beyond noise and beyond a change of the
//! whole picture, see [`LumaGrid::changed`]) outside the regions where the
//! tracked objects may be mean something new moves: a person walking in
//! past a parked car. Compressed frame sizes cannot say where things move,
//! so this reads the picture, at about a twentieth of a millisecond a D1
//! picture (every second pixel of every second row).

use crate::key_motion::{GRID_H, GRID_W};
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::frame::Video as VideoFrame;
use xueliang_core::luma::LumaGrid;
use xueliang_core::BBox;

/// A cell changed when its mean moved more than this (0-255)...
const CELL_FLOOR: f32 = 10.0;
/// ...and more than this many times the typical cell's change (noise).
const NOISE_SPREAD: f32 = 6.0;
/// Something new moves when at least this many cells outside the regions
/// changed.
const MIN_CELLS: usize = 2;

/// Changed cells this many unchanged cells apart or fewer are one mover.
const JOIN_GAP: usize = 2;

/// The grid of the last picture the model saw.
#[derive(Debug, Default)]
pub(crate) struct MotionMask {
    reference: Option<LumaGrid>,
}

impl MotionMask {
    /// The model saw `picture`: later pictures are compared with it.
    pub(crate) fn reference(&mut self, picture: &VideoFrame) {
        self.reference = grid(picture);
    }

    /// Compared with nothing until the next [`Self::reference`].
    pub(crate) fn forget(&mut self) {
        self.reference = None;
    }

    /// Whether something moved in `picture` outside `regions` (frame
    /// pixels) since the reference. A picture it cannot read, or no
    /// reference, counts as moved: the model looks.
    pub(crate) fn moved_outside(&self, picture: &VideoFrame, regions: &[BBox]) -> bool {
        let (Some(reference), Some(grid)) = (&self.reference, grid(picture)) else {
            return true;
        };
        if !grid.same_shape(reference) {
            return true;
        }
        let (w, h) = (picture.width() as f32, picture.height() as f32);
        let (cols, rows) = grid.size();
        let cell = (w / cols as f32, h / rows as f32);
        let unexplained = grid
            .changed(reference, CELL_FLOOR, NOISE_SPREAD)
            .filter(|(c, r)| {
                let (x, y) = ((*c as f32 + 0.5) * cell.0, (*r as f32 + 0.5) * cell.1);
                !regions
                    .iter()
                    .any(|b| x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2)
            })
            .take(MIN_CELLS)
            .count();
        unexplained >= MIN_CELLS
    }
}

impl MotionMask {
    /// Where `picture` changed since the reference: one box (frame pixels)
    /// per group of changed cells at most [`JOIN_GAP`] cells apart (an
    /// object that moved less than its size leaves unchanged cells between
    /// where it was and where it is), smallest first (far objects,
    /// which the whole frame shows smallest, come first). Lone cells are
    /// noise and left out. Nothing without a reference or a readable
    /// picture.
    pub(crate) fn moving_boxes(&self, picture: &VideoFrame) -> Vec<BBox> {
        let (Some(reference), Some(grid)) = (&self.reference, grid(picture)) else {
            return Vec::new();
        };
        if !grid.same_shape(reference) {
            return Vec::new();
        }
        let (cols, rows) = grid.size();
        let mut changed = vec![false; cols * rows];
        for (c, r) in grid.changed(reference, CELL_FLOOR, NOISE_SPREAD) {
            changed[r * cols + c] = true;
        }
        let cell = (
            picture.width() as f32 / cols as f32,
            picture.height() as f32 / rows as f32,
        );
        let mut boxes: Vec<(usize, BBox)> = Vec::new();
        let mut stack = Vec::new();
        for start in 0..changed.len() {
            if !changed[start] {
                continue;
            }
            changed[start] = false;
            stack.push(start);
            let (mut c1, mut r1, mut c2, mut r2, mut cells) = (cols, rows, 0, 0, 0);
            while let Some(i) = stack.pop() {
                let (c, r) = (i % cols, i / cols);
                (c1, r1, c2, r2) = (c1.min(c), r1.min(r), c2.max(c), r2.max(r));
                cells += 1;
                let reach = JOIN_GAP + 1;
                let near_c = c.saturating_sub(reach)..(c + reach + 1).min(cols);
                for nr in r.saturating_sub(reach)..(r + reach + 1).min(rows) {
                    for nc in near_c.clone() {
                        let n = nr * cols + nc;
                        if changed[n] {
                            changed[n] = false;
                            stack.push(n);
                        }
                    }
                }
            }
            if cells >= 2 {
                let b = BBox::new(
                    c1 as f32 * cell.0,
                    r1 as f32 * cell.1,
                    (c2 + 1) as f32 * cell.0,
                    (r2 + 1) as f32 * cell.1,
                );
                boxes.push((cells, b));
            }
        }
        boxes.sort_by(|a, b| a.1.area().total_cmp(&b.1.area()));
        boxes.into_iter().map(|(_, b)| b).collect()
    }
}

/// The picture's luma grid, if its luma is a readable 8-bit plane in memory.
fn grid(picture: &VideoFrame) -> Option<LumaGrid> {
    let eight_bit = matches!(
        picture.format(),
        Pixel::YUV420P
            | Pixel::YUVJ420P
            | Pixel::NV12
            | Pixel::YUV422P
            | Pixel::YUVJ422P
            | Pixel::YUV444P
            | Pixel::YUVJ444P
            | Pixel::GRAY8
    );
    if !eight_bit || picture.planes() == 0 {
        return None;
    }
    Some(LumaGrid::from_plane(
        picture.data(0),
        picture.stride(0),
        picture.width() as usize,
        picture.height() as usize,
        GRID_W,
        GRID_H,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 320x240 picture with noise and bright squares at `squares`
    /// (x, y, size).
    fn picture(squares: &[(usize, usize, usize)], seed: u32) -> VideoFrame {
        let (w, h) = (320u32, 240u32);
        let mut f = VideoFrame::new(Pixel::YUV420P, w, h);
        let stride = f.stride(0);
        let mut noise = seed.wrapping_mul(2_654_435_761);
        let y = f.data_mut(0);
        for row in 0..h as usize {
            for col in 0..w as usize {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                let mut v = 100 + (noise % 9) as i32 - 4;
                if squares
                    .iter()
                    .any(|(x, y, s)| col >= *x && col < x + s && row >= *y && row < y + s)
                {
                    v = 230;
                }
                y[row * stride + col] = v as u8;
            }
        }
        f
    }

    #[test]
    fn new_motion_outside_the_regions_is_seen_and_inside_is_not() {
        let mut mask = MotionMask::default();
        let car = BBox::new(40.0, 40.0, 120.0, 100.0);
        assert!(
            mask.moved_outside(&picture(&[], 1), &[car]),
            "no reference yet: the model looks"
        );
        mask.reference(&picture(&[(60, 60, 30)], 1));
        // Noise only: nothing moved.
        assert!(!mask.moved_outside(&picture(&[(60, 60, 30)], 2), &[car]));
        // The object shifted inside its region: explained.
        assert!(!mask.moved_outside(&picture(&[(70, 62, 30)], 3), &[car]));
        // Someone new at the far side: not explained.
        assert!(mask.moved_outside(&picture(&[(60, 60, 30), (250, 150, 24)], 4), &[car]));
        // Without regions, the object's own shift counts.
        assert!(mask.moved_outside(&picture(&[(70, 62, 30)], 5), &[]));
        // The whole picture brighter (auto exposure) is not motion.
        let mut brighter = picture(&[(60, 60, 30)], 6);
        let stride = brighter.stride(0);
        for row in 0..240 {
            for v in &mut brighter.data_mut(0)[row * stride..row * stride + 320] {
                *v = v.saturating_add(30);
            }
        }
        assert!(!mask.moved_outside(&brighter, &[car]));
        mask.forget();
        assert!(mask.moved_outside(&picture(&[(60, 60, 30)], 7), &[car]));
    }

    #[test]
    fn what_moved_comes_as_one_box_per_group_smallest_first() {
        let mut mask = MotionMask::default();
        assert!(mask.moving_boxes(&picture(&[(60, 60, 30)], 1)).is_empty());
        mask.reference(&picture(&[(60, 60, 30)], 1));
        assert!(mask.moving_boxes(&picture(&[(60, 60, 30)], 2)).is_empty());
        // The square moved 20 px right, and a small one appeared far off.
        let boxes = mask.moving_boxes(&picture(&[(80, 60, 30), (250, 150, 12)], 3));
        assert_eq!(boxes.len(), 2, "{boxes:?}");
        let (small, large) = (&boxes[0], &boxes[1]);
        assert!(small.x1 <= 250.0 && small.x2 >= 262.0 && small.y1 <= 150.0 && small.y2 >= 162.0);
        assert!(large.x1 <= 60.0 && large.x2 >= 110.0, "{large:?}");
        assert!(small.area() < large.area());
    }

    #[test]
    fn a_picture_it_cannot_read_counts_as_moved() {
        let mut mask = MotionMask::default();
        mask.reference(&picture(&[], 1));
        let ten_bit = VideoFrame::new(Pixel::YUV420P10LE, 320, 240);
        assert!(mask.moved_outside(&ten_bit, &[]));
    }
}
