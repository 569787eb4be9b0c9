//! Everything the web app draws for one layer at one setting, computed here so the UI holds no
//! math. Charts read these structs and nothing else.

use crate::error::Result;
use crate::model::{Layer, MnistNet};
use crate::quant::{Bits, QParams, Scheme};
use crate::report::{layer_row, LayerRow};
use crate::stats::{error_stats, Histogram};

/// Bins of the FP32 weight histogram.
pub const HISTOGRAM_BINS: usize = 80;
/// Above this many levels (i.e. at 16 bits) the grid is too dense to draw line by line.
pub const MAX_DRAWN_LEVELS: usize = 256;

/// The histogram panel's data: FP32 weights, the grid, and the weights piled onto it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramView {
    pub fp32: Histogram,
    /// Every representable value `s·(q − z)`, when there are at most [`MAX_DRAWN_LEVELS`].
    pub levels: Vec<f32>,
    /// `(value, count)` of the fake-quantized weights: one entry per level that holds weights
    /// (or, at 16 bits, per histogram bin).
    pub quantized: Vec<(f32, u32)>,
    /// How many distinct levels hold at least one weight (exact at every width, including 16
    /// bits where `quantized` is binned).
    pub occupied_levels: usize,
    /// The observed range `[α, β]` of the weights.
    pub alpha: f32,
    pub beta: f32,
    /// The grid's own range `[s·(qmin − z), s·(qmax − z)]`.
    pub grid_lo: f32,
    pub grid_hi: f32,
}

/// One layer at one setting: its table row, its histogram view and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerView {
    pub row: LayerRow,
    pub histogram: HistogramView,
    pub bits: Bits,
    pub scheme: Scheme,
}

impl LayerView {
    pub fn qparams(&self) -> QParams {
        self.row.qparams
    }
}

pub fn layer_view(net: &MnistNet, layer: Layer, bits: Bits, scheme: Scheme) -> Result<LayerView> {
    Ok(layer_view_from_row(
        net,
        layer_row(net, layer, bits, scheme)?,
        bits,
        scheme,
    ))
}

/// The view of the layer whose table row (`report::layer_row` at the same setting) is `row`:
/// lets the web app reuse the error statistics its table already computed, instead of a second
/// pass over fc1's 401,536 weights on every slider move.
pub fn layer_view_from_row(net: &MnistNet, row: LayerRow, bits: Bits, scheme: Scheme) -> LayerView {
    let qp = row.qparams;
    let w = net.weight(row.layer);
    let (grid_lo, grid_hi) = qp.representable_range();
    let lo = row.min.min(grid_lo);
    let hi = row.max.max(grid_hi);
    let fp32 = Histogram::new(w.iter().copied(), lo, hi, HISTOGRAM_BINS);
    let levels_n = bits.levels() as usize;
    let mut counts = vec![0u32; levels_n];
    for &x in w {
        counts[(qp.quantize(x) - qp.qmin) as usize] += 1;
    }
    let occupied_levels = counts.iter().filter(|&&c| c > 0).count();
    let (levels, quantized) = if levels_n <= MAX_DRAWN_LEVELS {
        let levels: Vec<f32> = qp.levels().collect();
        let piled = levels
            .iter()
            .zip(&counts)
            .filter(|(_, &c)| c > 0)
            .map(|(&v, &c)| (v, c))
            .collect();
        (levels, piled)
    } else {
        let h = Histogram::new(w.iter().map(|&x| qp.fake_quant(x)), lo, hi, HISTOGRAM_BINS);
        let piled = (0..h.counts.len())
            .filter(|&i| h.counts[i] > 0)
            .map(|i| {
                let (a, b) = h.bin_edges(i);
                ((a + b) / 2.0, h.counts[i])
            })
            .collect();
        (Vec::new(), piled)
    };
    LayerView {
        histogram: HistogramView {
            fp32,
            levels,
            quantized,
            occupied_levels,
            alpha: row.min,
            beta: row.max,
            grid_lo,
            grid_hi,
        },
        row,
        bits,
        scheme,
    }
}

/// Which error measure the error curve shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Mean absolute error, on a log scale.
    MeanAbsError,
    /// Signal-to-quantization-noise ratio in dB.
    Sqnr,
}

/// One point of an error curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorPoint {
    pub bits: Bits,
    pub scheme: Scheme,
    pub mean_abs_error: f64,
    pub sqnr_db: Option<f64>,
}

/// Mean absolute error and SQNR of one layer for bits 2..=8 under both schemes.
pub fn error_curve(net: &MnistNet, layer: Layer) -> Result<Vec<ErrorPoint>> {
    let w = net.weight(layer);
    let mut out = Vec::new();
    for scheme in Scheme::ALL {
        for bits in Bits::ALL.into_iter().filter(|b| b.get() <= 8) {
            let s = error_stats(w, &QParams::calibrate(w, bits, scheme)?);
            out.push(ErrorPoint {
                bits,
                scheme,
                mean_abs_error: s.mean_abs_error,
                sqnr_db: s.sqnr_db,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_histogram_holds_every_weight_on_a_level() {
        let net = MnistNet::init(4);
        for bits in [2, 3, 8, 16] {
            let bits = Bits::new(bits).unwrap();
            let v = layer_view(&net, Layer::Conv2, bits, Scheme::Asymmetric).unwrap();
            let total: u64 = v
                .histogram
                .quantized
                .iter()
                .map(|&(_, c)| u64::from(c))
                .sum();
            assert_eq!(total, 18_432);
            assert_eq!(v.histogram.fp32.total(), 18_432);
            if bits.get() <= 8 {
                assert_eq!(v.histogram.levels.len(), bits.levels() as usize);
                assert!(v
                    .histogram
                    .quantized
                    .iter()
                    .all(|(x, _)| v.histogram.levels.contains(x)));
                assert_eq!(v.histogram.occupied_levels, v.histogram.quantized.len());
            } else {
                assert!(v.histogram.levels.is_empty());
                // Binned for drawing, but the count of occupied levels is exact.
                let qp = v.qparams();
                let mut codes: Vec<i32> = net
                    .weight(Layer::Conv2)
                    .iter()
                    .map(|&x| qp.quantize(x))
                    .collect();
                codes.sort_unstable();
                codes.dedup();
                assert_eq!(v.histogram.occupied_levels, codes.len());
                assert!(codes.len() > v.histogram.quantized.len());
            }
        }
    }

    #[test]
    fn a_view_from_the_table_row_equals_a_fresh_view() {
        let net = MnistNet::init(4);
        let (bits, scheme) = (Bits::new(3).unwrap(), Scheme::Symmetric);
        let rows = crate::report::layer_rows(&net, bits, scheme).unwrap();
        for (row, layer) in rows.into_iter().zip(Layer::ALL) {
            assert_eq!(
                layer_view_from_row(&net, row, bits, scheme),
                layer_view(&net, layer, bits, scheme).unwrap()
            );
        }
    }

    #[test]
    fn error_curve_falls_with_bits() {
        let net = MnistNet::init(4);
        let curve = error_curve(&net, Layer::Fc2).unwrap();
        assert_eq!(curve.len(), 14);
        for scheme in Scheme::ALL {
            let maes: Vec<f64> = curve
                .iter()
                .filter(|p| p.scheme == scheme)
                .map(|p| p.mean_abs_error)
                .collect();
            assert!(maes.windows(2).all(|w| w[1] < w[0]), "{scheme}: {maes:?}");
        }
    }
}
