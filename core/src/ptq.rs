//! Static post-training quantization of MNISTNet, as torch.ao's eager mode does it:
//! QuantStub → ConvReLU2d(conv1) → pool → ConvReLU2d(conv2) → pool → flatten → LinearReLU(fc1) →
//! Linear(fc2) → DeQuantStub, with an observer after the stub and after each of the four modules.
//!
//! 1. *Calibrate*: the float network sees the first N training digits, in batches of
//!    [`CALIBRATION_BATCH`]; each observer records its activations' range.
//! 2. *Convert*: weights become qint8 (per channel for `x86`, per tensor for `qnnpack`, symmetric:
//!    `scale = max|w| / 127.5`, zero_point 0); each activation gets quint8 `scale` and `zero_point`
//!    from its observer, over 0..127 (`x86`, reduce_range) or 0..255 (`qnnpack`).
//! 3. *Run*: integers end to end ([`crate::qinfer`]), or simulated: the float network with every
//!    weight and activation fake-quantized at the same parameters ([`simulate`]).
//!
//! The sites are named as PyTorch's modules: `quant` (the input), `conv1`, `conv2`, `fc1`, `fc2`.

use crate::data::Digits;
use crate::error::{Error, Result};
use crate::eval::{EvalTally, Evaluation};
use crate::model::{Layer, MnistNet};
use crate::observer::{widened, BatchSummary, Histogram, Observer, ObserverKind};
use crate::quant::{Bits, QParams, Scheme};
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Calibration digits per forward pass (PyTorch's observers see one batch at a time: where the
/// batches end changes the histogram's merges and the moving average).
pub const CALIBRATION_BATCH: usize = 100;
/// The most calibration digits: the whole training split.
pub const MAX_CALIBRATION: usize = 8000;

/// Where observers sit: PyTorch's module names.
pub const SITES: [&str; 5] = ["quant", "conv1", "conv2", "fc1", "fc2"];

/// PyTorch's two default qconfigs (`get_default_qconfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// FBGEMM arithmetic: per-channel weights, activations over 0..127 (reduce_range).
    X86,
    /// QNNPACK arithmetic: per-tensor weights, activations over 0..255.
    Qnnpack,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::X86 => "x86",
            Preset::Qnnpack => "qnnpack",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x86" | "fbgemm" => Ok(Preset::X86),
            "qnnpack" => Ok(Preset::Qnnpack),
            _ => Err(Error::Ptq(format!(
                "unknown preset {s:?}: use x86 or qnnpack"
            ))),
        }
    }

    /// reduce_range: x86 keeps activations to 7 bits so that FBGEMM's int16 sums of u8·s8 pairs
    /// (`vpmaddubsw`) cannot saturate on calibrated inputs.
    pub fn reduce_range(self) -> bool {
        self == Preset::X86
    }

    pub fn per_channel(self) -> bool {
        self == Preset::X86
    }
}

/// A PTQ setting: what the reader picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PtqConfig {
    pub preset: Preset,
    #[serde(serialize_with = "observer_name", deserialize_with = "observer_parse")]
    pub observer: ObserverKind,
    /// The first N training digits.
    pub calibration: usize,
    /// Weight bits (8 is PyTorch's qint8; fewer are simulated only).
    pub weight_bits: u8,
    /// Activation bits (8 is quint8; fewer are simulated only).
    pub activation_bits: u8,
}

fn observer_name<S: serde::Serializer>(
    o: &ObserverKind,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&o.name())
}

fn observer_parse<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<ObserverKind, D::Error> {
    let s = String::deserialize(d)?;
    ObserverKind::parse(&s).map_err(serde::de::Error::custom)
}

impl PtqConfig {
    pub fn new(preset: Preset, observer: ObserverKind, calibration: usize) -> Self {
        PtqConfig {
            preset,
            observer,
            calibration,
            weight_bits: 8,
            activation_bits: 8,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_CALIBRATION).contains(&self.calibration) {
            return Err(Error::Ptq(format!(
                "calibration digits must be 1 to {MAX_CALIBRATION}, not {}",
                self.calibration
            )));
        }
        for (what, b) in [
            ("weight", self.weight_bits),
            ("activation", self.activation_bits),
        ] {
            if !(2..=8).contains(&b) {
                return Err(Error::Ptq(format!("{what} bits must be 2 to 8, not {b}")));
            }
        }
        Ok(())
    }

    /// Whether the integer engine can run it: PyTorch's qint8 weights and quint8 activations.
    pub fn integer(&self) -> bool {
        self.weight_bits == 8 && self.activation_bits == 8
    }

    /// The activations' code range: `0..2ᵇ − 1`, halved by reduce_range (x86: 0..127 at 8 bits).
    pub fn activation_range(&self) -> (i32, i32) {
        let bits = u32::from(self.activation_bits) - u32::from(self.preset.reduce_range());
        (0, (1 << bits) - 1)
    }
}

/// One observer site after calibration.
#[derive(Clone, Debug)]
pub struct Site {
    pub observer: Observer,
    pub qparams: QParams,
    /// The site's activations over the calibration digits, as a 2,048-bin histogram.
    pub display: Histogram,
}

impl Site {
    /// The share of the calibration activations outside the chosen range, from the display
    /// histogram, each bin's values taken as uniform across it: exact for the histogram observer
    /// (its range ends on bin edges), an estimate to within a bin for the others.
    pub fn clipped_fraction(&self) -> f64 {
        let Some((lo, hi)) = self.observer.chosen() else {
            return 0.0;
        };
        self.display.mass_outside(lo, hi)
    }
}

/// The calibrated network: each site's observer and qparams.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub config: PtqConfig,
    pub sites: Vec<Site>,
}

impl Calibration {
    pub fn qparams(&self) -> [QParams; 5] {
        std::array::from_fn(|i| self.sites[i].qparams)
    }
}

/// MNISTNet's float layers for calibration and simulation, each weight row zero-padded for
/// [`dense`] once per network (not once per batch).
pub struct FloatNet {
    /// conv1, conv2, fc1, fc2: `(padded [out, kp], kp)`.
    weights: [(Vec<f32>, usize); 4],
    biases: [Array1<f32>; 4],
}

/// Each layer's inputs per output, padded to whole 4-lane vectors (conv1's 9 → 12).
const PADDED_K: [usize; 4] = [12, 288, 3136, 128];

impl FloatNet {
    fn with_weights(net: &MnistNet, weights: [&Array2<f32>; 4]) -> Self {
        FloatNet {
            weights: std::array::from_fn(|i| pad(weights[i], PADDED_K[i])),
            biases: Layer::ALL.map(|l| bias(net, l).clone()),
        }
    }

    /// The trained network.
    pub fn new(net: &MnistNet) -> Self {
        Self::with_weights(net, [&net.conv1_w, &net.conv2_w, &net.fc1_w, &net.fc2_w])
    }

    /// The network with the PTQ weights, dequantized (the simulated path's).
    pub fn simulated(net: &MnistNet, weights: &[QuantWeights]) -> Self {
        let dense: Vec<Array2<f32>> = weights
            .iter()
            .map(|q| {
                Array2::from_shape_vec((q.rows, q.cols), q.dequantized()).expect("weight shape")
            })
            .collect();
        Self::with_weights(net, std::array::from_fn(|i| &dense[i]))
    }

    /// The activations at the five sites for a batch, in compute layout (pixel-major, channels
    /// inner): the input, conv1 and conv2 after ReLU (before the pool), fc1 after ReLU, fc2's
    /// scores. With `act`, each site's values are fake-quantized at its qparams,
    /// `x̂ = s·(clamp(round(x/s) + z, qmin, qmax) − z)`, before the next layer reads them.
    /// The convolutions' outputs are kept once per distinct patch ([`Rows`]).
    pub fn sites(&self, images: ArrayView2<f32>, act: Option<&[QParams; 5]>) -> [Rows; 5] {
        let n = images.nrows();
        let fq = |i: usize, mut r: Rows| {
            if let Some(act) = act {
                r.values.iter_mut().for_each(|x| *x = act[i].fake_quant(*x));
            }
            r
        };
        let fc = |i: usize, x: &[f32], relu: bool| {
            let out = self.biases[i].len();
            Rows::plain(dense(x, None, &self.weights[i], &self.biases[i], relu), out)
        };
        let side = crate::data::SIDE;
        let images = images.as_standard_layout();
        let pixels = images.as_slice().expect("standard layout").to_vec();
        let input = fq(0, Rows::plain(pixels, crate::data::PIXELS));
        // A convolution over the distinct patches only (see [`unique_rows`]).
        let conv = |i: usize, x: &[f32], side: usize, c: usize| {
            let cols = im2col(x, n, side, c, PADDED_K[i]);
            let (distinct, of_row) = unique_rows(&cols, PADDED_K[i]);
            let (w, b) = (&self.weights[i], &self.biases[i]);
            Rows {
                values: dense(&cols, Some(&distinct), w, b, true),
                width: b.len(),
                of_row: Some(of_row),
            }
        };
        let a1 = fq(1, conv(0, &input.values, side, 1));
        let p1 = a1.maxpool2(n, side);
        let a2 = fq(2, conv(1, &p1, 14, 32));
        let p2 = a2.maxpool2(n, 14);
        let h1 = fq(3, fc(2, &p2, true));
        let logits = fq(4, fc(3, &h1.values, false));
        [input, a1, a2, h1, logits]
    }
}

/// A layer's outputs, `[rows, width]`, each distinct row stored once: `values` `[distinct,
/// width]` and, per row, which distinct row it is (`of_row`; None: every row stored in order).
/// Ranges and histograms are taken over the distinct rows, each counted as often as it occurs.
#[derive(Clone, Debug)]
pub struct Rows {
    pub values: Vec<f32>,
    pub width: usize,
    pub of_row: Option<Vec<u32>>,
}

impl Rows {
    fn plain(values: Vec<f32>, width: usize) -> Self {
        Rows {
            values,
            width,
            of_row: None,
        }
    }

    pub fn rows(&self) -> usize {
        self.of_row
            .as_ref()
            .map_or(self.values.len() / self.width, Vec::len)
    }

    pub fn row(&self, r: usize) -> &[f32] {
        let d = self.of_row.as_ref().map_or(r, |o| o[r] as usize);
        &self.values[d * self.width..][..self.width]
    }

    /// Every row in order, as one vector.
    pub fn expand(&self) -> Vec<f32> {
        match &self.of_row {
            None => self.values.clone(),
            Some(_) => (0..self.rows())
                .flat_map(|r| self.row(r))
                .copied()
                .collect(),
        }
    }

    /// How many times each stored row occurs.
    fn multiplicity(&self) -> Vec<u32> {
        match &self.of_row {
            None => vec![1; self.values.len() / self.width],
            Some(o) => {
                let mut m = vec![0u32; self.values.len() / self.width];
                o.iter().for_each(|&d| m[d as usize] += 1);
                m
            }
        }
    }

    /// 2×2 max-pooling of `n` images of `side`², rows pixel-major: `model::maxpool2`'s
    /// comparisons (the first of equal values wins), so the same bits.
    fn maxpool2(&self, n: usize, side: usize) -> Vec<f32> {
        let (half, c) = (side / 2, self.width);
        let mut out = vec![0.0f32; n * half * half * c];
        for b in 0..n {
            for y in 0..half {
                for x in 0..half {
                    let o = ((b * half + y) * half + x) * c;
                    let top = (b * side + 2 * y) * side + 2 * x;
                    let [r0, r1, r2, r3] =
                        [top, top + 1, top + side, top + side + 1].map(|r| self.row(r));
                    for (ch, dst) in out[o..o + c].iter_mut().enumerate() {
                        let mut best = r0[ch];
                        for v in [r1[ch], r2[ch], r3[ch]] {
                            if v > best {
                                best = v;
                            }
                        }
                        *dst = best;
                    }
                }
            }
        }
        out
    }

    /// The range of every value, as [`crate::quant::observe_range`] scanning them in order
    /// finds it (the sign of a zero extreme, the first non-finite value's index).
    fn range(&self) -> Result<(f32, f32)> {
        let (mut lo, mut hi) = match crate::quant::observe_range(&self.values) {
            Ok(r) => r,
            Err(_) => return crate::quant::observe_range(&self.expand()),
        };
        if lo == 0.0 || hi == 0.0 {
            let first_zero = (0..self.rows())
                .find_map(|r| self.row(r).iter().find(|v| **v == 0.0).copied())
                .expect("a zero");
            if lo == 0.0 {
                lo = first_zero;
            }
            if hi == 0.0 {
                hi = first_zero;
            }
        }
        Ok((lo, hi))
    }

    /// The summary of every value, `(lo, hi)` their range ([`Self::range`]), counted over `range`.
    fn summary(&self, (lo, hi): (f32, f32), range: (f32, f32)) -> BatchSummary {
        let counts = if self.of_row.is_none() {
            crate::observer::histc(&self.values, range.0, range.1)
        } else {
            crate::observer::histc_weighted(&self.values, &self.multiplicity(), range)
        };
        BatchSummary {
            values: (self.rows() * self.width) as u64,
            lo,
            hi,
            counts,
        }
    }
}

/// One calibration batch's activations at the five sites, kept where the batch was run (a worker)
/// until the page of observers says over which ranges to count them.
pub struct SiteBatch {
    pub digits: usize,
    sites: [Rows; 5],
    /// Each site's range over this batch.
    pub ranges: [(f32, f32); 5],
}

impl SiteBatch {
    /// Runs the float network on `images` and scans each site's range (refusing NaN and ±inf).
    pub fn run(float: &FloatNet, images: ArrayView2<f32>) -> Result<Self> {
        let sites = float.sites(images, None);
        let mut ranges = [(0.0, 0.0); 5];
        for (r, a) in ranges.iter_mut().zip(&sites) {
            *r = a.range()?;
        }
        Ok(SiteBatch {
            digits: images.nrows(),
            sites,
            ranges,
        })
    }

    /// Each site's summary, its counts over `ranges` (see [`Calibrator::histogram_ranges`]).
    pub fn summaries(&self, ranges: &[(f32, f32); 5]) -> Result<[BatchSummary; 5]> {
        let mut out: [BatchSummary; 5] = Default::default();
        let sites = self.sites.iter().zip(&self.ranges).zip(ranges);
        for (o, ((a, &own), &r)) in out.iter_mut().zip(sites) {
            *o = a.summary(own, r);
        }
        Ok(out)
    }
}

/// A weight `[out, k]` with each row zero-padded to `kp` (a whole number of 4-lane vectors).
fn pad(w: &Array2<f32>, kp: usize) -> (Vec<f32>, usize) {
    let mut out = vec![0.0; w.nrows() * kp];
    for (r, row) in w.outer_iter().enumerate() {
        out[r * kp..r * kp + row.len()]
            .iter_mut()
            .zip(row)
            .for_each(|(o, &v)| *o = v);
    }
    (out, kp)
}

/// 3×3, padding 1 patches of `[n, side, side, c]`, rows `[n·side², kp]` ordered
/// `(ky·3 + kx)·c + channel` (as the compute layout's weights), zero beyond 9·c.
fn im2col(input: &[f32], n: usize, side: usize, c: usize, kp: usize) -> Vec<f32> {
    let mut cols = vec![0.0f32; n * side * side * kp];
    for d in 0..n {
        let img = &input[d * side * side * c..][..side * side * c];
        for y in 0..side {
            for x in 0..side {
                let row = &mut cols[((d * side + y) * side + x) * kp..][..kp];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (sy, sx) = (y + ky, x + kx);
                        if sy == 0 || sx == 0 || sy > side || sx > side {
                            continue;
                        }
                        let src = &img[((sy - 1) * side + sx - 1) * c..][..c];
                        row[(ky * 3 + kx) * c..][..c].copy_from_slice(src);
                    }
                }
            }
        }
    }
    cols
}

/// The distinct rows of `x` `[m, kp]` and, for each row, the index of its equal among them.
/// MNIST's background is one constant, so many 3×3 patches of a batch repeat bit for bit (within
/// a digit and across digits: 28 % of conv1's patches are distinct, 60 % of conv2's); [`dense`]
/// computes each row on its own, so computing a repeat once and copying it gives the same bits
/// and skips 40 % of conv2's products.
fn unique_rows(x: &[f32], kp: usize) -> (Vec<u32>, Vec<u32>) {
    let m = x.len() / kp;
    let mut first: HashMap<u64, u32, BuildHasherDefault<Prehashed>> =
        HashMap::with_capacity_and_hasher(m, Default::default());
    let mut distinct: Vec<u32> = Vec::with_capacity(m);
    let mut of_row = Vec::with_capacity(m);
    let row = |r: u32| &x[r as usize * kp..][..kp];
    for r in 0..m as u32 {
        let h = row_hash(row(r));
        let next = distinct.len() as u32;
        let u = match first.get(&h) {
            Some(&u) if same_bits(row(distinct[u as usize]), row(r)) => u,
            // A collision (never seen on our digits) only costs a row computed twice.
            Some(_) => {
                distinct.push(r);
                next
            }
            None => {
                first.insert(h, next);
                distinct.push(r);
                next
            }
        };
        of_row.push(u);
    }
    (distinct, of_row)
}

/// The map's keys are [`row_hash`]es already: hashing them again (SipHash) took longer than
/// conv1's products.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A row's bits as two sums `Σ bits_i · k_i` with odd multipliers that differ per position (wrapping
/// u32, so the sums vectorize: a chain of multiplies per row took longer than conv1's products).
/// Rows differing in one position always hash apart; any collision is caught by comparing.
fn row_hash(row: &[f32]) -> u64 {
    const L: usize = 8;
    let mut a = [0u32; L];
    let mut b = [0u32; L];
    for (i, c) in row.chunks_exact(L).enumerate() {
        for l in 0..L {
            let pos = (i * L + l) as u32;
            let bits = c[l].to_bits();
            a[l] = a[l].wrapping_add(bits.wrapping_mul(pos.wrapping_mul(0x9E37_79B2) | 1));
            b[l] = b[l].wrapping_add(bits.wrapping_mul(pos.wrapping_mul(0x85EB_CA6C) | 1));
        }
    }
    let tail = row.chunks_exact(L).remainder();
    for (l, v) in tail.iter().enumerate() {
        a[l] ^= v.to_bits().rotate_left(7);
        b[l] ^= v.to_bits().rotate_left(13);
    }
    let fold = |x: [u32; L]| {
        x.iter()
            .fold(0u32, |h, &v| (h ^ v).wrapping_mul(0x0100_0193))
    };
    (u64::from(fold(a)) << 32) | u64::from(fold(b))
}

/// Equal as bits (`-0.0` is not `0.0` here).
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The rows [`dense`] takes at a time: 64 KB of them, an even number.
const BLOCK_BYTES: usize = 64 * 1024;

/// `relu?(x · wᵀ + b)` for rows `x` `[m, kp]` (or those of its rows listed in `rows`), with the same f32 operations in the same order
/// on every platform (4-lane partial sums, then `(l0 + l1) + (l2 + l3)`, then the bias; no fused
/// multiply-add): the browser calibrates exactly as `qp ptq` does. (ndarray's GEMM picks an FMA
/// kernel natively at run time, so its sums would differ between the two in the last bit.)
fn dense(
    x: &[f32],
    rows: Option<&[u32]>,
    w: &(Vec<f32>, usize),
    b: &Array1<f32>,
    relu: bool,
) -> Vec<f32> {
    use crate::lanes::F4;
    let (w, kp) = (&w.0, w.1);
    let out = b.len();
    let m = rows.map_or(x.len() / kp, <[u32]>::len);
    let mut y = vec![0.0f32; m * out];
    let row = |r: usize| {
        let r = r.min(m - 1);
        &x[rows.map_or(r, |rows| rows[r] as usize) * kp..][..kp]
    };
    // Blocks of rows that stay in cache while every channel passes over them: channel by channel
    // over all rows read conv2's 14 MB of patches 16 times per batch from memory, and two workers
    // calibrating at once were bound by it. Each output's operations are the same in any order.
    let block = (BLOCK_BYTES / (kp * 4)).max(2) & !1;
    for r0 in (0..m).step_by(block) {
        for j0 in (0..out).step_by(4) {
            let wr: [&[f32]; 4] = std::array::from_fn(|t| {
                let j = (j0 + t).min(out - 1);
                &w[j * kp..][..kp]
            });
            for r in (r0..(r0 + block).min(m)).step_by(2) {
                let (x0, x1) = (row(r), row(r + 1));
                let mut a0 = [F4::splat(0.0); 4];
                let mut a1 = [F4::splat(0.0); 4];
                for c in (0..kp).step_by(4) {
                    let (v0, v1) = (F4::load(&x0[c..]), F4::load(&x1[c..]));
                    for t in 0..4 {
                        let wv = F4::load(&wr[t][c..]);
                        a0[t] = a0[t] + v0 * wv;
                        a1[t] = a1[t] + v1 * wv;
                    }
                }
                for (dr, acc) in [a0, a1].iter().enumerate().take(m - r) {
                    for (t, a) in acc.iter().enumerate() {
                        let j = j0 + t;
                        if j < out {
                            let mut l = [0.0f32; 4];
                            a.store(&mut l);
                            let v = ((l[0] + l[1]) + (l[2] + l[3])) + b[j];
                            y[(r + dr) * out + j] = if relu { v.max(0.0) } else { v };
                        }
                    }
                }
            }
        }
    }
    y
}

/// The sites after a fused module (ConvReLU2d conv1, conv2; LinearReLU fc1). PyTorch 2.15's eager
/// `prepare` hooks their observer twice, so each calibration batch is recorded twice there (the
/// goldens script saw it: two calls per forward). Min–max and the histogram's search do not
/// change; a moving average takes two 1 % steps per batch, and the histogram counts twice. We do
/// the same for PyTorch's observers (the percentile is ours: it sees each value once).
const FUSED_SITES: [usize; 3] = [1, 2, 3];

/// Values each site sees per digit (for the percentile's ranks).
const SITE_VALUES: [u64; 5] = [784, 28 * 28 * 32, 14 * 14 * 64, 128, 10];

/// Step 1: the float network sees the first `config.calibration` digits of `train`, batch by
/// batch (a worker steps a [`Calibrator`] itself, to report progress between batches).
pub fn calibrate(net: &MnistNet, train: &Digits, config: PtqConfig) -> Result<Calibration> {
    let mut c = Calibrator::new(config, train.len())?;
    while c.step(net, train)? {}
    c.finish()
}

/// Calibration one batch at a time, so a worker can report progress and take a newer setting
/// between batches.
pub struct Calibrator {
    config: PtqConfig,
    observers: Vec<Observer>,
    /// What the reader's histograms show: the histogram observer's own, or one kept beside the
    /// other observers (fed each batch once).
    display: Vec<Histogram>,
    done: usize,
    /// The network's float layers, prepared at the first batch.
    float: Option<FloatNet>,
}

impl Calibrator {
    pub fn new(config: PtqConfig, available: usize) -> Result<Self> {
        config.validate()?;
        if available < config.calibration {
            return Err(Error::Ptq(format!(
                "{} calibration digits asked, {available} available",
                config.calibration
            )));
        }
        let n = config.calibration as u64;
        Ok(Calibrator {
            config,
            observers: SITE_VALUES
                .iter()
                .map(|&v| Observer::new(config.observer, v * n))
                .collect(),
            display: vec![Histogram::new(); 5],
            done: 0,
            float: None,
        })
    }

    pub fn done(&self) -> usize {
        self.done
    }

    /// Observes the next batch; false once every calibration digit has been seen.
    pub fn step(&mut self, net: &MnistNet, train: &Digits) -> Result<bool> {
        let Some(digits) = self.batches(1).pop() else {
            return Ok(false);
        };
        let batch = self.run_batch(net, train, digits)?;
        let ranges = self.histogram_ranges(&[batch.ranges])[0];
        let summaries = batch.summaries(&ranges)?;
        self.absorb(batch.digits, &summaries, Some(&batch))?;
        Ok(self.done < self.config.calibration)
    }

    /// Runs these training digits through the float network here (to absorb them later).
    pub fn run_batch(
        &mut self,
        net: &MnistNet,
        train: &Digits,
        digits: std::ops::Range<usize>,
    ) -> Result<SiteBatch> {
        let float = self.float.get_or_insert_with(|| FloatNet::new(net));
        SiteBatch::run(float, train.images_f32_rows(digits).view())
    }

    /// The next `k` batches' digits (fewer at the end): where a worker may run them.
    pub fn batches(&self, k: usize) -> Vec<std::ops::Range<usize>> {
        let total = self.config.calibration;
        (0..k)
            .map(|b| self.done + b * CALIBRATION_BATCH)
            .take_while(|&start| start < total)
            .map(|start| start..(start + CALIBRATION_BATCH).min(total))
            .collect()
    }

    /// Whether batches may run elsewhere and come back as summaries: not for the percentile,
    /// which needs every value.
    pub fn summaries_suffice(&self) -> bool {
        !matches!(self.config.observer, ObserverKind::Percentile(_))
    }

    /// The range each site's histograms will cover with each of these next batches (given by
    /// their ranges), in order: the counts of a batch are taken over it.
    pub fn histogram_ranges(&self, batches: &[[(f32, f32); 5]]) -> Vec<[(f32, f32); 5]> {
        let mut range: [Option<(f32, f32)>; 5] = std::array::from_fn(|i| self.histogram(i).range());
        batches
            .iter()
            .map(|b| {
                std::array::from_fn(|i| {
                    let r = widened(range[i], b[i]);
                    range[i] = Some(r);
                    r
                })
            })
            .collect()
    }

    /// The histogram at site `i` (the observer's own, or the one kept beside it).
    fn histogram(&self, i: usize) -> &Histogram {
        match &self.observers[i] {
            Observer::Histogram(h) => h,
            _ => &self.display[i],
        }
    }

    /// Records the next batch (of `digits`) from its sites' summaries, their counts taken over
    /// [`Self::histogram_ranges`]; `batch` itself where it is here (the percentile needs it).
    pub fn absorb(
        &mut self,
        digits: usize,
        summaries: &[BatchSummary; 5],
        batch: Option<&SiteBatch>,
    ) -> Result<()> {
        let twice = matches!(
            self.config.observer,
            ObserverKind::MovingAverage | ObserverKind::Histogram
        );
        for (i, (o, s)) in self.observers.iter_mut().zip(summaries).enumerate() {
            let times = if twice && FUSED_SITES.contains(&i) {
                2
            } else {
                1
            };
            // Only the percentile reads the values themselves.
            let values = match (&*o, batch) {
                (Observer::Percentile { .. }, Some(b)) => Some(b.sites[i].expand()),
                _ => None,
            };
            o.observe_summary(s, values.as_deref(), times)?;
            if !matches!(o, Observer::Histogram(_)) {
                self.display[i].add_summary(s)?;
            }
        }
        self.done += digits;
        Ok(())
    }

    pub fn finish(self) -> Result<Calibration> {
        let (qmin, qmax) = self.config.activation_range();
        let sites = self
            .observers
            .into_iter()
            .zip(self.display)
            .map(|(observer, display)| {
                let qparams = observer.qparams(qmin, qmax)?;
                let display = match &observer {
                    Observer::Histogram(h) => h.clone(),
                    _ => display,
                };
                Ok(Site {
                    observer,
                    qparams,
                    display,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Calibration {
            config: self.config,
            sites,
        })
    }
}

/// A layer's weights quantized for PTQ: qint8 symmetric codes in compute layout and their
/// parameters, one per output channel (x86) or one for the tensor (qnnpack).
#[derive(Clone, Debug)]
pub struct QuantWeights {
    pub codes: Vec<i8>,
    pub qparams: Vec<QParams>,
    pub rows: usize,
    pub cols: usize,
}

impl QuantWeights {
    /// The parameters of output channel `j`.
    pub fn channel(&self, j: usize) -> QParams {
        self.qparams[if self.qparams.len() == 1 { 0 } else { j }]
    }

    pub fn dequantized(&self) -> Vec<f32> {
        self.codes
            .iter()
            .enumerate()
            .map(|(i, &q)| self.channel(i / self.cols).dequantize(i32::from(q)))
            .collect()
    }
}

/// The weight observer of the preset: `PerChannelMinMaxObserver` or `MinMaxObserver`, qint8,
/// symmetric (at fewer bits, the same over −2ᵇ⁻¹..2ᵇ⁻¹ − 1).
pub fn quantize_weights(
    net: &MnistNet,
    layer: Layer,
    preset: Preset,
    bits: u8,
) -> Result<QuantWeights> {
    let bits = Bits::new(u32::from(bits))?;
    let w = net.weight(layer);
    let rows = layer.weight_shape()[0];
    let cols = w.len() / rows;
    let qparams = if preset.per_channel() {
        w.chunks(cols)
            .map(|row| QParams::calibrate(row, bits, Scheme::Symmetric))
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![QParams::calibrate(w, bits, Scheme::Symmetric)?]
    };
    let mut out = QuantWeights {
        codes: Vec::with_capacity(w.len()),
        qparams,
        rows,
        cols,
    };
    for (i, &v) in w.iter().enumerate() {
        out.codes.push(out.channel(i / cols).quantize(v) as i8);
    }
    Ok(out)
}

/// Every layer's PTQ weights.
pub fn quantize_all(net: &MnistNet, config: &PtqConfig) -> Result<Vec<QuantWeights>> {
    Layer::ALL
        .iter()
        .map(|&l| quantize_weights(net, l, config.preset, config.weight_bits))
        .collect()
}

/// The predicted classes of a batch of scores.
pub fn predictions(logits: ArrayView2<f32>) -> Vec<u8> {
    logits
        .outer_iter()
        .map(|row| crate::eval::argmax(row.as_slice().expect("row")) as u8)
        .collect()
}

/// The model's size in bytes: weights at their bits, biases as f32 (PyTorch keeps them float),
/// and a scale (f32) and zero point (i32 in PyTorch's packed params) per block.
pub fn model_bytes(weights: &[QuantWeights], bits: u8) -> usize {
    Layer::ALL
        .iter()
        .zip(weights)
        .map(|(l, w)| {
            (w.codes.len() * usize::from(bits)).div_ceil(8) + 4 * l.bias_len() + 8 * w.qparams.len()
        })
        .sum()
}

/// f32 model size.
pub fn fp32_bytes(net: &MnistNet) -> usize {
    4 * net.param_count()
}

pub(crate) fn bias(net: &MnistNet, layer: Layer) -> &Array1<f32> {
    match layer {
        Layer::Conv1 => &net.conv1_b,
        Layer::Conv2 => &net.conv2_b,
        Layer::Fc1 => &net.fc1_b,
        Layer::Fc2 => &net.fc2_b,
    }
}

/// A site's calibration as the reader sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SiteRow {
    pub site: String,
    /// The range the observer recorded (`min_val`, `max_val`).
    pub observed: (f32, f32),
    /// The range it chose (the histogram's search, the percentile; otherwise the observed one).
    pub chosen: (f32, f32),
    pub scale: f32,
    pub zero_point: i32,
    pub qmin: i32,
    pub qmax: i32,
    /// The share of calibration activations outside the chosen range (see
    /// [`Site::clipped_fraction`]).
    pub clipped: f64,
    /// The activations' histogram over `bins_range`, [`DISPLAY_BINS`] bins.
    pub bins: Vec<f32>,
    pub bins_range: (f32, f32),
}

/// A layer's converted weights as the reader sees them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WeightRow {
    pub layer: String,
    pub dtype: String,
    pub qscheme: String,
    /// One per block: a tensor's or each output channel's.
    pub scales: Vec<f32>,
    pub zero_point: i32,
}

/// The essay's PTQ printout, extended: FP32, weight-only fake quantization (per preset
/// granularity, 8 bits), the simulated PTQ network and the integer engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PtqReport {
    pub config: PtqConfig,
    pub fp32: Evaluation,
    pub weight_only: Evaluation,
    pub simulated: Evaluation,
    /// `None` below 8 bits: the integer engine runs quint8 × qint8 only.
    pub integer: Option<Evaluation>,
    /// Test digits whose predicted class is the same under simulation and the integer engine.
    pub agree: Option<usize>,
    pub fp32_bytes: usize,
    pub quantized_bytes: usize,
    pub weights: Vec<WeightRow>,
    pub sites: Vec<SiteRow>,
}

/// Evaluates a calibrated network on the test digits one batch at a time, simulated and (at
/// W8A8) on the integer engine. The CLI runs it to the end; a worker steps it between messages.
pub struct PtqEvaluator {
    config: PtqConfig,
    weights: Vec<QuantWeights>,
    act: [QParams; 5],
    /// The simulated network's float layers (dequantized weights), prepared once.
    float: FloatNet,
    int: Option<crate::qinfer::IntNet>,
    simulated: EvalTally,
    integer: EvalTally,
    agree: usize,
    done: usize,
    simulated_ms: f64,
    integer_ms: f64,
}

impl PtqEvaluator {
    pub fn new(net: &MnistNet, cal: &Calibration) -> Result<Self> {
        let config = cal.config;
        let weights = quantize_all(net, &config)?;
        let act = cal.qparams();
        let int = if config.integer() {
            Some(crate::qinfer::IntNet::new(
                net,
                &weights,
                &act,
                config.preset,
            )?)
        } else {
            None
        };
        Ok(PtqEvaluator {
            config,
            float: FloatNet::simulated(net, &weights),
            weights,
            act,
            int,
            simulated: EvalTally::default(),
            integer: EvalTally::default(),
            agree: 0,
            done: 0,
            simulated_ms: 0.0,
            integer_ms: 0.0,
        })
    }

    pub fn done(&self) -> usize {
        self.done
    }

    /// The integer engine, when the recipe has one (W8A8).
    pub fn integer_net(&self) -> Option<&crate::qinfer::IntNet> {
        self.int.as_ref()
    }

    /// The next batch, simulated and (at W8A8) on the integer engine, each timed by `now` (ms);
    /// false when every digit is done.
    pub fn step(&mut self, test: &Digits, now: &dyn Fn() -> f64) -> bool {
        if self.done >= test.len() {
            return false;
        }
        let rows = self.done..(self.done + CALIBRATION_BATCH).min(test.len());
        let images = test.images_f32_rows(rows.clone());
        let labels = &test.labels[rows.clone()];
        let t = now();
        let [.., scores] = self.float.sites(images.view(), Some(&self.act));
        let scores = scores.values;
        let sim = Array2::from_shape_vec((labels.len(), 10), scores).expect("n·10 scores");
        self.simulated.add_scores(sim.view(), labels);
        let t2 = now();
        self.simulated_ms += t2 - t;
        if let Some(int) = &self.int {
            let logits = int.logits(images.as_slice().expect("standard layout"));
            self.integer.add_scores(logits.view(), labels);
            self.integer_ms += now() - t2;
            self.agree += predictions(logits.view())
                .iter()
                .zip(predictions(sim.view()))
                .filter(|(a, b)| **a == *b)
                .count();
        }
        self.done = rows.end;
        true
    }

    /// Images per second of the simulated network and of the integer engine, from the steps'
    /// times.
    pub fn rates(&self) -> (f64, Option<f64>) {
        let rate = |ms: f64| self.done as f64 / (ms.max(0.1) / 1000.0);
        (
            rate(self.simulated_ms),
            self.int.as_ref().map(|_| rate(self.integer_ms)),
        )
    }

    /// The report, given FP32's and weight-only's evaluations (which do not depend on the
    /// calibration, so a worker keeps them across settings).
    pub fn finish(
        self,
        net: &MnistNet,
        cal: &Calibration,
        fp32: Evaluation,
        weight_only: Evaluation,
    ) -> PtqReport {
        let config = self.config;
        let weights = Layer::ALL
            .iter()
            .zip(&self.weights)
            .map(|(l, w)| WeightRow {
                layer: l.name().into(),
                dtype: if config.weight_bits == 8 {
                    "torch.qint8".into()
                } else {
                    format!("int{} (simulated)", config.weight_bits)
                },
                qscheme: if config.preset.per_channel() {
                    "per_channel_symmetric".into()
                } else {
                    "per_tensor_symmetric".into()
                },
                scales: w.qparams.iter().map(|q| q.scale).collect(),
                zero_point: 0,
            })
            .collect();
        let sites = cal
            .sites
            .iter()
            .zip(SITES)
            .map(|(s, site)| SiteRow {
                site: site.into(),
                observed: s.observer.recorded().unwrap_or((0.0, 0.0)),
                chosen: s.observer.chosen().unwrap_or((0.0, 0.0)),
                scale: s.qparams.scale,
                zero_point: s.qparams.zero_point,
                qmin: s.qparams.qmin,
                qmax: s.qparams.qmax,
                clipped: s.clipped_fraction(),
                bins: s.display.merged(DISPLAY_BINS),
                bins_range: (s.display.min, s.display.max),
            })
            .collect();
        PtqReport {
            config,
            fp32,
            weight_only,
            simulated: self.simulated.evaluation(),
            integer: self.int.as_ref().map(|_| self.integer.evaluation()),
            agree: self.int.as_ref().map(|_| self.agree),
            fp32_bytes: fp32_bytes(net),
            quantized_bytes: model_bytes(&self.weights, config.weight_bits),
            weights,
            sites,
        }
    }
}

/// The network with only its weights quantized as the preset quantizes them (what the rest of
/// the page shows, at PTQ's granularity).
pub fn weight_only(net: &MnistNet, preset: Preset, bits: u8) -> Result<MnistNet> {
    let mut out = net.clone();
    for l in Layer::ALL {
        out.weight_mut(l)
            .copy_from_slice(&quantize_weights(net, l, preset, bits)?.dequantized());
    }
    Ok(out)
}

/// Bins in the reader's activation histograms (2,048 merged 16 to 1).
pub const DISPLAY_BINS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_rows_summarize_as_every_row_would() {
        // Rows 0 and 2 repeat; a zero extreme first met as −0 in row order, not storage order.
        let rows = Rows {
            values: vec![0.5, 3.0, -0.0, 1.0, 0.0, 2.0],
            width: 2,
            of_row: Some(vec![1, 0, 1, 2, 1]),
        };
        let every = rows.expand();
        assert_eq!(every, [-0.0, 1.0, 0.5, 3.0, -0.0, 1.0, 0.0, 2.0, -0.0, 1.0]);
        for range in [(-0.0, 3.0), (-1.0, 4.0), (0.25, 2.5)] {
            let plain = BatchSummary::of(&every, Some(range)).unwrap();
            let s = rows.summary(rows.range().unwrap(), range);
            assert_eq!(s, plain);
        }
        assert_eq!(rows.range().unwrap().0.to_bits(), (-0.0f32).to_bits());
        // One 2×2 image of two channels: rows 0..4.
        assert_eq!(rows.maxpool2(1, 2), [0.5, 3.0]);
    }

    #[test]
    fn unique_rows_give_back_every_row_bit_for_bit() {
        let rows: [[f32; 4]; 6] = [
            [1.0, 2.0, 3.0, 4.0],
            [0.0, 0.0, 0.0, 0.0],
            [1.0, 2.0, 3.0, 4.0],
            [-0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [4.0, 3.0, 2.0, 1.0],
        ];
        let x: Vec<f32> = rows.iter().flatten().copied().collect();
        let (distinct, of_row) = unique_rows(&x, 4);
        // −0 is a different row from +0: its products could differ in the sign of a zero.
        assert_eq!(of_row, [0, 1, 0, 2, 1, 3]);
        assert_eq!(distinct, [0, 1, 3, 5]);
        for (row, &u) in rows.iter().zip(&of_row) {
            let d = distinct[u as usize] as usize;
            assert!(same_bits(row, &x[d * 4..][..4]));
        }
    }
}
