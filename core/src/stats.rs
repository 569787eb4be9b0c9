//! How far a tensor moves when it is fake-quantized, and histograms for the charts.

use crate::quant::QParams;
use serde::{Deserialize, Serialize};

/// Error of a tensor `w` against its fake-quantized copy `ŵ`. Sums are accumulated in f64 so the
/// figures do not depend on summation order at the precision we print.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorStats {
    /// `mean |w − ŵ|`
    pub mean_abs_error: f64,
    /// `mean (w − ŵ)²`
    pub mse: f64,
    /// `max |w − ŵ|`
    pub max_abs_error: f64,
    /// `10 · log10(Σw² / Σ(w − ŵ)²)`; `None` when the error is exactly zero (infinite SQNR).
    pub sqnr_db: Option<f64>,
    /// Fraction of values that fell outside the grid and were clamped to qmin or qmax.
    pub clipped_fraction: f64,
    /// `mean (w − ŵ)` over every value: near 0 for an unbiased rounding.
    pub mean_error: f64,
    /// The part of [`Self::mse`] from clipped values (`Σ (w − ŵ)²` over them, divided by the
    /// count of all values); the rest is rounding error inside the grid.
    pub clipping_mse: f64,
    /// How many values were measured.
    pub count: usize,
}

/// Running sums behind [`ErrorStats`], so several tensors can be pooled into one figure.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorAccumulator {
    abs_sum: f64,
    signed_sum: f64,
    sq_err_sum: f64,
    clip_sq_sum: f64,
    signal_sum: f64,
    max_abs: f64,
    clipped: usize,
    count: usize,
}

impl ErrorAccumulator {
    /// Adds every value of `w`, fake-quantized with `qp` (PyTorch's rounding).
    pub fn add(&mut self, w: &[f32], qp: &QParams) {
        self.add_with(w, |_, x| qp.fake_quant_clips(x));
    }

    /// Adds every value of `w`, where `fake(i, w[i])` is `(ŵ, clipped)`.
    pub fn add_with(&mut self, w: &[f32], fake: impl Fn(usize, f32) -> (f32, bool)) {
        // In chunks, each its own call. In the browser a function's first call runs on V8's
        // baseline code until it returns (nothing swaps in the optimized code mid-loop), so one
        // call over fc1's 401,536 weights was a 75 ms task on the first slider move; split, the
        // optimized code takes over after the first chunks.
        for (c, chunk) in w.chunks(4096).enumerate() {
            self.add_chunk(chunk, c * 4096, &fake);
        }
        self.count += w.len();
    }

    #[inline(never)]
    fn add_chunk<F: Fn(usize, f32) -> (f32, bool)>(&mut self, w: &[f32], offset: usize, fake: &F) {
        for (i, &x) in w.iter().enumerate() {
            let (fake, clipped) = fake(offset + i, x);
            let signed = f64::from(x) - f64::from(fake);
            let err = signed.abs();
            self.abs_sum += err;
            self.signed_sum += signed;
            self.sq_err_sum += err * err;
            if clipped {
                self.clip_sq_sum += err * err;
            }
            self.signal_sum += f64::from(x) * f64::from(x);
            // Not `f64::max`, a call to `fmax` in wasm.
            if err > self.max_abs {
                self.max_abs = err;
            }
            self.clipped += usize::from(clipped);
        }
    }

    pub fn finish(&self) -> ErrorStats {
        let n = self.count.max(1) as f64;
        ErrorStats {
            mean_abs_error: self.abs_sum / n,
            mse: self.sq_err_sum / n,
            max_abs_error: self.max_abs,
            sqnr_db: (self.sq_err_sum > 0.0)
                .then(|| 10.0 * (self.signal_sum / self.sq_err_sum).log10()),
            clipped_fraction: self.clipped as f64 / n,
            mean_error: self.signed_sum / n,
            clipping_mse: self.clip_sq_sum / n,
            count: self.count,
        }
    }
}

/// Error statistics of one tensor under `qp`.
pub fn error_stats(w: &[f32], qp: &QParams) -> ErrorStats {
    let mut acc = ErrorAccumulator::default();
    acc.add(w, qp);
    acc.finish()
}

/// Counts of values in `bins` equal-width bins over `[lo, hi]`. Values outside the range are
/// left out; a value equal to `hi` falls in the last bin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f32,
    pub hi: f32,
    pub counts: Vec<u32>,
}

impl Histogram {
    pub fn new(values: impl IntoIterator<Item = f32>, lo: f32, hi: f32, bins: usize) -> Self {
        let bins = bins.max(1);
        let mut counts = vec![0u32; bins];
        let width = f64::from(hi) - f64::from(lo);
        for v in values {
            if !(lo..=hi).contains(&v) {
                continue;
            }
            let i = if width > 0.0 {
                ((f64::from(v) - f64::from(lo)) / width * bins as f64) as usize
            } else {
                0
            };
            counts[i.min(bins - 1)] += 1;
        }
        Histogram { lo, hi, counts }
    }

    pub fn bin_width(&self) -> f32 {
        (self.hi - self.lo) / self.counts.len() as f32
    }

    /// The `[start, end)` edges of bin `i`.
    pub fn bin_edges(&self, i: usize) -> (f32, f32) {
        let w = self.bin_width();
        (self.lo + w * i as f32, self.lo + w * (i + 1) as f32)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{Bits, Scheme};
    use approx::assert_abs_diff_eq;

    #[test]
    fn hand_computed_error_stats() {
        // 4-bit symmetric over max|w| = 7.5 gives s = 1: errors are easy to write down.
        let qp = QParams::from_range(-7.5, 7.5, Bits::new(4).unwrap(), Scheme::Symmetric).unwrap();
        let w = [0.25f32, -1.0, 7.5, 2.5];
        // ŵ = [0, −1, 7 (clipped), 2] → |err| = [0.25, 0, 0.5, 0.5]
        let s = error_stats(&w, &qp);
        assert_abs_diff_eq!(s.mean_abs_error, 1.25 / 4.0, epsilon = 1e-12);
        assert_abs_diff_eq!(s.mse, (0.0625 + 0.25 + 0.25) / 4.0, epsilon = 1e-12);
        assert_abs_diff_eq!(s.max_abs_error, 0.5, epsilon = 1e-12);
        assert_abs_diff_eq!(s.clipped_fraction, 0.25, epsilon = 1e-12);
        let signal = 0.0625 + 1.0 + 56.25 + 6.25;
        let expected = 10.0 * (signal / 0.5625f64).log10();
        assert_abs_diff_eq!(s.sqnr_db.unwrap(), expected, epsilon = 1e-9);
    }

    #[test]
    fn exact_round_trip_has_no_sqnr() {
        let qp = QParams::calibrate(&[0.0; 4], Bits::new(8).unwrap(), Scheme::Symmetric).unwrap();
        let s = error_stats(&[0.0; 4], &qp);
        assert_eq!(s.mean_abs_error, 0.0);
        assert_eq!(s.sqnr_db, None);
    }

    #[test]
    fn histogram_counts_every_value_in_range() {
        let h = Histogram::new([0.0f32, 0.1, 0.5, 0.99, 1.0, 1.5, -0.1], 0.0, 1.0, 4);
        assert_eq!(h.counts, vec![2, 0, 1, 2]);
        assert_eq!(h.total(), 5);
        assert_eq!(h.bin_edges(1), (0.25, 0.5));
    }
}
