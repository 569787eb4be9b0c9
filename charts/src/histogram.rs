//! The selected layer's FP32 weights as a histogram, the quantization grid over it (one line per
//! representable value), the observed range [α, β], and the fake-quantized weights piled onto the
//! levels as spikes.

use crate::theme::{BLUE, GREEN, ORANGE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_core::view::HistogramView;

/// The y axis is sized for the FP32 histogram; taller spikes are cut at the top and labelled
/// with their count, so a 2-bit pile-up does not flatten the FP32 shape to nothing.
const HEADROOM: f64 = 1.3;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    view: &HistogramView,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let h = &view.fp32;
    let (mut lo, mut hi) = (f64::from(h.lo), f64::from(h.hi));
    if hi <= lo {
        // A constant tensor: give the axis some width around its single value.
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.03;
    let fp_max = f64::from(h.counts.iter().copied().max().unwrap_or(0).max(1));
    let y_max = fp_max * HEADROOM;

    let mut chart =
        frame(area, theme, 52.0).build_cartesian_2d((lo - pad)..(hi + pad), 0f64..y_max)?;
    themed(&mut chart.configure_mesh(), theme)
        .disable_x_mesh()
        .y_max_light_lines(0)
        .x_desc("weight value")
        .y_desc("weights per bin")
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|v| Theme::tick(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;

    // The grid: one line per representable value s·(q − z). Dense grids fade so that 256
    // lines read as a fine comb rather than a wall of colour.
    let alpha = (14.0 / view.levels.len().max(1) as f64)
        .powf(0.7)
        .clamp(0.1, 0.9);
    chart.draw_series(view.levels.iter().map(|&l| {
        PathElement::new(
            vec![(f64::from(l), 0.0), (f64::from(l), y_max)],
            theme.translucent(ORANGE, alpha, 1.0),
        )
    }))?;

    let bin_width = f64::from(h.bin_width());
    chart.draw_series(h.counts.iter().enumerate().map(|(i, &c)| {
        let (a, b) = h.bin_edges(i);
        Rectangle::new(
            [(f64::from(a), 0.0), (f64::from(b), f64::from(c))],
            BLUE.mix(0.45).filled(),
        )
    }))?;

    // Spikes: narrower than both a bin and the level spacing, so neighbours never merge.
    let spacing = view
        .levels
        .windows(2)
        .map(|w| f64::from(w[1] - w[0]))
        .fold(bin_width, f64::min);
    let half = (spacing * 0.35).max((hi - lo) * 0.002);
    chart.draw_series(view.quantized.iter().map(|&(x, c)| {
        let x = f64::from(x);
        Rectangle::new(
            [(x - half, 0.0), (x + half, f64::from(c).min(y_max))],
            VERMILLION.filled(),
        )
    }))?;
    // Counts of the cut spikes, in rows: a label goes in the first row where it clears the
    // previous one, so neighbouring spikes at 3–4 bits do not print over each other.
    let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
    let px_per_x = f64::from(plot_w) / ((hi + pad) - (lo - pad));
    let line = 13.0 * theme.scale * y_max / f64::from(plot_h.max(1));
    let mut row_ends: Vec<f64> = Vec::new();
    let mut labels = Vec::new();
    for &(x, c) in view
        .quantized
        .iter()
        .filter(|&&(_, c)| f64::from(c) > y_max)
    {
        let text = format!("▲{c}");
        let left = (f64::from(x) + half) * px_per_x;
        // Wide enough for digits of the 10 px font (~0.6 em each) and the triangle.
        let width = 10.0 * theme.scale * 0.62 * text.chars().count() as f64;
        let row = match row_ends.iter().position(|&end| left > end) {
            Some(r) => r,
            None => {
                row_ends.push(f64::NEG_INFINITY);
                row_ends.len() - 1
            }
        };
        row_ends[row] = left + width + 3.0 * theme.scale;
        labels.push(Text::new(
            text,
            (f64::from(x) + half, y_max * 0.97 - row as f64 * line),
            theme.font(10.0),
        ));
    }
    chart.draw_series(labels)?;

    // The observed range [α, β] (after calibration it is also the clipping range).
    for (x, label) in [(view.alpha, "α"), (view.beta, "β")] {
        let x = f64::from(x);
        chart.draw_series([PathElement::new(
            vec![(x, 0.0), (x, y_max)],
            theme.stroke(GREEN, 2.0),
        )])?;
        chart.draw_series([Text::new(label, (x, y_max * 0.9), theme.font(13.0))])?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quant_core::model::{Layer, MnistNet};
    use quant_core::quant::{Bits, Scheme};
    use quant_core::recipe::Recipe;
    use quant_core::view::layer_view_at;

    fn grid_lines(svg: &str) -> usize {
        svg.lines()
            .filter(|l| l.contains("<polyline") && l.contains("stroke=\"#E69F00\""))
            .count()
    }

    #[test]
    fn one_grid_line_per_level_within_the_range() {
        let net = MnistNet::init(5);
        for (bits, scheme) in [
            (2, Scheme::Symmetric),
            (3, Scheme::Asymmetric),
            (8, Scheme::Symmetric),
        ] {
            let bits = Bits::new(bits).unwrap();
            let v =
                layer_view_at(&net, Layer::Conv1, &Recipe::per_tensor(bits, scheme), 0).unwrap();
            let svg = crate::svg(640, 320, |a| {
                draw(&a, &v.histogram, &Theme::default()).unwrap()
            });
            assert_eq!(grid_lines(&svg), bits.levels() as usize, "{bits} bits");
            assert!(svg.contains("weights per bin"));
            // Spikes in the quantized colour, one per occupied level.
            let spikes = svg.matches("fill=\"#D55E00\"").count();
            assert_eq!(spikes, v.histogram.quantized.len());
        }
    }

    #[test]
    fn counts_of_neighbouring_cut_spikes_do_not_overlap() {
        use quant_core::stats::Histogram;
        // A low FP32 histogram and four tall spikes 0.06 apart (conv2 at 4 bits), all cut.
        let values: Vec<f32> = (0..100).map(|i| -0.5 + i as f32 / 100.0).collect();
        let levels: Vec<f32> = (-8..8).map(|q| q as f32 * 0.06).collect();
        let view = HistogramView {
            fp32: Histogram::new(values.iter().copied(), -0.5, 0.5, 50),
            quantized: [-0.12f32, -0.06, 0.0, 0.06]
                .iter()
                .map(|&x| (x, 5000))
                .collect(),
            levels,
            occupied_levels: 4,
            alpha: -0.5,
            beta: 0.5,
            grid_lo: -0.48,
            grid_hi: 0.42,
        };
        let svg = crate::svg(600, 300, |a| draw(&a, &view, &Theme::default()).unwrap());
        // (x, y) of each count label.
        let labels: Vec<(f64, f64)> = svg
            .split("<text")
            .filter(|t| t.split("</text>").next().unwrap().contains("▲5000"))
            .map(|t| {
                let attr = |name: &str| -> f64 {
                    let from = t.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                    t[from..].split('"').next().unwrap().parse().unwrap()
                };
                (attr("x"), attr("y"))
            })
            .collect();
        assert_eq!(labels.len(), 4, "{svg}");
        // 10 px digits are ~6 px wide: "▲5000" needs ~30 px; labels on one row keep that apart.
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(
                    (a.1 - b.1).abs() >= 10.0 || (a.0 - b.0).abs() >= 30.0,
                    "labels at {a:?} and {b:?} overlap"
                );
            }
        }
    }

    #[test]
    fn sixteen_bits_draws_no_grid_lines_but_the_spikes() {
        let net = MnistNet::init(5);
        let recipe = Recipe::per_tensor(Bits::new(16).unwrap(), Scheme::Symmetric);
        let v = layer_view_at(&net, Layer::Fc2, &recipe, 0).unwrap();
        let svg = crate::svg(640, 320, |a| {
            draw(&a, &v.histogram, &Theme::default()).unwrap()
        });
        assert_eq!(grid_lines(&svg), 0);
        assert!(svg.matches("fill=\"#D55E00\"").count() > 10);
    }
}
