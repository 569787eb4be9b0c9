//! The float → integer staircase: input on x, the dequantized output ŵ = s·(q − z) on y, with
//! integer codes labelled, the identity line for reference, and the range [α, β] marked.

use crate::theme::{BLUE, GREEN};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_core::quant::QParams;

/// Points along x; enough that every step of an 8-bit grid shows as a flat tread.
const SAMPLES: usize = 2048;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    qp: &QParams,
    alpha: f32,
    beta: f32,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let (grid_lo, grid_hi) = qp.representable_range();
    let lo = f64::from(grid_lo.min(alpha));
    let hi = f64::from(grid_hi.max(beta));
    // Show a margin beyond the grid so the reader sees clipping flatten the ends.
    let pad = ((hi - lo) * 0.15).max(1e-6);
    let (x0, x1) = (lo - pad, hi + pad);

    let mut chart = frame(area, theme, 52.0).build_cartesian_2d(x0..x1, x0..x1)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("FP32 input w")
        .y_desc("dequantized ŵ = s·(q − z)")
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| Theme::tick(*v))
        .y_label_formatter(&|v| Theme::tick(*v))
        .draw()?;

    chart.draw_series([PathElement::new(
        vec![(x0, x0), (x1, x1)],
        theme.stroke(theme.muted(), 1.0),
    )])?;

    // The step function, with a vertical riser wherever the code changes between samples.
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(2 * SAMPLES);
    let mut treads: Vec<(i32, f64, f64)> = Vec::new(); // (q, first x, last x)
    for i in 0..=SAMPLES {
        let x = x0 + (x1 - x0) * i as f64 / SAMPLES as f64;
        let q = qp.quantize(x as f32);
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

    // Label each code at ≤ 16 levels; otherwise qmin, the zero point and qmax.
    let few = treads.len() <= 16;
    let labelled = treads
        .iter()
        .filter(|t| few || t.0 == qp.qmin || t.0 == qp.qmax || t.0 == qp.zero_point);
    chart.draw_series(labelled.map(|&(q, a, b)| {
        let y = f64::from(qp.dequantize(q));
        Text::new(
            format!("q={q}"),
            ((a + b) / 2.0, y + (x1 - x0) * 0.02),
            theme.font(10.0),
        )
    }))?;

    for (x, label) in [(alpha, "α"), (beta, "β")] {
        let x = f64::from(x);
        chart.draw_series([PathElement::new(
            vec![(x, x0), (x, x1)],
            theme.stroke(GREEN, 1.5),
        )])?;
        chart.draw_series([Text::new(
            label,
            (x, x1 - (x1 - x0) * 0.06),
            theme.font(13.0),
        )])?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::quant::{Bits, Scheme};

    fn has_label(svg: &str, q: i32) -> bool {
        svg.lines().any(|l| l.trim() == format!("q={q}"))
    }

    #[test]
    fn labels_every_code_at_low_bits() {
        let qp = QParams::from_range(-1.0, 2.0, Bits::new(3).unwrap(), Scheme::Asymmetric).unwrap();
        let svg = crate::svg(600, 400, |a| {
            draw(&a, &qp, -1.0, 2.0, &Theme::default()).unwrap()
        });
        for q in qp.qmin..=qp.qmax {
            assert!(has_label(&svg, q), "code {q} labelled");
        }
        assert!(svg.contains("dequantized"));
    }

    #[test]
    fn labels_only_the_landmarks_at_eight_bits() {
        let qp = QParams::from_range(-0.5, 0.5, Bits::new(8).unwrap(), Scheme::Symmetric).unwrap();
        let svg = crate::svg(600, 400, |a| {
            draw(&a, &qp, -0.5, 0.5, &Theme::default()).unwrap()
        });
        assert!(has_label(&svg, -128) && has_label(&svg, 0) && has_label(&svg, 127));
        assert_eq!(
            svg.lines().filter(|l| l.trim().starts_with("q=")).count(),
            3
        );
    }
}
