//! The QAT curve: the fake-quantized network's test accuracy against training steps (left
//! axis), the training loss (right axis), the accuracy before any step (the line to beat: what
//! the recipe gives without training) and FP32's (the ceiling).

use crate::theme::{BLUE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use quant_core::qat::Point;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[Point],
    steps: usize,
    fp32: Option<f64>,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let x_max = steps.max(points.last().map_or(1, |p| p.step)).max(1) as f64;
    let losses = || {
        points
            .iter()
            .filter_map(|p| p.train_loss.map(|l| (p.step, l)))
    };
    // The loss axis fits the first losses (the highest) and never collapses to nothing.
    let loss_max = losses().map(|(_, l)| l).fold(0.0f64, f64::max).max(0.05) * 1.1;

    let mut builder = frame(area, theme, 52.0);
    builder.right_y_label_area_size(theme.px(48.0));
    let mut chart = builder
        .build_cartesian_2d(0f64..x_max, 0f64..100f64)?
        .set_secondary_coord(0f64..x_max, 0f64..loss_max);
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("training steps")
        .y_desc("test accuracy (%)")
        .x_labels(6)
        .x_label_formatter(&|s| format!("{s:.0}"))
        .draw()?;
    chart
        .configure_secondary_axes()
        .axis_style(theme.foreground())
        .label_style(theme.font(11.0))
        .axis_desc_style(theme.font(12.0))
        .y_desc("training loss")
        .y_labels(5)
        .y_label_formatter(&|l| format!("{l:.2}"))
        .draw()?;

    // Each reference line is labelled just below it, FP32 at the right and "before" at the
    // left, so the two never collide when QAT starts close to FP32 (at 3 bits and more); the
    // curve starts on the "before" line and rises, so the space below it on the left is free.
    let reference = |chart: &mut ChartContext<'_, DB, _>, acc: f64, text: String, right: bool| {
        chart.draw_series(DashedLineSeries::new(
            [(0.0, acc), (x_max, acc)],
            theme.px(3.0),
            theme.px(3.0),
            theme.stroke(theme.foreground(), 1.0),
        ))?;
        let (x, h) = if right {
            (x_max * 0.98, HPos::Right)
        } else {
            (x_max * 0.02, HPos::Left)
        };
        // Below the line, unless that would leave the chart.
        let (y, v) = if acc > 12.0 {
            (acc - 1.5, VPos::Top)
        } else {
            (acc + 1.5, VPos::Bottom)
        };
        let style = theme.font(11.0).pos(Pos::new(h, v));
        chart.draw_series([Text::new(text, (x, y), style)])?;
        Ok::<_, DrawingAreaErrorKind<DB::ErrorType>>(())
    };
    if let Some(acc) = fp32 {
        reference(&mut chart, acc, format!("FP32 {acc:.1}%"), true)?;
    }
    if let Some(first) = points.first().filter(|p| p.step == 0) {
        let acc = first.test.accuracy;
        reference(&mut chart, acc, format!("before QAT {acc:.1}%"), false)?;
    }

    chart.draw_secondary_series(LineSeries::new(
        losses().map(|(s, l)| (s as f64, l)),
        theme.stroke(VERMILLION, 1.5),
    ))?;
    let accuracy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.step as f64, p.test.accuracy))
        .collect();
    chart.draw_series(LineSeries::new(
        accuracy.iter().copied(),
        theme.stroke(BLUE, 2.5),
    ))?;
    chart.draw_series(
        accuracy
            .iter()
            .map(|&xy| Circle::new(xy, theme.px(3.0), BLUE.filled())),
    )?;
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::eval::Evaluation;

    fn point(step: usize, accuracy: f64, loss: Option<f64>) -> Point {
        Point {
            step,
            train_loss: loss,
            test: Evaluation {
                accuracy,
                ..Evaluation::default()
            },
            scales: None,
        }
    }

    #[test]
    fn the_curve_names_the_line_to_beat_and_the_ceiling() {
        let points = [
            point(0, 32.6, None),
            point(25, 49.2, Some(1.7)),
            point(50, 63.0, Some(1.4)),
        ];
        let svg = crate::svg(640, 320, |area| {
            draw(&area, &points, 500, Some(99.0), &Theme::default()).unwrap()
        });
        assert!(svg.contains("before QAT 32.6%"), "{svg}");
        assert!(svg.contains("FP32 99.0%"));
        assert!(svg.contains("training loss"));
        // Three accuracy markers.
        assert_eq!(svg.matches("<circle").count(), 3);
    }
}
