//! A picture's brightness on a coarse grid: the mean luma of each cell. Cheap
//! to make from a decoded luma plane (every second pixel of every second row)
//! and coarse enough to average sensor noise and compression away. The
//! picture checks compare grids a few seconds apart (frozen, covered, turned);
//! the decoder compares an idle camera's key frames (something moved).

/// Mean brightness (0-255) of each cell of a `width` x `height` grid.
#[derive(Clone, Debug, PartialEq)]
pub struct LumaGrid {
    width: usize,
    height: usize,
    cells: Vec<f32>,
}

impl LumaGrid {
    /// The grid of a luma plane `y` of `width` x `height` pixels (rows packed,
    /// no padding), `grid_w` x `grid_h` cells. A plane shorter than its size
    /// says is read as far as it goes.
    pub fn from_luma(
        y: &[u8],
        width: usize,
        height: usize,
        grid_w: usize,
        grid_h: usize,
    ) -> LumaGrid {
        LumaGrid::from_plane(y, width, width, height, grid_w, grid_h)
    }

    /// The grid of a luma plane whose rows start `stride` bytes apart (a
    /// decoder's picture, rows padded).
    pub fn from_plane(
        y: &[u8],
        stride: usize,
        width: usize,
        height: usize,
        grid_w: usize,
        grid_h: usize,
    ) -> LumaGrid {
        let (grid_w, grid_h) = (grid_w.max(1), grid_h.max(1));
        let mut sums = vec![0u32; grid_w * grid_h];
        let mut counts = vec![0u32; grid_w * grid_h];
        let stride = stride.max(width);
        let rows = if y.len() >= width {
            height.min((y.len() - width) / stride.max(1) + 1)
        } else {
            0
        };
        // The cell of each sampled column, worked out once per picture.
        let columns: Vec<(usize, usize)> = (0..width)
            .step_by(2)
            .map(|col| (col, col * grid_w / width))
            .collect();
        for row in (0..rows).step_by(2) {
            let first = row * grid_h / height * grid_w;
            let line = &y[row * stride..row * stride + width];
            for &(col, cell) in &columns {
                sums[first + cell] += line[col] as u32;
                counts[first + cell] += 1;
            }
        }
        let cells = sums
            .iter()
            .zip(&counts)
            .map(|(s, c)| if *c > 0 { *s as f32 / *c as f32 } else { 0.0 })
            .collect();
        LumaGrid {
            width: grid_w,
            height: grid_h,
            cells,
        }
    }

    pub fn cells(&self) -> &[f32] {
        &self.cells
    }

    /// Whether `other` has the same grid (comparisons of two grids of
    /// different shapes read as "everything differs").
    pub fn same_shape(&self, other: &LumaGrid) -> bool {
        self.width == other.width && self.height == other.height
    }

    pub fn mean(&self) -> f32 {
        self.cells.iter().sum::<f32>() / self.cells.len() as f32
    }

    /// Standard deviation of the cells: how much the picture varies.
    pub fn contrast(&self) -> f32 {
        let m = self.mean();
        (self.cells.iter().map(|c| (c - m) * (c - m)).sum::<f32>() / self.cells.len() as f32).sqrt()
    }

    pub fn mean_abs_diff(&self, other: &LumaGrid) -> f32 {
        if !self.same_shape(other) {
            return f32::INFINITY;
        }
        self.cells
            .iter()
            .zip(&other.cells)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / self.cells.len() as f32
    }

    /// Correlation of the two pictures' brightness patterns (-1..1), blind to
    /// overall brightness and contrast (day and night, auto exposure).
    pub fn correlation(&self, other: &LumaGrid) -> f32 {
        if !self.same_shape(other) {
            return 0.0;
        }
        let (ma, mb) = (self.mean(), other.mean());
        let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
        for (a, b) in self.cells.iter().zip(&other.cells) {
            let (a, b) = (a - ma, b - mb);
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
        if aa <= f32::EPSILON || bb <= f32::EPSILON {
            return 0.0;
        }
        ab / (aa.sqrt() * bb.sqrt())
    }

    /// How many cells changed against `other` (see [`LumaGrid::changed`]).
    pub fn changed_cells(&self, other: &LumaGrid, floor: f32, spread: f32) -> usize {
        if !self.same_shape(other) {
            return self.cells.len();
        }
        self.changed(other, floor, spread).count()
    }

    /// The cells (column, row) that changed against `other` by more than
    /// `floor` and by more than `spread` times the typical cell's change (the
    /// median absolute deviation: sensor noise, compression), after taking
    /// out the change of the whole picture (the median cell's: auto exposure,
    /// a cloud, dusk), so that only local change counts. Grids of different
    /// shapes have no cells in common: none is listed.
    pub fn changed<'a>(
        &'a self,
        other: &LumaGrid,
        floor: f32,
        spread: f32,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        let diffs: Vec<f32> = if self.same_shape(other) {
            self.cells
                .iter()
                .zip(&other.cells)
                .map(|(a, b)| a - b)
                .collect()
        } else {
            Vec::new()
        };
        let shift = median(&mut diffs.clone());
        let deviations: Vec<f32> = diffs.iter().map(|d| (d - shift).abs()).collect();
        let threshold = floor.max(spread * median(&mut deviations.clone()));
        let width = self.width;
        deviations
            .into_iter()
            .enumerate()
            .filter(move |(_, d)| *d > threshold)
            .map(move |(i, _)| (i % width, i / width))
    }

    /// The grid's size in cells (across, down).
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Moves each cell `weight` (0-1) of the way towards `other`'s.
    pub fn blend(&mut self, other: &LumaGrid, weight: f32) {
        if !self.same_shape(other) {
            *self = other.clone();
            return;
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a += (b - *a) * weight;
        }
    }
}

/// The median of `values` (reorders them).
fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f32::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat grey picture with an optional bright square.
    fn picture(w: usize, h: usize, grey: u8, square: Option<(usize, usize, usize)>) -> Vec<u8> {
        let mut y = vec![grey; w * h];
        if let Some((x0, y0, size)) = square {
            for row in y0..y0 + size {
                for col in x0..x0 + size {
                    y[row * w + col] = 250;
                }
            }
        }
        y
    }

    #[test]
    fn cells_hold_the_mean_of_their_pixels() {
        let (w, h) = (64, 48);
        let y = picture(w, h, 100, Some((0, 0, 16)));
        let g = LumaGrid::from_luma(&y, w, h, 4, 3);
        assert_eq!(g.cells().len(), 12);
        assert_eq!(g.cells()[0], 250.0, "the square fills the first cell");
        assert_eq!(g.cells()[1], 100.0);
        assert!((g.mean() - (250.0 + 11.0 * 100.0) / 12.0).abs() < 1e-3);
        assert!(g.contrast() > 0.0);
    }

    #[test]
    fn changes_within_the_noise_do_not_count() {
        let (w, h) = (128, 96);
        // Every pixel +-8 of grey (a fixed pseudo-random sequence per seed);
        // with `bump`, one 8x8 cell 20 brighter.
        let noisy = |seed: u64, bump: bool| {
            let mut state = seed;
            let mut y = picture(w, h, 100, None);
            for (i, p) in y.iter_mut().enumerate() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *p = (92 + (state >> 33) % 17) as u8;
                if bump && (i / w) / 8 == 3 && (i % w) / 8 == 5 {
                    *p += 20;
                }
            }
            LumaGrid::from_luma(&y, w, h, 16, 12)
        };
        let (a, b) = (noisy(1, false), noisy(2, false));
        // A fixed floor under the noise sees changes in many cells...
        assert!(b.changed_cells(&a, 2.0, 0.0) > 20);
        // ...the noise-relative threshold in none...
        assert_eq!(b.changed_cells(&a, 2.0, 6.0), 0);
        // ...and it still sees a change well above the noise.
        assert_eq!(noisy(2, true).changed_cells(&a, 2.0, 6.0), 1);
    }

    #[test]
    fn a_short_plane_is_read_as_far_as_it_goes() {
        let g = LumaGrid::from_luma(&[7u8; 64 * 10], 64, 48, 4, 4);
        assert_eq!(g.cells()[0], 7.0);
        assert_eq!(g.cells()[15], 0.0, "rows past the plane count as nothing");
    }

    #[test]
    fn changed_cells_ignore_a_change_of_the_whole_picture() {
        let (w, h) = (128, 96);
        let before = LumaGrid::from_luma(&picture(w, h, 100, None), w, h, 16, 12);
        // Brighter everywhere (auto exposure): nothing changed locally.
        let brighter = LumaGrid::from_luma(&picture(w, h, 130, None), w, h, 16, 12);
        assert_eq!(brighter.changed_cells(&before, 10.0, 4.0), 0);
        assert!(brighter.mean_abs_diff(&before) > 29.0);
        // Brighter, and something bright in one 8x8 cell: one cell.
        let moved = LumaGrid::from_luma(&picture(w, h, 130, Some((8, 8, 8))), w, h, 16, 12);
        assert_eq!(moved.changed_cells(&before, 10.0, 4.0), 1);
        // Grids of another shape differ everywhere.
        let other = LumaGrid::from_luma(&picture(w, h, 100, None), w, h, 8, 6);
        assert_eq!(before.changed_cells(&other, 10.0, 4.0), 16 * 12);
        assert_eq!(before.correlation(&other), 0.0);
    }
}
