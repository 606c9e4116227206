//! Plane geometry in normalised frame coordinates.

use xueliang_core::zones::Point;

/// Whether `p` lies inside the polygon (even-odd rule; points on an edge may
/// fall either way).
pub fn inside(p: Point, polygon: &[Point]) -> bool {
    let (x, y) = (p[0], p[1]);
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let ([xi, yi], [xj, yj]) = (polygon[i], polygon[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Which side of the line through `a` and `b` the point is on: positive on
/// the left looking from `a` to `b` (in image coordinates, y down, "left" is
/// the side a viewer facing along a→b has on their left), negative on the
/// right, 0 on the line.
pub fn side(a: Point, b: Point, p: Point) -> f64 {
    // y grows downwards: flip the sign so "left" keeps its everyday meaning.
    -((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))
}

/// Whether the move from `p` to `q` crosses the segment `a`-`b`. A point
/// exactly on the line counts as on its left, so a walk through the line
/// counts once even when one position lies exactly on it.
pub fn crosses(a: Point, b: Point, p: Point, q: Point) -> bool {
    let (d1, d2) = (side(a, b, p), side(a, b, q));
    let (d3, d4) = (side(p, q, a), side(p, q, b));
    (d1 >= 0.0) != (d2 >= 0.0) && d3 * d4 <= 0.0
}

/// The distance from `p` to the segment `a`-`b`.
pub fn distance_to_segment(p: Point, a: Point, b: Point) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (x, y) = (a[0] + t * dx, a[1] + t * dy);
    ((p[0] - x).powi(2) + (p[1] - y).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_in_polygon() {
        let square = [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]];
        assert!(inside([0.5, 0.5], &square));
        assert!(!inside([0.1, 0.5], &square));
        assert!(!inside([0.5, 0.9], &square));
        let l_shape = [
            [0.0, 0.0],
            [1.0, 0.0],
            [1.0, 0.5],
            [0.5, 0.5],
            [0.5, 1.0],
            [0.0, 1.0],
        ];
        assert!(inside([0.25, 0.75], &l_shape));
        assert!(!inside([0.75, 0.75], &l_shape));
    }

    #[test]
    fn distances_to_a_segment() {
        let (a, b) = ([0.2, 0.5], [0.8, 0.5]);
        assert!((distance_to_segment([0.5, 0.6], a, b) - 0.1).abs() < 1e-9);
        // Beyond an end: the distance to that end.
        assert!((distance_to_segment([0.0, 0.5], a, b) - 0.2).abs() < 1e-9);
        assert!((distance_to_segment([0.8, 0.8], a, b) - 0.3).abs() < 1e-9);
        // A segment of no length is a point.
        assert!((distance_to_segment([0.5, 0.9], a, a) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn sides_and_crossings() {
        // A line from top to bottom of the picture: left of it is the viewer's right
        // side of the image... looking from a (top) to b (bottom), image-left (x < 0.5)
        // is on the walker's right.
        let (a, b) = ([0.5, 0.0], [0.5, 1.0]);
        assert!(
            side(a, b, [0.8, 0.5]) > 0.0,
            "image right is left of a downward line"
        );
        assert!(side(a, b, [0.2, 0.5]) < 0.0);
        assert!(crosses(a, b, [0.4, 0.5], [0.6, 0.5]));
        assert!(!crosses(a, b, [0.4, 0.5], [0.45, 0.5]));
        // Through a point exactly on the line: one crossing, not two or none.
        let steps = [[0.48, 0.5], [0.5, 0.5], [0.52, 0.5]];
        let n = steps
            .windows(2)
            .filter(|w| crosses(a, b, w[0], w[1]))
            .count();
        assert_eq!(n, 1);
        // Passing beyond the segment's end is no crossing.
        let (a, b) = ([0.5, 0.0], [0.5, 0.4]);
        assert!(!crosses(a, b, [0.4, 0.5], [0.6, 0.5]));
    }
}
