//! How many cameras a node should run.

/// A node's share of `cameras` among `live_nodes` (itself included): an
/// even split, rounded up so every camera has a place, and never more than
/// `max_cameras` (0: no cap).
pub fn fair_share(cameras: usize, live_nodes: usize, max_cameras: usize) -> usize {
    let share = cameras.div_ceil(live_nodes.max(1));
    match max_cameras {
        0 => share,
        cap => share.min(cap),
    }
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn shares_cover_every_camera_and_respect_the_cap() {
        assert_eq!(fair_share(10, 3, 0), 4);
        assert_eq!(fair_share(9, 3, 0), 3);
        assert_eq!(fair_share(10, 3, 2), 2);
        assert_eq!(fair_share(0, 3, 0), 0);
        assert_eq!(fair_share(5, 0, 0), 5, "alone (own heartbeat not seen yet)");
        for cameras in 0..50 {
            for nodes in 1..8 {
                assert!(fair_share(cameras, nodes, 0) * nodes >= cameras);
            }
        }
    }
}
