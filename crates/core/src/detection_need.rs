//! How often a camera's frames need the model, as its analytics judge from
//! what they track, and where the tracked objects are: the analytics thread
//! writes both after each detected frame, the camera's decoder reads them for
//! each decoded one. Per camera: an atomic and a small mutex only these two
//! threads touch.

use crate::detection::BBox;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Mutex;

/// What the analytics need from the next frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DetectionNeed {
    /// Nothing tracked that needs watching: the camera follows its motion
    /// (busy at the full rate while the stream shows motion, idle after the
    /// quiet time).
    #[default]
    Nothing,
    /// Every tracked object is confirmed, seen and far from the rules'
    /// geometry: the camera stays busy, and frames go to the model at the
    /// reduced rate unless something moves outside the tracked objects.
    Reduced,
    /// Objects appear, are uncertain, or move near a zone edge or counting
    /// line: the full rate.
    Full,
}

impl DetectionNeed {
    /// The name the API and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionNeed::Nothing => "none",
            DetectionNeed::Reduced => "reduced",
            DetectionNeed::Full => "full",
        }
    }

    fn code(self) -> u8 {
        match self {
            DetectionNeed::Nothing => 0,
            DetectionNeed::Reduced => 1,
            DetectionNeed::Full => 2,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            0 => DetectionNeed::Nothing,
            1 => DetectionNeed::Reduced,
            _ => DetectionNeed::Full,
        }
    }
}

/// A camera's current need and the regions of its tracked objects (in frame
/// pixels, widened to where each may move before the next reduced-rate
/// detection). Motion inside them is explained; motion elsewhere is new.
#[derive(Debug, Default)]
pub struct NeedBoard {
    need: AtomicU8,
    /// A reduced need's detections per second (f32 bits).
    reduced_fps: AtomicU32,
    regions: Mutex<Vec<BBox>>,
}

impl NeedBoard {
    pub fn need(&self) -> DetectionNeed {
        DetectionNeed::from_code(self.need.load(Ordering::Relaxed))
    }

    /// A reduced need's detections per second (0 before any was set).
    pub fn reduced_fps(&self) -> f64 {
        f32::from_bits(self.reduced_fps.load(Ordering::Relaxed)) as f64
    }

    /// Publishes the need and, with [`DetectionNeed::Reduced`], its rate and
    /// the tracked objects' regions (kept as they were otherwise: only read
    /// then).
    pub fn set(&self, need: DetectionNeed, fps: f64, regions: impl FnOnce() -> Vec<BBox>) {
        if need == DetectionNeed::Reduced {
            let regions = regions();
            // A poisoned lock only means a panic elsewhere mid-copy: the
            // regions are replaced whole here either way.
            *self.regions.lock().unwrap_or_else(|e| e.into_inner()) = regions;
            self.reduced_fps
                .store((fps as f32).to_bits(), Ordering::Relaxed);
        }
        self.need.store(need.code(), Ordering::Relaxed);
    }

    /// Copies the regions into `out` (reusing its buffer).
    pub fn regions_into(&self, out: &mut Vec<BBox>) {
        out.clear();
        out.extend_from_slice(&self.regions.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_round_trips_and_regions_follow_a_reduced_need() {
        let board = NeedBoard::default();
        assert_eq!(board.need(), DetectionNeed::Nothing);
        let car = BBox::new(10.0, 20.0, 110.0, 80.0);
        board.set(DetectionNeed::Reduced, 1.5, || vec![car]);
        assert_eq!(board.need(), DetectionNeed::Reduced);
        assert_eq!(board.reduced_fps(), 1.5);
        let mut out = vec![BBox::new(0.0, 0.0, 1.0, 1.0); 3];
        board.regions_into(&mut out);
        assert_eq!(out, vec![car]);
        // Full: the regions are not even computed.
        board.set(DetectionNeed::Full, 5.0, || panic!("not asked for"));
        assert_eq!(board.need(), DetectionNeed::Full);
        board.set(DetectionNeed::Nothing, 5.0, Vec::new);
        assert_eq!(board.reduced_fps(), 1.5, "kept from the last reduced need");
        assert_eq!(board.need(), DetectionNeed::Nothing);
    }
}
