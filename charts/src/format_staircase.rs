//! A number format's staircase over one block: the input w on x, what the block stores it as
//! on y (read back as f32). Its treads are the block's levels — NF4's normal quantiles, FP8's
//! values crowding near zero, Q4_0's multiples of d — so unlike the integer staircase they need
//! not be evenly spaced. The identity line is the reference, the block's observed range is
//! marked. What each x becomes comes from the core (`Format::encode`), never from here.

use crate::theme::{BLUE, GREEN};
use crate::{DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Points along x: enough for FP8's finest steps near zero to show as treads.
const SAMPLES: usize = 2048;

/// `value(x)` for x over the block's range `[alpha, beta]` and a margin, where the format's
/// saturation (or the end of its grid) shows as the flat ends.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    value: &dyn Fn(f32) -> f32,
    alpha: f32,
    beta: f32,
    theme: &Theme,
) -> DrawResult<DB> {
    let (lo, hi) = (alpha.min(0.0), beta.max(0.0));
    let crate::staircase::Identity { mut chart, x0, x1 } =
        crate::staircase::identity_chart(area, lo, hi, "stored, read back as f32", theme)?;
    let steps = step_path(value, x0, x1);
    chart.draw_series(LineSeries::new(steps, theme.stroke(BLUE, 2.0)))?;
    for (x, label, y) in [
        (alpha, "min", x1 - (x1 - x0) * 0.06),
        (beta, "max", x0 + (x1 - x0) * 0.1),
    ] {
        let x = f64::from(x);
        chart.draw_series([PathElement::new(
            vec![(x, x0), (x, x1)],
            theme.stroke(GREEN, 1.5),
        )])?;
        chart.draw_series([Text::new(label, (x, y), theme.font(12.0))])?;
    }
    area.present()?;
    Ok(())
}

/// The step function sampled over `[x0, x1]`, with a vertical riser wherever the value changes
/// between samples, clamped to the chart (a saturating format never leaves it).
fn step_path(value: &dyn Fn(f32) -> f32, x0: f64, x1: f64) -> Vec<(f64, f64)> {
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(2 * SAMPLES);
    for i in 0..=SAMPLES {
        let x = x0 + (x1 - x0) * i as f64 / SAMPLES as f64;
        let y = f64::from(value(x as f32)).clamp(x0, x1);
        if let Some(&(_, prev)) = steps.last() {
            if prev != y {
                steps.push((x, prev));
            }
        }
        steps.push((x, y));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_steps_through_each_level_with_vertical_risers() {
        // A toy format with levels at −1, 0, 0.5 and 1.
        let levels = [-1.0f32, 0.0, 0.5, 1.0];
        let value = |x: f32| {
            *levels
                .iter()
                .min_by(|a, b| (*a - x).abs().total_cmp(&(*b - x).abs()))
                .unwrap()
        };
        let path = step_path(&value, -1.3, 1.3);
        let mut heights: Vec<f64> = path.iter().map(|p| p.1).collect();
        heights.dedup();
        assert_eq!(heights, [-1.0, 0.0, 0.5, 1.0]);
        // Every change of height is a riser: two points at one x.
        for w in path.windows(2) {
            assert!(w[0].1 == w[1].1 || w[0].0 == w[1].0, "{w:?}");
        }
        let svg = crate::svg(600, 400, |a| {
            draw(&a, &value, -1.0, 1.0, &Theme::default()).unwrap()
        });
        assert!(svg.contains("stored, read back as f32"));
    }
}
