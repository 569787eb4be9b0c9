//! What a byte budget buys: each measured per-layer assignment's size against its accuracy, the
//! measured Pareto front joined by a line, the budget as a vertical line with the best recipe
//! under it marked, and the reader's own recipe ringed.

use crate::theme::{BLUE, GREEN, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One measured assignment.
#[derive(Clone, Debug, PartialEq)]
pub struct SizePoint {
    pub kilobytes: f64,
    pub accuracy: f64,
    pub on_front: bool,
}

/// Accuracies below this are drawn on the bottom edge: the axis zooms in on what works.
const FLOOR: f64 = 80.0;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[SizePoint],
    budget_kb: Option<f64>,
    best: Option<(f64, f64)>,
    reader: Option<(f64, f64)>,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let xs = points
        .iter()
        .map(|p| p.kilobytes)
        .chain(reader.map(|r| r.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
    let pad = ((x1 - x0) * 0.05).max(1.0);
    let lowest = points
        .iter()
        .map(|p| p.accuracy)
        .filter(|&a| a >= FLOOR)
        .fold(97.0f64, f64::min);
    let y0 = (lowest - 1.0).floor().max(FLOOR - 1.0);
    let mut chart =
        frame(area, theme, 44.0).build_cartesian_2d((x0 - pad)..(x1 + pad), y0..100.0)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("model size (KB, scales and FP32 biases counted)")
        .y_desc("accuracy (%)")
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let at = |kb: f64, acc: f64| (kb, acc.max(y0));
    chart.draw_series(points.iter().filter(|p| !p.on_front).map(|p| {
        Circle::new(
            at(p.kilobytes, p.accuracy),
            theme.px(3.0),
            theme.translucent(BLUE, 0.5, 1.0),
        )
    }))?;
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.on_front)
        .map(|p| at(p.kilobytes, p.accuracy))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A staircase: past a point, nothing better until the next one.
    let steps: Vec<(f64, f64)> = front
        .windows(2)
        .flat_map(|w| [w[0], (w[1].0, w[0].1)])
        .chain(front.last().copied())
        .collect();
    chart.draw_series(LineSeries::new(steps, theme.stroke(GREEN, 2.0)))?;
    chart.draw_series(
        front
            .iter()
            .map(|&p| Circle::new(p, theme.px(4.0), GREEN.filled())),
    )?;
    if let Some(b) = budget_kb {
        chart.draw_series(DashedLineSeries::new(
            [(b, y0), (b, 100.0)],
            theme.px(5.0),
            theme.px(4.0),
            theme.stroke(VERMILLION, 1.5),
        ))?;
        chart.draw_series([Text::new(
            format!("budget {b:.0} KB"),
            (b, 100.0),
            theme.font(11.0).color(&VERMILLION),
        )])?;
    }
    if let Some((kb, acc)) = best {
        chart.draw_series([Circle::new(
            at(kb, acc),
            theme.px(7.0),
            theme.stroke(VERMILLION, 2.5),
        )])?;
    }
    if let Some((kb, acc)) = reader {
        chart.draw_series([Circle::new(
            at(kb, acc),
            theme.px(9.0),
            theme.stroke(theme.foreground(), 2.0),
        )])?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_front_budget_and_reader() {
        let points = vec![
            SizePoint {
                kilobytes: 106.0,
                accuracy: 32.6,
                on_front: true,
            },
            SizePoint {
                kilobytes: 159.0,
                accuracy: 98.4,
                on_front: true,
            },
            SizePoint {
                kilobytes: 160.0,
                accuracy: 98.0,
                on_front: false,
            },
            SizePoint {
                kilobytes: 212.0,
                accuracy: 99.0,
                on_front: true,
            },
        ];
        let svg = crate::svg(640, 360, |a| {
            draw(
                &a,
                &points,
                Some(170.0),
                Some((159.0, 98.4)),
                Some((212.0, 99.0)),
                &Theme::default(),
            )
            .unwrap()
        });
        assert!(svg.contains("budget 170 KB"));
        // The reader's ring and the best point's ring.
        assert!(svg.contains("r=\"9\""));
        assert!(svg.contains("r=\"7\""));
    }
}
