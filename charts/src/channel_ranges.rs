//! Every output channel's range [min, max] as a vertical bar, with the per-tensor range over
//! them: the picture of why per-channel quantization wins. One grid stretched over the widest
//! channel spends most of its levels where the narrow channels have no weights.

use crate::theme::{BLUE, GREEN, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ranges: &[(f32, f32)],
    tensor: (f32, f32),
    selected: Option<usize>,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let (lo, hi) = (f64::from(tensor.0.min(0.0)), f64::from(tensor.1.max(0.0)));
    let pad = ((hi - lo) * 0.08).max(1e-6);
    let n = ranges.len().max(1) as f64;
    let mut chart =
        frame(area, theme, 52.0).build_cartesian_2d(-0.5..n - 0.5, lo - pad..hi + pad)?;
    themed(&mut chart.configure_mesh(), theme)
        .disable_x_mesh()
        .x_desc("output channel")
        .y_desc("weight")
        .x_labels(8)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| Theme::tick(*v))
        .draw()?;
    // The per-tensor range: what one scale must cover.
    for v in [f64::from(tensor.0), f64::from(tensor.1)] {
        chart.draw_series([PathElement::new(
            vec![(-0.5, v), (n - 0.5, v)],
            theme.stroke(GREEN, 1.5),
        )])?;
    }
    let half = 0.32;
    chart.draw_series(ranges.iter().enumerate().map(|(c, &(a, b))| {
        let x = c as f64;
        let color = if Some(c) == selected {
            VERMILLION
        } else {
            BLUE
        };
        Rectangle::new(
            [(x - half, f64::from(a)), (x + half, f64::from(b))],
            color.filled(),
        )
    }))?;
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_channel_the_selected_one_marked() {
        let ranges: Vec<(f32, f32)> = (0..10)
            .map(|c| (-0.1 * c as f32, 0.05 * c as f32 + 0.01))
            .collect();
        let svg = crate::svg(600, 300, |a| {
            draw(&a, &ranges, (-0.9, 0.46), Some(3), &Theme::default()).unwrap()
        });
        assert_eq!(svg.matches("fill=\"#0072B2\"").count(), 9, "blue bars");
        assert_eq!(
            svg.matches("fill=\"#D55E00\"").count(),
            1,
            "the selected channel"
        );
        assert!(svg.contains("output channel"));
    }
}
