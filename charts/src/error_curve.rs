//! Mean absolute error (log scale) or SQNR (dB) of the selected layer against bit width 2..8,
//! one line per scheme, with the reader's current setting ringed.

use crate::theme::{BLUE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_core::quant::{Bits, Scheme};
use quant_core::view::{ErrorPoint, Metric};

/// The style of a scheme's series: colour, dash, marker shape (so colour is never the only cue).
pub(crate) fn scheme_color(scheme: Scheme) -> RGBColor {
    match scheme {
        Scheme::Symmetric => BLUE,
        Scheme::Asymmetric => VERMILLION,
    }
}

fn value(p: &ErrorPoint, metric: Metric) -> Option<f64> {
    match metric {
        Metric::MeanAbsError => Some(p.mean_abs_error).filter(|v| *v > 0.0),
        Metric::Sqnr => p.sqnr_db,
    }
}

fn series<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<RangedCoordf64, Y>>,
    points: &[ErrorPoint],
    metric: Metric,
    current: (Bits, Scheme),
    theme: &Theme,
) -> DrawResult<DB> {
    for scheme in Scheme::ALL {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.scheme == scheme)
            .filter_map(|p| Some((f64::from(p.bits.get()), value(p, metric)?)))
            .collect();
        let color = scheme_color(scheme);
        let style = theme.stroke(color, 2.0);
        match scheme {
            Scheme::Symmetric => {
                chart.draw_series(LineSeries::new(pts.clone(), style))?;
                chart.draw_series(
                    pts.iter()
                        .map(|&p| Circle::new(p, theme.px(4.0), color.filled())),
                )?;
            }
            Scheme::Asymmetric => {
                chart.draw_series(DashedLineSeries::new(
                    pts.clone(),
                    theme.px(6.0),
                    theme.px(4.0),
                    style,
                ))?;
                chart.draw_series(
                    pts.iter()
                        .map(|&p| TriangleMarker::new(p, theme.px(5.0), color.filled())),
                )?;
            }
        }
    }
    if let Some(p) = points
        .iter()
        .find(|p| (p.bits, p.scheme) == current)
        .and_then(|p| Some((f64::from(p.bits.get()), value(p, metric)?)))
    {
        chart.draw_series([Circle::new(
            p,
            theme.px(9.0),
            theme.stroke(theme.foreground(), 2.5),
        )])?;
    }
    Ok(())
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[ErrorPoint],
    metric: Metric,
    current: (Bits, Scheme),
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let values: Vec<f64> = points.iter().filter_map(|p| value(p, metric)).collect();
    let (vmin, vmax) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (vmin, vmax) = if values.is_empty() {
        (1e-6, 1.0)
    } else {
        (vmin, vmax)
    };
    match metric {
        Metric::MeanAbsError => {
            let mut chart = frame(area, theme, 60.0)
                .build_cartesian_2d(1.7f64..8.3f64, (vmin / 2.0..vmax * 2.0).log_scale())?;
            themed(&mut chart.configure_mesh(), theme)
                .x_desc("bits")
                .y_desc("mean |w − ŵ| (log scale)")
                .x_labels(7)
                .x_label_formatter(&|b| format!("{b:.0}"))
                .y_label_formatter(&|v| Theme::minus(&format!("{v:.0e}")))
                .draw()?;
            series(&mut chart, points, metric, current, theme)?;
        }
        Metric::Sqnr => {
            let mut chart = frame(area, theme, 60.0)
                .build_cartesian_2d(1.7f64..8.3f64, (vmin - 3.0).min(0.0)..vmax + 5.0)?;
            themed(&mut chart.configure_mesh(), theme)
                .x_desc("bits")
                .y_desc("SQNR (dB)")
                .x_labels(7)
                .x_label_formatter(&|b| format!("{b:.0}"))
                .draw()?;
            series(&mut chart, points, metric, current, theme)?;
        }
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::model::{Layer, MnistNet};
    use quant_core::quantizer::LayerQuant;
    use quant_core::recipe::LayerRecipe;
    use quant_core::view::error_curve;

    /// The highlight ring is the only unfilled circle with a 9 px radius; find its centre.
    fn ring_center(svg: &str) -> (f64, f64) {
        let line = svg
            .lines()
            .find(|l| l.contains("<circle") && l.contains("r=\"9\"") && l.contains("fill=\"none\""))
            .expect("a highlight ring");
        let attr = |name: &str| -> f64 {
            let start = line.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            line[start..].split('"').next().unwrap().parse().unwrap()
        };
        (attr("cx"), attr("cy"))
    }

    fn marker_x(svg: &str, bits_marker_count: usize) -> Vec<f64> {
        let mut xs: Vec<f64> = svg
            .lines()
            .filter(|l| l.contains("<circle") && l.contains("r=\"4\""))
            .map(|l| {
                let s = l.find(" cx=\"").unwrap() + 5;
                l[s..].split('"').next().unwrap().parse().unwrap()
            })
            .collect();
        xs.sort_by(f64::total_cmp);
        assert_eq!(xs.len(), bits_marker_count);
        xs
    }

    #[test]
    fn highlight_sits_on_the_chosen_bitwidth() {
        let net = MnistNet::init(6);
        let lq = LayerQuant::new(&net, Layer::Conv2, LayerRecipe::default()).unwrap();
        let points = error_curve(&lq, LayerRecipe::default()).unwrap();
        for (bits, metric) in [
            (2, Metric::MeanAbsError),
            (5, Metric::Sqnr),
            (8, Metric::MeanAbsError),
        ] {
            let cur = (Bits::new(bits).unwrap(), Scheme::Symmetric);
            let svg = crate::svg(600, 360, |a| {
                draw(&a, &points, metric, cur, &Theme::default()).unwrap()
            });
            // The symmetric markers are the 7 filled circles, one per bit width 2..8.
            let xs = marker_x(&svg, 7);
            let (cx, _) = ring_center(&svg);
            assert_eq!(cx, xs[bits as usize - 2], "ring at {bits} bits");
        }
    }
}
