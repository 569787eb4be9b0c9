//! Quantization as the essay defines it, computed exactly as PyTorch computes it.
//!
//! For n-bit signed integers, `qmin = -2^(n-1)` and `qmax = 2^(n-1) - 1`.
//!
//! Calibration (PyTorch `MinMaxObserver._calculate_qparams`) first widens the observed range
//! `[α, β]` to include zero, so that zero is exactly representable:
//! `α' = min(α, 0)`, `β' = max(β, 0)`. Then
//! - asymmetric: `s = (β' − α') / (qmax − qmin)`, `z = clamp(qmin − round(α' / s), qmin, qmax)`
//! - symmetric:  `s = max(−α', β') / ((qmax − qmin) / 2)`, `z = 0`
//!
//! and `s` is never below `f32::EPSILON`, so a constant or all-zero tensor does not divide by zero.
//!
//! Quantizing (PyTorch's `fake_quantize_per_tensor_affine` kernel), in f32:
//! `q = clamp(z + round(w · (1/s)), qmin, qmax)` and `ŵ = s · (q − z)`,
//! where `round` is round-half-to-even (`nearbyint`) and `1/s` is the f32 reciprocal: PyTorch
//! multiplies by it rather than dividing, which decides values within an ulp of a rounding boundary.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A supported bit width: 2 to 8, or 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Bits(u8);

impl Bits {
    /// Every supported width, in increasing order.
    pub const ALL: [Bits; 8] = [
        Bits(2),
        Bits(3),
        Bits(4),
        Bits(5),
        Bits(6),
        Bits(7),
        Bits(8),
        Bits(16),
    ];

    pub fn new(n: u32) -> Result<Self> {
        match n {
            2..=8 | 16 => Ok(Bits(n as u8)),
            _ => Err(Error::UnsupportedBits(n)),
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    /// `qmin = −2^(n−1)`
    pub fn qmin(self) -> i32 {
        -(1 << (self.0 - 1))
    }

    /// `qmax = 2^(n−1) − 1`
    pub fn qmax(self) -> i32 {
        (1 << (self.0 - 1)) - 1
    }

    /// The number of integer levels, `2^n`.
    pub fn levels(self) -> u32 {
        1 << self.0
    }
}

impl TryFrom<u32> for Bits {
    type Error = Error;
    fn try_from(n: u32) -> Result<Self> {
        Bits::new(n)
    }
}

impl From<Bits> for u32 {
    fn from(b: Bits) -> u32 {
        b.get()
    }
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Bits {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| Error::InvalidBits(s.to_string()))?;
        Bits::new(n)
    }
}

/// How the integer grid is placed over the real line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Zero maps to integer 0; the grid spans `[−max|w|, max|w|]`.
    Symmetric,
    /// The grid spans exactly `[min(w, 0), max(w, 0)]`; zero sits at `zero_point`.
    Asymmetric,
}

impl Scheme {
    pub const ALL: [Scheme; 2] = [Scheme::Symmetric, Scheme::Asymmetric];

    /// The scheme the switch turns to.
    pub fn other(self) -> Scheme {
        match self {
            Scheme::Symmetric => Scheme::Asymmetric,
            Scheme::Asymmetric => Scheme::Symmetric,
        }
    }

    /// The short name used by the CLI and URLs.
    pub fn short(self) -> &'static str {
        match self {
            Scheme::Symmetric => "sym",
            Scheme::Asymmetric => "asym",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Symmetric => "symmetric",
            Scheme::Asymmetric => "asymmetric",
        })
    }
}

impl FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sym" | "symmetric" => Ok(Scheme::Symmetric),
            "asym" | "asymmetric" | "affine" => Ok(Scheme::Asymmetric),
            _ => Err(Error::UnknownScheme(s.to_string())),
        }
    }
}

/// The observed range of a tensor (what PyTorch's `MinMaxObserver` records).
/// Refuses empty tensors and non-finite values, which have no meaningful range.
pub fn observe_range(values: &[f32]) -> Result<(f32, f32)> {
    if values.is_empty() {
        return Err(Error::EmptyTensor);
    }
    // Eight independent lanes (`if v < m` is one vector min instruction, wasm's `pmin`), and
    // `v · 0`, which is NaN exactly when `v` is infinite or NaN, summed to catch any such value
    // without a branch per value. Calibration scans ~4 M activations per 100 digits, so this is
    // most of an observer's time.
    const L: usize = 8;
    let mut min = [f32::INFINITY; L];
    let mut max = [f32::NEG_INFINITY; L];
    let mut nonfinite = [0.0f32; L];
    let chunks = values.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..L {
            let v = c[l];
            min[l] = if v < min[l] { v } else { min[l] };
            max[l] = if v > max[l] { v } else { max[l] };
            nonfinite[l] += v * 0.0;
        }
    }
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for (l, &v) in tail.iter().enumerate() {
        lo = if v < lo { v } else { lo };
        hi = if v > hi { v } else { hi };
        nonfinite[l] += v * 0.0;
    }
    if nonfinite.iter().any(|x| x.is_nan()) {
        let (i, &v) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
            .expect("a non-finite value");
        return Err(Error::NonFinite(v, i));
    }
    for l in 0..L {
        lo = if min[l] < lo { min[l] } else { lo };
        hi = if max[l] > hi { max[l] } else { hi };
    }
    // Equal values compare equal, so the lanes can pick another of them than a scan in order
    // would; only ±0 tell apart. A scan keeps the first, so a zero extreme is the first zero.
    let first_zero = || *values.iter().find(|v| **v == 0.0).expect("a zero");
    if lo == 0.0 {
        lo = first_zero();
    }
    if hi == 0.0 {
        hi = first_zero();
    }
    Ok((lo, hi))
}

/// PyTorch widens the observed range to include zero, so that zero is exactly representable
/// (zero padding, ReLU outputs and pruned weights are all exact zeros): `α' = min(α, 0)`,
/// `β' = max(β, 0)`.
pub fn widen_to_zero(min: f32, max: f32) -> (f32, f32) {
    (min.min(0.0), max.max(0.0))
}

/// `round(x)`, half to even (`nearbyint`): exactly [`f32::round_ties_even`]. On x86-64 without
/// SSE4.1 (Rust's baseline) that is a call to `rintf` per value, which no loop vectorizes: a
/// QAT step rounds all 420,000 weights, and the calls took ~5 % of `qp qat`. Adding then
/// subtracting 2²³ rounds a magnitude below 2²³ to an integer under IEEE's default rounding,
/// which is half to even; from 2²³ on every f32 is an integer already (NaN and ±∞ pass as they
/// are). Elsewhere (wasm has `f32.nearest`) the standard call is one instruction.
#[inline(always)]
pub fn round_half_even(x: f32) -> f32 {
    if cfg!(all(target_arch = "x86_64", not(target_feature = "sse4.1"))) {
        const TWO_23: f32 = 8_388_608.0;
        let a = x.abs();
        if a < TWO_23 {
            ((a + TWO_23) - TWO_23).copysign(x)
        } else {
            x
        }
    } else {
        x.round_ties_even()
    }
}

/// The quantization parameters of one tensor: the grid is `scale · (q − zero_point)` for every
/// integer `q` in `[qmin, qmax]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
    pub qmin: i32,
    pub qmax: i32,
}

impl QParams {
    /// Calibrates from an observed range `[min, max]`, exactly as PyTorch's `_calculate_qparams`.
    pub fn from_range(min: f32, max: f32, bits: Bits, scheme: Scheme) -> Result<Self> {
        if !min.is_finite() {
            return Err(Error::NonFinite(min, 0));
        }
        if !max.is_finite() {
            return Err(Error::NonFinite(max, 0));
        }
        if min > max {
            return Err(Error::InvalidRange { min, max });
        }
        let (qmin, qmax) = (bits.qmin(), bits.qmax());
        let (min_neg, max_pos) = widen_to_zero(min, max);
        let levels = (qmax - qmin) as f32;
        let (scale, zero_point) = match scheme {
            Scheme::Symmetric => {
                // s = max(−α', β') / ((qmax − qmin) / 2), z = 0
                let max_abs = (-min_neg).max(max_pos);
                ((max_abs / (levels / 2.0)).max(f32::EPSILON), 0)
            }
            Scheme::Asymmetric => {
                // s = (β' − α') / (qmax − qmin), z = clamp(qmin − round(α' / s), qmin, qmax)
                let scale = ((max_pos - min_neg) / levels).max(f32::EPSILON);
                let z = qmin as f32 - (min_neg / scale).round_ties_even();
                (scale, (z as i32).clamp(qmin, qmax))
            }
        };
        Ok(QParams {
            scale,
            zero_point,
            qmin,
            qmax,
        })
    }

    /// Observes a tensor's range and calibrates from it.
    pub fn calibrate(values: &[f32], bits: Bits, scheme: Scheme) -> Result<Self> {
        let (min, max) = observe_range(values)?;
        QParams::from_range(min, max, bits, scheme)
    }

    /// `q = clamp(z + R(w · (1/s)), qmin, qmax)` as f32, for a rounding `R`, and whether the
    /// clamp moved it (`w` fell outside the grid). The one place a code is computed: every
    /// rounding mode of a recipe goes through here (see [`crate::quantizer`]).
    #[inline(always)]
    fn code_rounded(&self, w: f32, round: impl FnOnce(f32) -> f32) -> (f32, bool) {
        let inv_scale = 1.0f32 / self.scale;
        let q = self.zero_point as f32 + round(w * inv_scale);
        let (qmin, qmax) = (self.qmin as f32, self.qmax as f32);
        (q.clamp(qmin, qmax), q < qmin || q > qmax)
    }

    /// [`Self::fake_quant_clips`] of every value of `w` into `fake`, and `mask` 1 where the value
    /// was inside the grid, 0 where the clamp cut it: the same operations in the same order,
    /// four values at a time. QAT fake-quantizes all 420,000 weights each step, and one at a
    /// time this took ~1 ms of a step in wasm, where plain loops stay scalar.
    pub fn fake_quant_with_mask(&self, w: &[f32], fake: &mut [f32], mask: &mut [f32]) {
        use crate::lanes::F4;
        assert!(
            fake.len() == w.len() && mask.len() == w.len(),
            "one output per value"
        );
        let lanes = w.len() / 4 * 4;
        let inv_scale = F4::splat(1.0f32 / self.scale);
        let (scale, zero_point) = (F4::splat(self.scale), F4::splat(self.zero_point as f32));
        let (qmin, qmax) = (F4::splat(self.qmin as f32), F4::splat(self.qmax as f32));
        for ((w, f), m) in w[..lanes]
            .chunks_exact(4)
            .zip(fake.chunks_exact_mut(4))
            .zip(mask.chunks_exact_mut(4))
        {
            let q = zero_point + (F4::load(w) * inv_scale).nearest();
            q.inside(qmin, qmax).store(m);
            // `clamp`: `q < qmin ? qmin : q`, then `q > qmax ? qmax : q`.
            (scale * (q.larger(qmin).smaller(qmax) - zero_point)).store(f);
        }
        for i in lanes..w.len() {
            let (f, clipped) = self.fake_quant_clips(w[i]);
            (fake[i], mask[i]) = (f, if clipped { 0.0 } else { 1.0 });
        }
    }

    /// The code with PyTorch's rounding, half to even.
    fn code(&self, w: f32) -> (f32, bool) {
        self.code_rounded(w, round_half_even)
    }

    /// `ŵ = s · (clamp(z + R(w · (1/s)), qmin, qmax) − z)` for a rounding `R`, and whether `w`
    /// was clipped.
    #[inline(always)]
    pub fn fake_quant_rounded(&self, w: f32, round: impl FnOnce(f32) -> f32) -> (f32, bool) {
        let (q, clipped) = self.code_rounded(w, round);
        (self.dequantize_code(q), clipped)
    }

    /// `q = clamp(z + R(w · (1/s)), qmin, qmax)` for a rounding `R`.
    pub fn quantize_rounded(&self, w: f32, round: impl FnOnce(f32) -> f32) -> i32 {
        self.code_rounded(w, round).0 as i32
    }

    /// `q = clamp(z + round(w · (1/s)), qmin, qmax)`
    pub fn quantize(&self, w: f32) -> i32 {
        self.code(w).0 as i32
    }

    /// [`Self::fake_quant`] of `w`, and whether it was clamped to `qmin` or `qmax`. The code stays
    /// in f32, with no round trip through i32 (a saturating conversion and back, per weight, in
    /// the error statistics' loop).
    pub fn fake_quant_clips(&self, w: f32) -> (f32, bool) {
        let (q, clipped) = self.code(w);
        (self.dequantize_code(q), clipped)
    }

    /// LSQ's gradients for one value (learned step size, Esser et al. 2020; PyTorch's
    /// `_fake_quantize_learnable_per_tensor_affine`). With `q = z + round(w/s)` before the clamp:
    /// - inside the grid (qmin ≤ q ≤ qmax): `∂L/∂w = ∂L/∂ŵ` (the STE) and
    ///   `∂L/∂s = ∂L/∂ŵ · (ŵ − w)/s` — a weight rounded up pulls the step one way, rounded down
    ///   the other;
    /// - clamped below or above: `∂L/∂w = 0` and `∂L/∂s = ∂L/∂ŵ · (qmin − z)` or `(qmax − z)`:
    ///   the clipped weight sits at the grid's edge, which moves with s.
    ///
    /// Returns `(∂L/∂w, ∂L/∂s)`; the caller sums the second over the tensor and scales it by
    /// LSQ's gradient factor.
    pub fn lsq_gradients(&self, w: f32, dy: f32) -> (f32, f32) {
        let inv_scale = 1.0f32 / self.scale;
        let q = round_half_even(self.zero_point as f32 + w * inv_scale);
        let (qmin, qmax) = (self.qmin as f32, self.qmax as f32);
        let z = self.zero_point as f32;
        // `dy · 0`, not 0: PyTorch multiplies by the mask, so a negative dy gives −0.
        if q < qmin {
            (dy * 0.0, dy * (qmin - z))
        } else if q > qmax {
            (dy * 0.0, dy * (qmax - z))
        } else {
            let fake = (q - z) * self.scale;
            (dy, dy * (fake - w) * inv_scale)
        }
    }

    /// `ŵ = s · (q − z)`
    pub fn dequantize(&self, q: i32) -> f32 {
        self.dequantize_code(q as f32)
    }

    /// `ŵ = s · (q − z)` for a code held as f32. Exact as in integers: codes and zero points are
    /// integers under 2²⁴ in magnitude, so f32 holds them and `q − z` exactly.
    fn dequantize_code(&self, q: f32) -> f32 {
        self.scale * (q - self.zero_point as f32)
    }

    /// Quantize then dequantize: the value the quantized network actually computes with.
    pub fn fake_quant(&self, w: f32) -> f32 {
        self.dequantize(self.quantize(w))
    }

    /// The lowest and highest representable values, `s · (qmin − z)` and `s · (qmax − z)`.
    pub fn representable_range(&self) -> (f32, f32) {
        (self.dequantize(self.qmin), self.dequantize(self.qmax))
    }

    /// Every representable value, `s · (q − z)` for q = qmin..=qmax, in increasing order.
    pub fn levels(&self) -> impl Iterator<Item = f32> + '_ {
        (self.qmin..=self.qmax).map(|q| self.dequantize(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four-lane fake quantization (QAT's, each step) gives what the one-value path gives
    /// (which the PyTorch goldens check): ties on both sides of zero, values on the grid's edges
    /// and past them, under both schemes, and a length that leaves a tail of three.
    #[test]
    fn fake_quant_with_mask_is_fake_quant_clips_value_by_value() {
        let mut rng = crate::rng::Rng::new(3);
        for (lo, hi, bits, scheme) in [
            (-0.7f32, 0.3f32, Bits(2), Scheme::Symmetric),
            (-0.2, 0.9, Bits(3), Scheme::Asymmetric),
            (-1.0, 1.0, Bits(8), Scheme::Symmetric),
        ] {
            let qp = QParams::from_range(lo, hi, bits, scheme).unwrap();
            let mut w: Vec<f32> = (0..4001).map(|_| rng.uniform(2.0 * lo, 2.0 * hi)).collect();
            // Exact half-steps (ties), the edges of the grid and one step past them.
            for k in -6..=6 {
                w.push(qp.scale * (k as f32 + 0.5 - qp.zero_point as f32));
            }
            let (qmin, qmax) = qp.representable_range();
            w.extend([qmin, qmax, qmin - qp.scale, qmax + qp.scale, 0.0, -0.0]);
            let (mut fake, mut mask) = (vec![f32::NAN; w.len()], vec![f32::NAN; w.len()]);
            qp.fake_quant_with_mask(&w, &mut fake, &mut mask);
            for (i, &x) in w.iter().enumerate() {
                let (f, clipped) = qp.fake_quant_clips(x);
                assert_eq!(fake[i].to_bits(), f.to_bits(), "{x} at {bits:?}");
                assert_eq!(mask[i], if clipped { 0.0 } else { 1.0 }, "{x} at {bits:?}");
            }
            assert!(mask.contains(&0.0) && mask.contains(&1.0));
        }
    }

    #[test]
    fn round_half_even_is_the_standard_library_s_on_every_kind_of_f32() {
        // Ties either way, both signs, zero's sign, the 2²² and 2²³ edges, NaN and infinities,
        // then a stride through every bit pattern (all exponents, many mantissas).
        let edges = [
            0.5,
            1.5,
            2.5,
            -0.5,
            -2.5,
            0.49999997,
            -0.0,
            0.0,
            1e-40,
            -1e-40,
            4194303.5,
            4194304.5,
            8388607.5,
            8388608.0,
            8388609.0,
            -8388607.5,
            16777217.0,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let stride = (0..=u32::MAX / 4099).map(|i| f32::from_bits(i.wrapping_mul(4099)));
        for x in edges.into_iter().chain(stride) {
            let (ours, std) = (round_half_even(x), x.round_ties_even());
            assert!(
                ours.to_bits() == std.to_bits() || (ours.is_nan() && std.is_nan()),
                "{x:e} ({:#x}): {ours:e} but round_ties_even gives {std:e}",
                x.to_bits()
            );
        }
    }

    #[test]
    fn observed_range_is_a_scan_in_order() {
        // Lanes of eight, a tail, and the extremes anywhere.
        let v: Vec<f32> = (0..37).map(|i| ((i * 7919) % 37) as f32 - 11.5).collect();
        assert_eq!(observe_range(&v).unwrap(), (-11.5, 24.5));
        // A zero extreme keeps the sign of the first zero seen, as a scan in order does.
        let mut z = vec![1.0f32; 20];
        z[3] = 0.0;
        z[12] = -0.0;
        let (lo, _) = observe_range(&z).unwrap();
        assert_eq!(lo.to_bits(), 0.0f32.to_bits());
        z[3] = -0.0;
        z[12] = 0.0;
        assert_eq!(observe_range(&z).unwrap().0.to_bits(), (-0.0f32).to_bits());
        let neg: Vec<f32> = z.iter().map(|x| -x).collect();
        assert_eq!(observe_range(&neg).unwrap().1.to_bits(), 0.0f32.to_bits());
        // The first non-finite value is named, in the lanes or in the tail.
        for at in [5, 17, 35] {
            let mut bad = v.clone();
            bad[at] = f32::INFINITY;
            bad[36] = f32::NAN;
            let e = observe_range(&bad).unwrap_err();
            assert!(matches!(e, Error::NonFinite(_, i) if i == at), "{e:?}");
        }
    }

    fn sym8(max_abs: f32) -> QParams {
        QParams::from_range(-max_abs, max_abs, Bits::new(8).unwrap(), Scheme::Symmetric).unwrap()
    }

    #[test]
    fn integer_ranges_are_signed_n_bit() {
        let b = |n| Bits::new(n).unwrap();
        assert_eq!((b(2).qmin(), b(2).qmax()), (-2, 1));
        assert_eq!((b(4).qmin(), b(4).qmax()), (-8, 7));
        assert_eq!((b(8).qmin(), b(8).qmax()), (-128, 127));
        assert_eq!((b(16).qmin(), b(16).qmax()), (-32768, 32767));
        for n in [0, 1, 9, 15, 17, 32, 99] {
            assert_eq!(Bits::new(n), Err(Error::UnsupportedBits(n)));
        }
    }

    #[test]
    fn symmetric_8_bit_extremes_match_pytorch() {
        // torch.fake_quantize / quantize_per_tensor with MinMaxObserver(qint8, symmetric):
        // +max|w| → 127 always; −max|w| → −127 for 1.0 and 2.0 but −128 for 3.0 and 0.1,
        // decided by the f32 reciprocal 1/s.
        for (m, neg) in [(1.0f32, -127), (2.0, -127), (3.0, -128), (0.1, -128)] {
            let qp = sym8(m);
            assert_eq!(qp.zero_point, 0);
            assert_eq!(qp.quantize(m), 127, "+{m}");
            assert_eq!(qp.quantize(-m), neg, "-{m}");
        }
    }

    #[test]
    fn essay_resnet18_conv1_parameters() {
        // The essay printed the observer's f32 range as f64.
        let (min, max) = (
            -0.843_379_914_760_589_6_f64 as f32,
            1.016_473_293_304_443_4_f64 as f32,
        );
        let b8 = Bits::new(8).unwrap();
        let asym = QParams::from_range(min, max, b8, Scheme::Asymmetric).unwrap();
        assert_eq!(asym.scale, 0.007_293_542_4_f32);
        assert_eq!(asym.zero_point, -12);
        let sym = QParams::from_range(min, max, b8, Scheme::Symmetric).unwrap();
        assert_eq!(sym.scale, 0.007_972_339_2_f64 as f32);
        assert_eq!(sym.zero_point, 0);
    }

    #[test]
    fn torchao_4_bit_symmetric_example() {
        let qp = QParams::from_range(-3.5, 10.2, Bits::new(4).unwrap(), Scheme::Symmetric).unwrap();
        assert_eq!(qp.scale, 1.36_f32);
        assert_eq!((qp.qmin, qp.qmax, qp.zero_point), (-8, 7, 0));
    }

    #[test]
    fn range_is_widened_to_include_zero() {
        // An all-positive tensor: α' = 0, so zero maps to qmin exactly.
        let qp = QParams::from_range(2.0, 6.0, Bits::new(8).unwrap(), Scheme::Asymmetric).unwrap();
        assert_eq!(qp.scale, 6.0 / 255.0);
        assert_eq!(qp.zero_point, -128);
        assert_eq!(qp.fake_quant(0.0), 0.0);
    }

    #[test]
    fn halfway_values_round_to_even() {
        // scale 1.0 at 4 bits symmetric: max|w| = 7.5 → s = 7.5 / 7.5 = 1.
        let qp = QParams::from_range(-7.5, 7.5, Bits::new(4).unwrap(), Scheme::Symmetric).unwrap();
        assert_eq!(qp.scale, 1.0);
        assert_eq!(qp.quantize(0.5), 0);
        assert_eq!(qp.quantize(1.5), 2);
        assert_eq!(qp.quantize(2.5), 2);
        assert_eq!(qp.quantize(-0.5), 0);
        assert_eq!(qp.quantize(-1.5), -2);
        assert_eq!(qp.quantize(-2.5), -2);
        assert_eq!(qp.quantize(7.5), 7, "clamped to qmax");
        assert!(qp.fake_quant_clips(7.5).1);
        assert!(!qp.fake_quant_clips(6.5).1);
        assert_eq!(qp.fake_quant_clips(7.5), (7.0, true));
        assert_eq!(qp.fake_quant_clips(-2.5), (-2.0, false));
        assert_eq!(qp.fake_quant_clips(-9.0), (-8.0, true));
    }

    #[test]
    fn zero_point_rounds_half_to_even() {
        // s = 15 / 15 = 1 and α'/s = −2.5 exactly: half to even gives z = −8 − (−2) = −6,
        // where rounding half away from zero would give −8 − (−3) = −5.
        let bits = Bits::new(4).unwrap();
        let qp = QParams::from_range(-2.5, 12.5, bits, Scheme::Asymmetric).unwrap();
        assert_eq!(qp.scale, 1.0);
        assert_eq!(qp.zero_point, -8 + 2);
    }

    #[test]
    fn constant_and_zero_tensors_have_finite_scale_and_exact_zero() {
        for scheme in Scheme::ALL {
            for bits in Bits::ALL {
                let zero = QParams::calibrate(&[0.0; 5], bits, scheme).unwrap();
                assert_eq!(zero.scale, f32::EPSILON);
                assert!(zero.scale.is_finite() && zero.scale > 0.0);
                assert_eq!(zero.fake_quant(0.0), 0.0);
                let constant = QParams::calibrate(&[0.25; 3], bits, scheme).unwrap();
                assert!(constant.scale.is_finite() && constant.scale > 0.0);
                assert_eq!(constant.fake_quant(0.0), 0.0);
            }
        }
    }

    #[test]
    fn bad_tensors_are_named_errors() {
        let b8 = Bits::new(8).unwrap();
        assert_eq!(
            QParams::calibrate(&[], b8, Scheme::Symmetric),
            Err(Error::EmptyTensor)
        );
        assert!(matches!(
            QParams::calibrate(&[1.0, f32::NAN], b8, Scheme::Asymmetric),
            Err(Error::NonFinite(_, 1))
        ));
        assert!(matches!(
            QParams::calibrate(&[f32::INFINITY], b8, Scheme::Asymmetric),
            Err(Error::NonFinite(_, 0))
        ));
        assert!(matches!(
            QParams::from_range(1.0, -1.0, b8, Scheme::Asymmetric),
            Err(Error::InvalidRange { .. })
        ));
        assert!(matches!(
            "foo".parse::<Scheme>(),
            Err(Error::UnknownScheme(_))
        ));
        assert!("99".parse::<Bits>().is_err());
        assert_eq!("sym".parse::<Scheme>(), Ok(Scheme::Symmetric));
        assert_eq!("asymmetric".parse::<Scheme>(), Ok(Scheme::Asymmetric));
    }

    #[test]
    fn levels_span_the_representable_range() {
        let qp = QParams::from_range(-1.0, 3.0, Bits::new(3).unwrap(), Scheme::Asymmetric).unwrap();
        let levels: Vec<f32> = qp.levels().collect();
        assert_eq!(levels.len(), 8);
        assert_eq!(levels[0], qp.representable_range().0);
        assert_eq!(levels[7], qp.representable_range().1);
        assert!(levels.contains(&0.0));
    }
}
