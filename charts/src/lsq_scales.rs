//! LSQ's learned scales over a QAT run: each layer's scale as a fraction of where it started
//! (the recipe's calibration), so the four layers share one axis.

use crate::theme::{BLUE, GREEN, ORANGE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use quant_core::model::Layer;
use quant_core::qat::Point;

const COLORS: [RGBColor; 4] = [BLUE, ORANGE, GREEN, VERMILLION];

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[Point],
    steps: usize,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let Some(start) = points.first().and_then(|p| p.scales) else {
        return area.present();
    };
    let x_max = steps.max(points.last().map_or(1, |p| p.step)).max(1) as f64;
    let series: Vec<Vec<(f64, f64)>> = (0..4)
        .map(|l| {
            points
                .iter()
                .filter_map(|p| Some((p.step as f64, f64::from(p.scales?[l] / start[l]))))
                .collect()
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flatten()
        .fold((1.0f64, 1.0f64), |(a, b), &(_, r)| (a.min(r), b.max(r)));
    // At least ±2 % around the start, so the first steps' small moves are not magnified.
    let pad = ((hi - lo) * 0.1).max(0.02);
    let mut chart =
        frame(area, theme, 52.0).build_cartesian_2d(0f64..x_max * 1.12, (lo - pad)..(hi + pad))?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("training steps")
        .y_desc("scale ÷ its start")
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|s| format!("{s:.0}"))
        .y_label_formatter(&|r| format!("{r:.2}"))
        .draw()?;
    for ((layer, line), color) in Layer::ALL.into_iter().zip(&series).zip(COLORS) {
        chart.draw_series(LineSeries::new(
            line.iter().copied(),
            theme.stroke(color, 2.0),
        ))?;
        if let Some(&(x, y)) = line.last() {
            let style = theme.font(11.0).pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series([Text::new(layer.name(), (x + x_max * 0.01, y), style)])?;
        }
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::eval::Evaluation;

    #[test]
    fn each_layer_is_drawn_and_named() {
        let point = |step, f: f32| Point {
            step,
            train_loss: None,
            test: Evaluation::default(),
            scales: Some([0.35 * f, 0.32 * f, 0.23 * f, 0.19]),
        };
        let points = [point(0, 1.0), point(25, 0.99), point(50, 0.97)];
        let svg = crate::svg(640, 320, |area| {
            draw(&area, &points, 100, &Theme::default()).unwrap()
        });
        for name in ["conv1", "conv2", "fc1", "fc2"] {
            assert!(svg.contains(name), "{name}");
        }
        assert!(svg.contains("scale ÷ its start"));
        // Without LSQ there is nothing to draw.
        let plain = Point {
            scales: None,
            ..points[0]
        };
        let empty = crate::svg(640, 320, |area| {
            draw(&area, &[plain], 100, &Theme::default()).unwrap()
        });
        assert!(!empty.contains("conv1"));
    }
}
