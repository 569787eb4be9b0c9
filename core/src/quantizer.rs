//! One quantizer behind every recipe: calibrate (a range and parameters per tensor, channel or
//! group), quantize, dequantize, the grid's levels, and the derivation a panel prints.
//!
//! Calibrating is separate from quantizing, as in PyTorch: a range method picks each block's
//! range `[lo, hi]` from its weights, then [`QParams::from_range`] turns it into `scale` and
//! `zero_point` exactly as `_calculate_qparams` does. Quantizing is
//! `q = clamp(z + R(w · (1/s)), qmin, qmax)` with the recipe's rounding `R`, and `ŵ = s·(q − z)`.
//!
//! Blocks are runs of the weight in PyTorch's layout (`[out, in, kh, kw]` or `[out, in]`, row
//! major), the layout groups are defined in; [`LayerQuant`] holds a layer's weights so.

use crate::error::{Error, Result};
use crate::model::{Layer, MnistNet};
use crate::quant::{observe_range, widen_to_zero, QParams};
use crate::recipe::{Granularity, LayerRecipe, RangeMethod, Recipe, Rounding, Thousandths};
use crate::stats::{ErrorAccumulator, ErrorStats};
use crate::weights::{set_torch_weight, torch_weight};
use std::ops::Range;
use std::sync::Arc;

/// The weights that share one scale and zero point, and how their range was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Indices into the tensor, in PyTorch's layout.
    pub span: Range<usize>,
    /// The observed minimum and maximum, `α` and `β`.
    pub alpha: f32,
    pub beta: f32,
    /// The range the method chose (equal to `[α, β]` for min–max).
    pub lo: f32,
    pub hi: f32,
    pub qparams: QParams,
}

/// Where each block's range came from, in words a panel can print beside the numbers.
pub fn range_rule(method: RangeMethod) -> String {
    match method {
        RangeMethod::MinMax => "[lo, hi] = [α, β], the observed min and max".into(),
        RangeMethod::Percentile(p) => format!(
            "[lo, hi] = the {}th and {}th percentiles (nearest rank)",
            Thousandths(100_000 - p),
            Thousandths(p)
        ),
        RangeMethod::Mse => {
            "[lo, hi] = c·[min(α, 0), max(β, 0)], c ∈ {1, 0.99, …, 0.01} with the least Σ(w − ŵ)²"
                .into()
        }
        RangeMethod::Clip(c) => format!("[lo, hi] = {}·[min(α, 0), max(β, 0)]", Thousandths(c)),
    }
}

/// The blocks of a tensor of `shape` (PyTorch's) at `granularity`.
pub fn spans(shape: &[usize], granularity: Granularity) -> Vec<Range<usize>> {
    let n: usize = shape.iter().product();
    let row = if shape.is_empty() {
        n
    } else {
        n / shape[0].max(1)
    };
    match granularity {
        Granularity::PerTensor => std::iter::once(0..n).collect(),
        Granularity::PerChannel => (0..n.div_ceil(row.max(1)))
            .map(|o| o * row..(o + 1) * row)
            .collect(),
        Granularity::PerGroup(g) => {
            let g = usize::from(g);
            (0..n.div_ceil(row.max(1)))
                .flat_map(|o| {
                    (0..row.div_ceil(g))
                        .map(move |i| o * row + i * g..o * row + ((i + 1) * g).min(row))
                })
                .collect()
        }
    }
}

impl Block {
    /// Calibrates the weights `w[span]` under `recipe`: observe `[α, β]`, let the range method
    /// pick `[lo, hi]`, then `scale` and `zero_point` from it as PyTorch's `_calculate_qparams`.
    /// `salt` is the layer's stream of stochastic coins.
    pub fn calibrate(
        w: &[f32],
        span: Range<usize>,
        recipe: LayerRecipe,
        salt: u32,
    ) -> Result<Self> {
        let values = w.get(span.clone()).ok_or_else(|| {
            Error::Recipe(format!("block {span:?} lies outside {} values", w.len()))
        })?;
        let (alpha, beta) = observe_range(values)?;
        let (lo, hi) = choose_range(values, span.start, alpha, beta, recipe, salt)?;
        Ok(Block {
            span,
            alpha,
            beta,
            lo,
            hi,
            qparams: QParams::from_range(lo, hi, recipe.bits, recipe.scheme)?,
        })
    }

    /// The staircase's code of `x` under `rounding`, or for stochastic rounding the nearest code
    /// (the likelier of its two, which the staircase draws).
    pub fn staircase_code(&self, rounding: Rounding, x: f32) -> i32 {
        let rounding = match rounding {
            Rounding::Stochastic(_) => Rounding::HalfEven,
            r => r,
        };
        self.qparams
            .quantize_rounded(x, |v| rounding.round(v, || 0.5))
    }

    /// The same block under `recipe` with another scheme: only the MSE search depends on the
    /// scheme; the other methods' range is the same, so no pass over the weights is needed.
    pub fn with_scheme(&self, w: &[f32], recipe: LayerRecipe, salt: u32) -> Result<Block> {
        if recipe.range == RangeMethod::Mse {
            return Block::calibrate(w, self.span.clone(), recipe, salt);
        }
        Ok(Block {
            qparams: QParams::from_range(self.lo, self.hi, recipe.bits, recipe.scheme)?,
            ..self.clone()
        })
    }
}

/// The range `[lo, hi]` the recipe's method picks for one block's `values` (observed range
/// `[alpha, beta]`, starting at index `offset` of the tensor).
fn choose_range(
    values: &[f32],
    offset: usize,
    alpha: f32,
    beta: f32,
    r: LayerRecipe,
    salt: u32,
) -> Result<(f32, f32)> {
    Ok(match r.range {
        RangeMethod::MinMax => (alpha, beta),
        RangeMethod::Percentile(p) => {
            // k = ⌈p·n/100⌉ in integers (p in thousandths of a percent): exact for any n.
            let n = values.len() as u64;
            let k = (u64::from(p) * n).div_ceil(100_000).clamp(1, n) as usize;
            let mut sorted = values.to_vec();
            sorted.sort_unstable_by(f32::total_cmp);
            (sorted[values.len() - k], sorted[k - 1])
        }
        RangeMethod::Clip(c) => {
            let (lo, hi) = widen_to_zero(alpha, beta);
            let f = c as f32 / 1000.0;
            (lo * f, hi * f)
        }
        RangeMethod::Mse => {
            let (lo, hi) = widen_to_zero(alpha, beta);
            let mut best = (f64::INFINITY, (lo, hi));
            for k in (1..=100u32).rev() {
                let c = k as f32 / 100.0;
                let qp = QParams::from_range(lo * c, hi * c, r.bits, r.scheme)?;
                let sq: f64 = values
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        let e =
                            f64::from(x) - f64::from(fake(r.rounding, salt, &qp, x, offset + i).0);
                        e * e
                    })
                    .sum();
                if sq < best.0 {
                    best = (sq, (lo * c, hi * c));
                }
            }
            best.1
        }
    })
}

/// `ŵ` of the value `x` at tensor index `index` under `rounding`, and whether it was clipped.
#[inline(always)]
fn fake(rounding: Rounding, salt: u32, qp: &QParams, x: f32, index: usize) -> (f32, bool) {
    let seed = match rounding {
        Rounding::Stochastic(seed) => seed,
        _ => 0,
    };
    qp.fake_quant_rounded(x, |v| {
        rounding.round(v, || Rounding::coin(seed, salt, index))
    })
}

/// A tensor's calibrated quantizer under one layer recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorQuant {
    pub recipe: LayerRecipe,
    /// The tensor's shape in PyTorch's layout (a format such as torchao's INT4 depends on it).
    pub shape: Vec<usize>,
    /// The stream of stochastic rounding's coins (the layer's index).
    pub salt: u32,
    pub blocks: Vec<Block>,
}

impl TensorQuant {
    /// Calibrates every block of `w` (PyTorch's layout, `shape`) under `recipe`.
    pub fn calibrate(w: &[f32], shape: &[usize], recipe: LayerRecipe, salt: u32) -> Result<Self> {
        if w.len() != shape.iter().product::<usize>() {
            return Err(Error::Recipe(format!(
                "{} values do not fill the shape {shape:?}",
                w.len()
            )));
        }
        // Under a format of its own the integer blocks only give the table the layer's range:
        // one min–max block, not the recipe's granularity and range search (an MSE search per
        // move, for numbers nobody reads).
        let grid = if recipe.is_int() {
            recipe
        } else {
            LayerRecipe::per_tensor(recipe.bits, recipe.scheme)
        };
        // Every value is checked first, so an error names its index in the whole tensor (one
        // block checks the whole tensor itself).
        let spans = spans(shape, grid.granularity);
        if spans.len() > 1 {
            observe_range(w)?;
        }
        let blocks = spans
            .into_iter()
            .map(|span| Block::calibrate(w, span, grid, salt))
            .collect::<Result<_>>()?;
        Ok(TensorQuant {
            recipe,
            shape: shape.to_vec(),
            salt,
            blocks,
        })
    }

    #[inline(always)]
    fn fake(&self, qp: &QParams, x: f32, index: usize) -> (f32, bool) {
        fake(self.recipe.rounding, self.salt, qp, x, index)
    }

    /// `w` (the tensor this was calibrated on, or one of its shape) fake-quantized in place.
    pub fn fake_quant_in_place(&self, w: &mut [f32]) {
        if !self.recipe.is_int() {
            return self.recipe.format.fake_quantize_in_place(w, &self.shape);
        }
        for b in &self.blocks {
            let qp = b.qparams;
            for (i, x) in w[b.span.clone()].iter_mut().enumerate() {
                *x = self.fake(&qp, *x, b.span.start + i).0;
            }
        }
    }

    /// `w` fake-quantized, and the straight-through estimator's mask: 1 where the code before
    /// the clamp lies in [qmin, qmax] (the gradient passes), 0 where the clamp cut it off.
    pub fn fake_quant_with_mask(&self, w: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut fake = w.to_vec();
        let mut mask = vec![1.0; w.len()];
        if !self.recipe.is_int() {
            // The other formats saturate rather than clip a range they chose: all pass.
            self.fake_quant_in_place(&mut fake);
            return (fake, mask);
        }
        for b in &self.blocks {
            let qp = b.qparams;
            if self.recipe.rounding == Rounding::HalfEven {
                let span = b.span.clone();
                qp.fake_quant_with_mask(&w[span.clone()], &mut fake[span.clone()], &mut mask[span]);
                continue;
            }
            for i in b.span.clone() {
                let (f, clipped) = self.fake(&qp, w[i], i);
                fake[i] = f;
                if clipped {
                    mask[i] = 0.0;
                }
            }
        }
        (fake, mask)
    }

    /// The integer codes of block `b` of `w`, `q = clamp(z + R(w · (1/s)), qmin, qmax)`.
    pub fn block_codes(&self, w: &[f32], b: usize) -> Vec<i32> {
        let block = &self.blocks[b];
        let qp = block.qparams;
        w[block.span.clone()]
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let (fake, _) = self.fake(&qp, x, block.span.start + i);
                // Exact: ŵ/s + z recovers the integer code (codes are below 2^16 in magnitude).
                (fake / qp.scale).round_ties_even() as i32 + qp.zero_point
            })
            .collect()
    }

    /// Adds the error of fake-quantizing `w` to `acc`.
    pub fn accumulate_error(&self, w: &[f32], acc: &mut ErrorAccumulator) {
        if !self.recipe.is_int() {
            let mut fake = w.to_vec();
            self.fake_quant_in_place(&mut fake);
            // Nothing is clipped: the formats saturate only past their largest value.
            return acc.add_with(w, |i, _| (fake[i], false));
        }
        for b in &self.blocks {
            let qp = b.qparams;
            let start = b.span.start;
            acc.add_with(&w[b.span.clone()], |i, x| self.fake(&qp, x, start + i));
        }
    }

    /// Error statistics of `w` under this quantizer.
    pub fn error_stats(&self, w: &[f32]) -> ErrorStats {
        let mut acc = ErrorAccumulator::default();
        self.accumulate_error(w, &mut acc);
        acc.finish()
    }

    /// The smallest and largest scale, and the smallest and largest zero point, over the blocks.
    pub fn spread(&self) -> ((f32, f32), (i32, i32)) {
        let mut s = (f32::INFINITY, f32::NEG_INFINITY);
        let mut z = (i32::MAX, i32::MIN);
        for b in &self.blocks {
            s = (s.0.min(b.qparams.scale), s.1.max(b.qparams.scale));
            z = (z.0.min(b.qparams.zero_point), z.1.max(b.qparams.zero_point));
        }
        (s, z)
    }
}

/// The clipping trade-off of one layer: the error when every block's range (widened to include
/// 0) is scaled by `c`, for `c = k/100`, `k = 100, 99, …, 1` — the grid the MSE method searches —
/// split into clipping error (values beyond the grid) and rounding error (inside it), with the
/// min–max, percentile and MSE methods' own choices on it.
///
/// Computed a candidate at a time ([`ClipSweep::step`]), so a page can spread the work over
/// short tasks: fc1's 100 passes over 401,536 weights take ~60 ms in wasm.
#[derive(Clone, Debug)]
pub struct ClipSweep {
    recipe: LayerRecipe,
    salt: u32,
    weight: Arc<[f32]>,
    blocks: Vec<(Range<usize>, f32, f32)>,
    /// The next k to compute (100 down to 1; 0 when the curve is done).
    next: u32,
    points: Vec<ClipPoint>,
    /// Per block, the least squared error so far and the k that gave it (the MSE method's rule:
    /// the first of equal errors, from k = 100 down).
    best: Vec<(f64, u32)>,
    percentile: Option<ClipPoint>,
}

/// One point of the clipping trade-off: the kept fraction of the range and the mean squared
/// error over the layer's weights, of which `clipping_mse` from clipped values.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClipPoint {
    pub fraction: f64,
    pub mse: f64,
    pub clipping_mse: f64,
}

/// The finished trade-off.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipCurve {
    /// From the full range (fraction 1) down to 0.01.
    pub points: Vec<ClipPoint>,
    /// The methods' choices: min–max (fraction 1), percentile 99.9 (or the recipe's), MSE. For
    /// per-channel and per-group recipes a method's fraction is the mean over blocks.
    pub minmax: ClipPoint,
    pub percentile: ClipPoint,
    pub percentile_thousandths: u32,
    pub mse: ClipPoint,
}

impl ClipSweep {
    /// The trade-off of `lq`'s weights under `recipe`'s bits, scheme, granularity and rounding.
    pub fn new(lq: &LayerQuant, recipe: LayerRecipe) -> Result<Self> {
        ClipSweep::of_tensor(
            lq.weight.clone(),
            lq.layer.weight_shape(),
            lq.layer as u32,
            recipe,
        )
    }

    /// The same for any tensor `weight` of `shape` (PyTorch's layout), whose stochastic coins
    /// are stream `salt`: a reader's own tensor.
    pub fn of_tensor(
        weight: Arc<[f32]>,
        shape: &[usize],
        salt: u32,
        recipe: LayerRecipe,
    ) -> Result<Self> {
        // The integer grid's trade-off, whatever format the recipe names (its quantizers below
        // need no shape).
        let recipe = LayerRecipe {
            format: crate::formats::Format::Int,
            ..recipe
        };
        let blocks = spans(shape, recipe.granularity)
            .into_iter()
            .map(|span| {
                let (alpha, beta) = observe_range(&weight[span.clone()])?;
                let (lo, hi) = widen_to_zero(alpha, beta);
                Ok((span, lo, hi))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ClipSweep {
            recipe,
            salt,
            weight,
            best: vec![(f64::INFINITY, 100); blocks.len()],
            blocks,
            next: 100,
            points: Vec::new(),
            percentile: None,
        })
    }

    /// The percentile the trade-off marks: the recipe's, else 99.9.
    fn percentile_thousandths(&self) -> u32 {
        match self.recipe.range {
            RangeMethod::Percentile(p) => p,
            _ => 99_900,
        }
    }

    /// Computes one more candidate (or, last, the percentile method's point); `false` once all
    /// is done.
    pub fn step(&mut self) -> Result<bool> {
        let r = self.recipe;
        if self.next > 0 {
            let k = self.next;
            let c = k as f32 / 100.0;
            let (mut sq, mut clip) = (0.0f64, 0.0f64);
            for (b, (span, lo, hi)) in self.blocks.iter().enumerate() {
                let qp = QParams::from_range(lo * c, hi * c, r.bits, r.scheme)?;
                // The same sum, in the same order, as the MSE method's search (`choose_range`),
                // so the block's best k here is exactly the one that method picks.
                let mut block_sq = 0.0f64;
                for (i, &x) in self.weight[span.clone()].iter().enumerate() {
                    let (f, clipped) = fake(r.rounding, self.salt, &qp, x, span.start + i);
                    let e = f64::from(x) - f64::from(f);
                    block_sq += e * e;
                    if clipped {
                        clip += e * e;
                    }
                }
                sq += block_sq;
                if block_sq < self.best[b].0 {
                    self.best[b] = (block_sq, k);
                }
            }
            let n = self.weight.len() as f64;
            self.points.push(ClipPoint {
                fraction: f64::from(c),
                mse: sq / n,
                clipping_mse: clip / n,
            });
            self.next -= 1;
            return Ok(true);
        }
        if self.percentile.is_none() {
            let recipe = LayerRecipe {
                range: RangeMethod::Percentile(self.percentile_thousandths()),
                ..r
            };
            // Calibrated per block, as the recipe does, on the same spans.
            let blocks = self
                .blocks
                .iter()
                .map(|(span, _, _)| Block::calibrate(&self.weight, span.clone(), recipe, self.salt))
                .collect::<Result<Vec<_>>>()?;
            let fractions: f64 = blocks
                .iter()
                .zip(&self.blocks)
                .map(|(b, (_, lo, hi))| kept_fraction(b.lo, b.hi, *lo, *hi))
                .sum();
            let quant = TensorQuant {
                recipe,
                shape: Vec::new(),
                salt: self.salt,
                blocks,
            };
            let stats = quant.error_stats(&self.weight);
            self.percentile = Some(ClipPoint {
                fraction: fractions / self.blocks.len() as f64,
                mse: stats.mse,
                clipping_mse: stats.clipping_mse,
            });
        }
        Ok(false)
    }

    /// The trade-off, once [`Self::step`] has returned `false`.
    pub fn curve(&self) -> Option<ClipCurve> {
        let percentile = self.percentile?;
        // The MSE method's choice: each block at its best k. Its error, split again.
        let recipe = self.recipe;
        let blocks = self
            .blocks
            .iter()
            .zip(&self.best)
            .map(|((span, lo, hi), &(_, k))| {
                let c = k as f32 / 100.0;
                Ok(Block {
                    span: span.clone(),
                    alpha: *lo,
                    beta: *hi,
                    lo: lo * c,
                    hi: hi * c,
                    qparams: QParams::from_range(lo * c, hi * c, recipe.bits, recipe.scheme)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .ok()?;
        let fraction = self
            .best
            .iter()
            .map(|&(_, k)| f64::from(k) / 100.0)
            .sum::<f64>()
            / self.best.len() as f64;
        let stats = TensorQuant {
            recipe,
            shape: Vec::new(),
            salt: self.salt,
            blocks,
        }
        .error_stats(&self.weight);
        Some(ClipCurve {
            minmax: self.points[0],
            percentile,
            percentile_thousandths: self.percentile_thousandths(),
            mse: ClipPoint {
                fraction,
                mse: stats.mse,
                clipping_mse: stats.clipping_mse,
            },
            points: self.points.clone(),
        })
    }

    /// Runs every step at once (the CLI and the tests).
    pub fn run(mut self) -> Result<ClipCurve> {
        while self.step()? {}
        Ok(self.curve().expect("every step done"))
    }
}

/// How much of the widened range `[lo0, hi0]` the range `[lo, hi]` keeps: the larger of the two
/// sides' ratios (a symmetric grid is set by its larger side).
fn kept_fraction(lo: f32, hi: f32, lo0: f32, hi0: f32) -> f64 {
    let side = |v: f32, full: f32| {
        if full == 0.0 {
            0.0
        } else {
            (f64::from(v) / f64::from(full)).clamp(0.0, 1.0)
        }
    };
    side(lo, lo0).max(side(hi, hi0))
}

/// One layer of a network, in PyTorch's layout, with its quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerQuant {
    pub layer: Layer,
    /// The FP32 weight, flat in PyTorch's layout (shared: a page keeps each layer's once).
    pub weight: Arc<[f32]>,
    pub quant: TensorQuant,
}

impl LayerQuant {
    pub fn new(net: &MnistNet, layer: Layer, recipe: LayerRecipe) -> Result<Self> {
        LayerQuant::from_torch(layer, torch_weight(net, layer).into(), recipe)
    }

    /// The same from a weight already in PyTorch's layout: permuting fc1's 401,536 weights took
    /// ~3 ms of every slider move in wasm.
    pub fn from_torch(layer: Layer, weight: Arc<[f32]>, recipe: LayerRecipe) -> Result<Self> {
        let quant = TensorQuant::calibrate(&weight, layer.weight_shape(), recipe, layer as u32)?;
        Ok(LayerQuant {
            layer,
            weight,
            quant,
        })
    }

    pub fn error_stats(&self) -> ErrorStats {
        self.quant.error_stats(&self.weight)
    }

    /// The fake-quantized weight, in PyTorch's layout.
    pub fn fake_quantized(&self) -> Vec<f32> {
        let mut w = self.weight.to_vec();
        self.quant.fake_quant_in_place(&mut w);
        w
    }
}

impl MnistNet {
    /// A copy whose weights are fake-quantized under `recipe` (biases stay in FP32, as in the
    /// essay and in PyTorch's quantized Conv and Linear, which keep them at higher precision).
    pub fn fake_quantized(&self, recipe: &Recipe) -> Result<MnistNet> {
        let mut net = self.clone();
        for layer in Layer::ALL {
            let lq = LayerQuant::new(self, layer, recipe.layer(layer))?;
            set_torch_weight(&mut net, layer, &lq.fake_quantized());
        }
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{Bits, Scheme};

    fn recipe(text: &str) -> LayerRecipe {
        text.parse::<Recipe>().unwrap().default
    }

    #[test]
    fn spans_cover_the_tensor_once_in_rows_and_groups() {
        assert_eq!(
            spans(&[2, 3], Granularity::PerTensor),
            std::iter::once(0..6).collect::<Vec<_>>()
        );
        assert_eq!(spans(&[2, 3], Granularity::PerChannel), vec![0..3, 3..6]);
        // conv1's rows of 9 at g = 8: a group of 8 and one of 1 per row.
        let g = spans(&[32, 1, 3, 3], Granularity::PerGroup(8));
        assert_eq!(g.len(), 64);
        assert_eq!(
            (g[0].clone(), g[1].clone(), g[2].clone()),
            (0..8, 8..9, 9..17)
        );
        for shape in Layer::ALL.map(|l| l.weight_shape()) {
            for gran in Granularity::all() {
                let s = spans(shape, gran);
                assert_eq!(s[0].start, 0);
                assert!(s.windows(2).all(|w| w[0].end == w[1].start));
                assert_eq!(s.last().unwrap().end, shape.iter().product::<usize>());
            }
        }
    }

    #[test]
    fn per_channel_calibrates_each_row_on_its_own_range() {
        let w = [-1.0f32, 0.5, 0.25, -0.125];
        let q =
            TensorQuant::calibrate(&w, &[2, 2], recipe("bits=8&granularity=channel"), 0).unwrap();
        let b8 = Bits::new(8).unwrap();
        let row = |lo, hi| QParams::from_range(lo, hi, b8, Scheme::Symmetric).unwrap();
        assert_eq!(q.blocks[0].qparams, row(-1.0, 0.5));
        assert_eq!(q.blocks[1].qparams, row(-0.125, 0.25));
        assert_eq!(q.blocks[1].span, 2..4);
    }

    #[test]
    fn percentile_takes_nearest_ranks_and_clip_scales_the_widened_range() {
        let w: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
        let q =
            TensorQuant::calibrate(&w, &[1000], recipe("bits=8&range=percentile:99"), 0).unwrap();
        // k = ⌈0.99·1000⌉ = 990: the 990th smallest and the 990th largest.
        assert_eq!((q.blocks[0].lo, q.blocks[0].hi), (11.0, 990.0));
        let q = TensorQuant::calibrate(&w, &[1000], recipe("bits=8&range=clip:0.5"), 0).unwrap();
        // Widened to [0, 1000] first, then halved.
        assert_eq!((q.blocks[0].lo, q.blocks[0].hi), (0.0, 500.0));
    }

    #[test]
    fn mse_search_never_does_worse_than_min_max_and_clips_outliers() {
        // A bulk near zero and one outlier: at 3 bits the best range cuts the outlier off.
        let mut w: Vec<f32> = (0..999).map(|i| ((i % 21) as f32 - 10.0) / 100.0).collect();
        w.push(2.0);
        let minmax = TensorQuant::calibrate(&w, &[1000], recipe("bits=3"), 0).unwrap();
        let mse = TensorQuant::calibrate(&w, &[1000], recipe("bits=3&range=mse"), 0).unwrap();
        assert!(mse.blocks[0].hi < 2.0, "{:?}", mse.blocks[0]);
        assert!(mse.error_stats(&w).mse < minmax.error_stats(&w).mse);
    }

    #[test]
    fn codes_dequantize_to_the_fake_quantized_values() {
        let net = MnistNet::init(3);
        for text in [
            "bits=4&scheme=asym&granularity=group:16&rounding=floor",
            "bits=2&granularity=channel&rounding=stochastic:3",
            "bits=16&scheme=asym&range=clip:0.3",
        ] {
            let lq = LayerQuant::new(&net, Layer::Conv2, recipe(text)).unwrap();
            let fake = lq.fake_quantized();
            for (n, b) in lq.quant.blocks.iter().enumerate() {
                let codes = lq.quant.block_codes(&lq.weight, n);
                assert_eq!(codes.len(), b.span.len());
                for (&q, i) in codes.iter().zip(b.span.clone()) {
                    assert!((b.qparams.qmin..=b.qparams.qmax).contains(&q));
                    assert_eq!(
                        b.qparams.dequantize(q).to_bits(),
                        fake[i].to_bits(),
                        "{text} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn stochastic_rounding_is_unbiased_and_reproducible() {
        let net = MnistNet::init(5);
        // Asymmetric per channel: each row's grid spans its range, so almost nothing is clamped
        // (the clamp at the grid's ends is the one source of bias).
        let r = "bits=3&scheme=asym&granularity=channel";
        let even = LayerQuant::new(&net, Layer::Fc1, recipe(r)).unwrap();
        let s7 = LayerQuant::new(
            &net,
            Layer::Fc1,
            recipe(&format!("{r}&rounding=stochastic:7")),
        )
        .unwrap();
        let again = LayerQuant::new(
            &net,
            Layer::Fc1,
            recipe(&format!("{r}&rounding=stochastic:7")),
        )
        .unwrap();
        assert_eq!(
            s7.fake_quantized(),
            again.fake_quantized(),
            "same seed, same codes"
        );
        let s8 = LayerQuant::new(
            &net,
            Layer::Fc1,
            recipe(&format!("{r}&rounding=stochastic:8")),
        )
        .unwrap();
        assert_ne!(s7.fake_quantized(), s8.fake_quantized());
        let stats = s7.error_stats();
        // Unbiased: the mean signed error is a small fraction of the mean absolute error.
        assert!(
            stats.mean_error.abs() < 0.01 * stats.mean_abs_error,
            "{stats:?}"
        );
        assert!(stats.mse > even.error_stats().mse, "noisier than nearest");
    }

    #[test]
    fn the_clipping_trade_off_marks_what_each_method_really_picks() {
        let net = MnistNet::init(9);
        for text in ["bits=3&scheme=asym", "bits=4&granularity=channel"] {
            let r = recipe(text);
            let lq = LayerQuant::new(&net, Layer::Conv2, r).unwrap();
            let curve = ClipSweep::new(&lq, r).unwrap().run().unwrap();
            assert_eq!(curve.points.len(), 100);
            assert_eq!(curve.points[0].fraction, 1.0);
            // The full range is min–max itself.
            let minmax = lq.error_stats();
            // (Summed in another order: equal to the last few bits.)
            assert!((curve.minmax.mse - minmax.mse).abs() <= 1e-12 * minmax.mse);
            // Clipping harder clips more.
            assert!(curve.points[90].clipping_mse > curve.points[10].clipping_mse);
            assert!(curve.points[10].clipping_mse >= curve.points[0].clipping_mse);
            // The MSE marker is the MSE method's own result, and the lowest of the curve or below.
            let mse = LayerQuant::new(
                &net,
                Layer::Conv2,
                LayerRecipe {
                    range: RangeMethod::Mse,
                    ..r
                },
            )
            .unwrap()
            .error_stats();
            assert_eq!(curve.mse.mse, mse.mse, "{text}");
            let lowest = curve
                .points
                .iter()
                .map(|p| p.mse)
                .fold(f64::INFINITY, f64::min);
            assert!(curve.mse.mse <= lowest);
            let pct = LayerQuant::new(
                &net,
                Layer::Conv2,
                LayerRecipe {
                    range: RangeMethod::Percentile(99_900),
                    ..r
                },
            )
            .unwrap()
            .error_stats();
            assert_eq!(curve.percentile.mse, pct.mse);
        }
    }

    #[test]
    fn the_whole_tensor_is_checked_for_bad_values() {
        let mut w = vec![0.5f32; 16];
        w[9] = f32::NAN;
        let err = TensorQuant::calibrate(&w, &[2, 8], recipe("bits=4&granularity=channel"), 0);
        assert!(matches!(err, Err(Error::NonFinite(_, 9))), "{err:?}");
        assert!(TensorQuant::calibrate(&[], &[0], recipe("bits=4"), 0).is_err());
        assert!(TensorQuant::calibrate(&[1.0; 3], &[2, 2], recipe("bits=4"), 0).is_err());
    }
}
