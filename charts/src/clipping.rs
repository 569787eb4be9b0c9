//! The clipping trade-off: mean squared error against the fraction of the range the grid keeps,
//! stacked into rounding error (inside the grid) and clipping error (beyond it), with the
//! min–max, percentile and MSE methods' choices marked. Clip too little and the steps are
//! coarse; clip too much and the tails pay.

use crate::theme::{BLUE, GREEN, ORANGE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_core::quantizer::ClipCurve;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    curve: &ClipCurve,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    // Up to 3× the best error, so the interesting part is not squashed by the far left's.
    let best = curve
        .points
        .iter()
        .map(|p| p.mse)
        .fold(f64::INFINITY, f64::min);
    let top = (3.0 * best).max(curve.minmax.mse * 1.2).max(1e-30);
    let mut chart = frame(area, theme, 60.0).build_cartesian_2d(0.0..1.02f64, 0.0..top)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("fraction of the min–max range kept")
        .y_desc("mean (w − ŵ)²")
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| Theme::minus(&format!("{v:.1e}")))
        .draw()?;
    let clip = |p: &quant_core::quantizer::ClipPoint| (p.fraction, p.clipping_mse.min(top));
    let total = |p: &quant_core::quantizer::ClipPoint| (p.fraction, p.mse.min(top));
    // Clipping error from the axis, rounding error stacked on it up to the total.
    let mut band: Vec<(f64, f64)> = curve.points.iter().map(clip).collect();
    if let (Some(first), Some(last)) = (curve.points.first(), curve.points.last()) {
        band.push((last.fraction, 0.0));
        band.push((first.fraction, 0.0));
    }
    chart.draw_series([Polygon::new(band, VERMILLION.mix(0.35).filled())])?;
    chart.draw_series(LineSeries::new(
        curve.points.iter().map(total),
        theme.stroke(BLUE, 2.0),
    ))?;
    chart.draw_series(LineSeries::new(
        curve.points.iter().map(clip),
        theme.stroke(VERMILLION, 1.5),
    ))?;
    // Each method's point, its name in a row of its own near the top so that close points'
    // names never overlap, joined to the point by a thin line.
    let names = [
        (curve.minmax, theme.foreground(), "min–max"),
        (curve.percentile, ORANGE, "percentile"),
        (curve.mse, GREEN, "MSE"),
    ];
    for (row, (p, color, name)) in names.into_iter().enumerate() {
        let at = (p.fraction, p.mse.min(top));
        let label_y = top * (0.94 - 0.1 * row as f64);
        chart.draw_series([PathElement::new(
            vec![at, (p.fraction, label_y)],
            theme.translucent(color, 0.6, 1.0),
        )])?;
        chart.draw_series([Circle::new(at, theme.px(6.0), color.filled())])?;
        let anchor = plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        );
        chart.draw_series([Text::new(
            format!("{name} "),
            (p.fraction, label_y),
            theme.font(11.0).color(&color).pos(anchor),
        )])?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::model::{Layer, MnistNet};
    use quant_core::quantizer::{ClipSweep, LayerQuant};
    use quant_core::recipe::Recipe;

    #[test]
    fn draws_the_curve_and_the_three_methods() {
        let net = MnistNet::init(2);
        let r = "bits=3&scheme=asym".parse::<Recipe>().unwrap().default;
        let lq = LayerQuant::new(&net, Layer::Fc2, r).unwrap();
        let curve = ClipSweep::new(&lq, r).unwrap().run().unwrap();
        let svg = crate::svg(600, 340, |a| draw(&a, &curve, &Theme::default()).unwrap());
        for name in ["min–max", "percentile", "MSE"] {
            assert!(svg.contains(name), "{name} marked");
        }
        assert!(svg.contains("fraction of the min–max range kept"));
    }
}
