//! Motion seen in an idle camera's key frames. Frame sizes are a free motion
//! hint only where the encoder spends bits on what changes (VBR); a camera at
//! constant bitrate (CBR, usual for sub-streams planned against the link)
//! sends P-frames of the same size whatever happens. Its key frames are
//! decoded anyway while idle (for the picture checks), so each is compared
//! with the previous one on a coarse luma grid: a few cells that changed
//! beyond the picture's noise and beyond a change of the whole picture
//! (auto exposure, dusk) mean something moved, and the camera wakes within
//! one GOP of the onset whatever its rate control.

use xueliang_core::luma::LumaGrid;
use xueliang_core::DecodedFrame;

/// Cells across and down: 12x12 pixels on a D1 picture, so a person far
/// down a village road (~15x40 pixels) still covers a few of them. (The
/// motion mask of a reduced detection rate uses the same grid.)
pub(crate) const GRID_W: usize = 64;
pub(crate) const GRID_H: usize = 48;
/// A cell changed when its mean moved more than this (0-255)...
const CELL_FLOOR: f32 = 12.0;
/// ...and more than this many times the typical cell's change (noise).
const NOISE_SPREAD: f32 = 10.0;
/// Something moved when at least this many cells changed.
const MIN_CELLS: usize = 3;

/// The previous idle key frame's grid of one camera.
#[derive(Debug, Default)]
pub struct KeyFrameMotion {
    last: Option<LumaGrid>,
}

impl KeyFrameMotion {
    /// Whether `frame` (an idle key frame) shows motion against the previous
    /// one; it becomes the reference for the next.
    pub fn moved(&mut self, frame: &DecodedFrame) -> bool {
        let grid = LumaGrid::from_luma(
            &frame.y,
            frame.width as usize,
            frame.height as usize,
            GRID_W,
            GRID_H,
        );
        let moved = self
            .last
            .as_ref()
            .is_some_and(|last| grid.changed_cells(last, CELL_FLOOR, NOISE_SPREAD) >= MIN_CELLS);
        self.last = Some(grid);
        moved
    }

    /// The camera left idle: the next idle key frame starts afresh (the
    /// scene may have changed meanwhile without that being motion now).
    pub fn forget(&mut self) {
        self.last = None;
    }
}
