//! The float → integer staircase: input on x, the dequantized output ŵ = s·(q − z) on y, with
//! integer codes labelled, the identity line for reference, and the range [α, β] marked. The
//! code of each x comes from the core (the recipe's rounding), never from here.

use crate::theme::{BLUE, GREEN};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use quant_core::quant::QParams;

/// Points along x; enough that every step of an 8-bit grid shows as a flat tread.
const SAMPLES: usize = 2048;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    qp: &QParams,
    code: &dyn Fn(f32) -> i32,
    alpha: f32,
    beta: f32,
    theme: &Theme,
) -> DrawResult<DB> {
    let (grid_lo, grid_hi) = qp.representable_range();
    let (lo, hi) = (grid_lo.min(alpha), grid_hi.max(beta));
    let Identity { mut chart, x0, x1 } =
        identity_chart(area, lo, hi, "dequantized ŵ = s·(q − z)", theme)?;

    // The step function, with a vertical riser wherever the code changes between samples.
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(2 * SAMPLES);
    let mut treads: Vec<(i32, f64, f64)> = Vec::new(); // (q, first x, last x)
    for i in 0..=SAMPLES {
        let x = x0 + (x1 - x0) * i as f64 / SAMPLES as f64;
        let q = code(x as f32);
        let y = f64::from(qp.dequantize(q));
        match treads.last_mut() {
            Some(t) if t.0 == q => t.2 = x,
            _ => {
                if let Some(&(_, prev)) = steps.last() {
                    steps.push((x, prev));
                }
                treads.push((q, x, x));
            }
        }
        steps.push((x, y));
    }
    chart.draw_series(LineSeries::new(steps, theme.stroke(BLUE, 2.0)))?;

    // Label every code when each tread is wider than its label; otherwise (256 levels, or 16 on
    // a phone) only qmin, the zero point and qmax. A label sits centred just above its tread, so
    // it never lies on the step line.
    let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
    let visible = |&(_, a, b): &(i32, f64, f64)| (b - a) / (x1 - x0) * f64::from(plot_w);
    // Widest label, at ~0.55 em a character of the 10 px font ("q=−128" is the widest).
    let label_px = |q: i32| 10.0 * theme.scale * 0.55 * code_label(q).chars().count() as f64;
    // The end treads run off the chart, so only the inner ones are measured.
    let inner = treads.get(1..treads.len().saturating_sub(1)).unwrap_or(&[]);
    let every = treads.len() <= 16 && inner.iter().all(|t| visible(t) >= label_px(qp.qmin));
    let lift = 3.0 * theme.scale * (x1 - x0) / f64::from(plot_h.max(1));
    let above = theme.font(10.0).pos(Pos::new(HPos::Center, VPos::Bottom));
    let labelled = treads
        .iter()
        .filter(|t| every || t.0 == qp.qmin || t.0 == qp.qmax || t.0 == qp.zero_point);
    chart.draw_series(labelled.map(|&(q, a, b)| {
        let y = f64::from(qp.dequantize(q));
        Text::new(code_label(q), ((a + b) / 2.0, y + lift), above.clone())
    }))?;

    // α at the top of its line and β at the bottom: the staircase climbs from bottom left to
    // top right, so those corners are empty and the labels never meet the code labels.
    for (x, label, y) in [
        (alpha, "α", x1 - (x1 - x0) * 0.06),
        (beta, "β", x0 + (x1 - x0) * 0.1),
    ] {
        let x = f64::from(x);
        chart.draw_series([PathElement::new(
            vec![(x, x0), (x, x1)],
            theme.stroke(GREEN, 1.5),
        )])?;
        chart.draw_series([Text::new(label, (x, y), theme.font(13.0))])?;
    }
    area.present()?;
    Ok(())
}

/// A drawing error of backend `DB`.
pub(crate) type AreaError<DB> = DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>;

/// A staircase's chart and the range of both its axes.
pub(crate) struct Identity<'a, DB: DrawingBackend> {
    pub chart: Square<'a, DB>,
    pub x0: f64,
    pub x1: f64,
}

/// A chart with f64 on both axes.
pub(crate) type Square<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// What a staircase stands on (this one and a number format's): a square chart over `[lo, hi]`
/// with a margin beyond it, so the reader sees clipping or saturation flatten the ends; the
/// FP32 input on x, `y_desc` on y, and the identity line for reference. Returns the chart and
/// its range.
pub(crate) fn identity_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    lo: f32,
    hi: f32,
    y_desc: &str,
    theme: &Theme,
) -> Result<Identity<'a, DB>, AreaError<DB>> {
    area.fill(&theme.background())?;
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    let pad = ((hi - lo) * 0.15).max(1e-6);
    let (x0, x1) = (lo - pad, hi + pad);
    let mut chart = frame(area, theme, 52.0).build_cartesian_2d(x0..x1, x0..x1)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("FP32 input w")
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| Theme::tick(*v))
        .y_label_formatter(&|v| Theme::tick(*v))
        .draw()?;
    chart.draw_series([PathElement::new(
        vec![(x0, x0), (x1, x1)],
        theme.stroke(theme.muted(), 1.0),
    )])?;
    Ok(Identity { chart, x0, x1 })
}

/// A tread's label: its integer code, "q=−4".
fn code_label(q: i32) -> String {
    Theme::minus(&format!("q={q}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::quant::{Bits, Scheme};

    fn has_label(svg: &str, q: i32) -> bool {
        svg.lines().any(|l| l.trim() == code_label(q))
    }

    #[test]
    fn labels_every_code_at_low_bits() {
        let qp = QParams::from_range(-1.0, 2.0, Bits::new(3).unwrap(), Scheme::Asymmetric).unwrap();
        let svg = crate::svg(600, 400, |a| {
            draw(&a, &qp, &|x| qp.quantize(x), -1.0, 2.0, &Theme::default()).unwrap()
        });
        for q in qp.qmin..=qp.qmax {
            assert!(has_label(&svg, q), "code {q} labelled");
        }
        assert!(svg.contains("dequantized"));
    }

    #[test]
    fn labels_only_the_landmarks_when_treads_are_narrower_than_labels() {
        // 16 levels on a phone-sized chart: treads of ~12 px, labels of ~25 px.
        let qp = QParams::from_range(-1.0, 1.0, Bits::new(4).unwrap(), Scheme::Asymmetric).unwrap();
        let svg = crate::svg(260, 220, |a| {
            draw(&a, &qp, &|x| qp.quantize(x), -1.0, 1.0, &Theme::default()).unwrap()
        });
        let labels: Vec<_> = svg.lines().filter(|l| l.trim().starts_with("q=")).collect();
        assert_eq!(labels.len(), 3, "{labels:?}");
        assert!(
            has_label(&svg, qp.qmin) && has_label(&svg, qp.zero_point) && has_label(&svg, qp.qmax)
        );
        // The same grid on a wide chart labels every code.
        let wide = crate::svg(900, 500, |a| {
            draw(&a, &qp, &|x| qp.quantize(x), -1.0, 1.0, &Theme::default()).unwrap()
        });
        for q in qp.qmin..=qp.qmax {
            assert!(has_label(&wide, q), "code {q} labelled");
        }
    }

    #[test]
    fn labels_only_the_landmarks_at_eight_bits() {
        let qp = QParams::from_range(-0.5, 0.5, Bits::new(8).unwrap(), Scheme::Symmetric).unwrap();
        let svg = crate::svg(600, 400, |a| {
            draw(&a, &qp, &|x| qp.quantize(x), -0.5, 0.5, &Theme::default()).unwrap()
        });
        assert!(has_label(&svg, -128) && has_label(&svg, 0) && has_label(&svg, 127));
        assert_eq!(
            svg.lines().filter(|l| l.trim().starts_with("q=")).count(),
            3
        );
    }
}
