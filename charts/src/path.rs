//! Polylines as a backend receives them, made cheaper to draw without changing what they show.

/// `points` with the middle points of every straight horizontal or vertical run removed, and
/// repeated points dropped. Stroking the result covers exactly the same pixels: a point inside a
/// straight run is not a corner. The staircase samples 2,048 inputs and nearly all of them lie
/// on a tread; on a canvas each point is one call from wasm into the page, so 4,000 become a
/// few hundred.
pub fn axis_runs(points: impl IntoIterator<Item = (i32, i32)>) -> Vec<(i32, i32)> {
    let between = |u: i32, v: i32, w: i32| (u <= v && v <= w) || (u >= v && v >= w);
    let mut out: Vec<(i32, i32)> = Vec::new();
    for p in points {
        if out.last() == Some(&p) {
            continue;
        }
        if let [.., a, b] = out[..] {
            let horizontal = a.1 == b.1 && b.1 == p.1 && between(a.0, b.0, p.0);
            let vertical = a.0 == b.0 && b.0 == p.0 && between(a.1, b.1, p.1);
            if horizontal || vertical {
                *out.last_mut().expect("two points") = p;
                continue;
            }
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_runs_keep_their_ends_and_corners() {
        // A two-step staircase sampled densely: treads, risers, repeats.
        let mut pts = Vec::new();
        for x in 0..=10 {
            pts.push((x, 50));
        }
        pts.push((10, 50));
        for y in (30..50).rev() {
            pts.push((10, y));
        }
        for x in 10..=20 {
            pts.push((x, 30));
        }
        assert_eq!(axis_runs(pts), [(0, 50), (10, 50), (10, 30), (20, 30)]);
    }

    #[test]
    fn turning_back_and_slopes_are_kept() {
        // Overshooting and coming back along the same line is not a straight run.
        assert_eq!(
            axis_runs([(0, 0), (10, 0), (5, 0)]),
            [(0, 0), (10, 0), (5, 0)]
        );
        assert_eq!(
            axis_runs([(0, 0), (0, 10), (0, 4)]),
            [(0, 0), (0, 10), (0, 4)]
        );
        // Diagonals are left to the canvas.
        assert_eq!(
            axis_runs([(0, 0), (1, 1), (2, 2)]),
            [(0, 0), (1, 1), (2, 2)]
        );
        assert_eq!(axis_runs([(3, 3)]), [(3, 3)]);
        assert!(axis_runs([]).is_empty());
    }
}
