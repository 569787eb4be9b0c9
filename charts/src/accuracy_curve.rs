//! Test accuracy against bit width for both schemes, filling in as evaluations finish, with the
//! FP32 accuracy as a reference line and the current setting ringed.

use crate::error_curve::scheme_color;
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_core::quant::{Bits, Scheme};

/// One setting's accuracy so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccuracyPoint {
    pub bits: Bits,
    pub scheme: Scheme,
    /// Percentage correct so far.
    pub accuracy: f64,
    /// Whether every test digit has been evaluated (partial points are drawn hollow).
    pub done: bool,
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[AccuracyPoint],
    fp32: Option<f64>,
    current: Option<(Bits, Scheme)>,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let mut chart = frame(area, theme, 52.0).build_cartesian_2d(1.7f64..8.3f64, 0f64..100f64)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("bits")
        .y_desc("test accuracy (%)")
        .x_labels(7)
        .x_label_formatter(&|b| format!("{b:.0}"))
        .draw()?;

    if let Some(acc) = fp32 {
        chart.draw_series(DashedLineSeries::new(
            [(1.7, acc), (8.3, acc)],
            theme.px(3.0),
            theme.px(3.0),
            theme.stroke(theme.foreground(), 1.0),
        ))?;
        chart.draw_series([Text::new(
            format!("FP32 {acc:.2}%"),
            (1.8, acc - 7.0),
            theme.font(11.0),
        )])?;
    }
    let in_range = |p: &&AccuracyPoint| p.bits.get() <= 8;
    for scheme in Scheme::ALL {
        let color = scheme_color(scheme);
        let mine: Vec<&AccuracyPoint> = points
            .iter()
            .filter(in_range)
            .filter(|p| p.scheme == scheme)
            .collect();
        let done: Vec<(f64, f64)> = mine
            .iter()
            .filter(|p| p.done)
            .map(|p| (f64::from(p.bits.get()), p.accuracy))
            .collect();
        let style = theme.stroke(color, 2.0);
        match scheme {
            Scheme::Symmetric => {
                chart.draw_series(LineSeries::new(done, style))?;
            }
            Scheme::Asymmetric => {
                chart.draw_series(DashedLineSeries::new(
                    done,
                    theme.px(6.0),
                    theme.px(4.0),
                    style,
                ))?;
            }
        }
        for p in mine {
            let xy = (f64::from(p.bits.get()), p.accuracy);
            let fill = if p.done {
                color.filled()
            } else {
                theme.stroke(color, 1.5)
            };
            match scheme {
                Scheme::Symmetric => chart.draw_series([Circle::new(xy, theme.px(4.0), fill)])?,
                Scheme::Asymmetric => {
                    chart.draw_series([TriangleMarker::new(xy, theme.px(5.0), fill)])?
                }
            };
        }
    }
    if let Some(p) = points
        .iter()
        .find(|p| Some((p.bits, p.scheme)) == current && in_range(p))
    {
        chart.draw_series([Circle::new(
            (f64::from(p.bits.get()), p.accuracy),
            theme.px(9.0),
            theme.stroke(theme.foreground(), 2.5),
        )])?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_points_are_hollow_and_fp32_is_labelled() {
        let b = |n| Bits::new(n).unwrap();
        let points = [
            AccuracyPoint {
                bits: b(8),
                scheme: Scheme::Symmetric,
                accuracy: 98.0,
                done: true,
            },
            AccuracyPoint {
                bits: b(4),
                scheme: Scheme::Symmetric,
                accuracy: 90.0,
                done: false,
            },
            AccuracyPoint {
                bits: b(16),
                scheme: Scheme::Symmetric,
                accuracy: 98.0,
                done: true,
            },
        ];
        let svg = crate::svg(600, 360, |a| {
            draw(
                &a,
                &points,
                Some(98.4),
                Some((b(4), Scheme::Symmetric)),
                &Theme::default(),
            )
            .unwrap()
        });
        assert!(svg.contains("FP32 98.40%"));
        let filled = svg
            .matches("r=\"4\" opacity=\"1\" fill=\"#0072B2\"")
            .count();
        let circles = svg
            .lines()
            .filter(|l| l.contains("<circle") && l.contains("r=\"4\""))
            .count();
        assert_eq!(circles, 2, "16 bits is off this chart");
        assert!(filled <= 1);
        assert!(
            svg.lines().any(|l| l.contains("r=\"9\"")),
            "current setting ringed"
        );
    }
}
