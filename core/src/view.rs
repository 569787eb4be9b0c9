//! Everything the web app draws for one layer at one setting, computed here so the UI holds no
//! math. Charts read these structs and nothing else.

use crate::error::Result;
use crate::formats::{BlockScale, Format};
use crate::model::Layer;
use crate::quant::{Bits, Scheme};
use crate::quantizer::{Block, ClipCurve, ClipSweep, LayerQuant, TensorQuant};
use crate::recipe::{LayerRecipe, Rounding};
use crate::report::LayerRow;
use crate::stats::ErrorStats;
use crate::stats::Histogram;

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

/// One layer at one recipe: its table row, the chosen block's histogram and parameters under
/// both schemes. A per-tensor recipe has one block, the whole tensor; per channel or per group,
/// the reader picks which block the histogram and the staircase show.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerView {
    pub row: LayerRow,
    pub recipe: LayerRecipe,
    /// Which block is shown, and how many there are.
    pub block_index: usize,
    pub blocks: usize,
    /// The shown block under the reader's recipe.
    pub block: Block,
    /// The same block calibrated under each scheme, `[symmetric, asymmetric]` (one of them is
    /// [`Self::block`]), so the staircase shows both side by side with numbers from here.
    pub schemes: [std::result::Result<Block, crate::Error>; 2],
    pub histogram: HistogramView,
    /// For a number format other than the integer grid, its view of the shown block; then
    /// [`Self::block`] and [`Self::schemes`] are the integer grid's, for comparison only, and
    /// [`Self::block_index`] and [`Self::blocks`] count the format's blocks.
    pub format: Option<FormatView>,
}

/// What a number format (FP8, NF4, Q4_0, MXFP4, …) does to the shown block of a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct FormatView {
    pub format: Format,
    /// Where the shown weights lie in the tensor (the whole tensor for the plain floats).
    pub span: std::ops::Range<usize>,
    /// The shown block's scale as its format derives and stores it (block formats).
    pub scale: Option<BlockScale>,
    /// The smallest and largest magnitude of the stored scale over the layer's blocks (block
    /// formats).
    pub scale_spread: Option<(f32, f32)>,
    /// Every value the shown weights can read back as, ascending: the block's levels, or, for
    /// a plain float format, its values within the chart's range (empty when more than
    /// [`MAX_DRAWN_LEVELS`], as for FP16 and BF16).
    pub levels: Vec<f32>,
    /// The format leaves this layer as it is (torchao's INT4 quantizes only Linear layers whose
    /// rows its group divides).
    pub kept_fp32: bool,
}

impl LayerView {
    pub fn bits(&self) -> Bits {
        self.recipe.bits
    }

    pub fn scheme(&self) -> Scheme {
        self.recipe.scheme
    }

    /// The staircase's code of `x` in the shown block: the recipe's rounding, or for stochastic
    /// rounding the nearest code (the likelier of its two, which the staircase draws).
    pub fn staircase_code(&self, x: f32) -> i32 {
        self.block.staircase_code(self.recipe.rounding, x)
    }
}

/// The view of a calibrated layer whose table row (`report::row_of(lq)`) is `row`, showing block
/// `block` (clamped to the blocks there are). Reuses the row's error statistics: one pass over
/// fc1's 401,536 weights per move, not two.
pub fn layer_view(lq: &LayerQuant, row: LayerRow, block: usize) -> LayerView {
    let quant = &lq.quant;
    if !quant.recipe.is_int() {
        return format_layer_view(lq, row, block);
    }
    let block_index = block.min(quant.blocks.len() - 1);
    let shown = quant.blocks[block_index].clone();
    let histogram = histogram_view(quant, &lq.weight, block_index);
    let schemes = block_schemes(quant, &lq.weight, block_index);
    LayerView {
        histogram,
        row,
        recipe: quant.recipe,
        block_index,
        blocks: quant.blocks.len(),
        block: shown,
        schemes,
        format: None,
    }
}

/// Block `block_index` of `w` (calibrated as `quant` under an integer recipe) under each scheme,
/// `[symmetric, asymmetric]`: the staircase's formulas show both side by side.
pub fn block_schemes(
    quant: &TensorQuant,
    w: &[f32],
    block_index: usize,
) -> [std::result::Result<Block, crate::Error>; 2] {
    let shown = &quant.blocks[block_index];
    Scheme::ALL.map(|scheme| {
        if scheme == quant.recipe.scheme {
            Ok(shown.clone())
        } else {
            let recipe = LayerRecipe {
                scheme,
                ..quant.recipe
            };
            shown.with_scheme(w, recipe, quant.salt)
        }
    })
}

/// The histogram of block `block_index` of `w` (any tensor, calibrated as `quant` under an
/// integer recipe): its FP32 values, the grid, and the values piled onto the grid's levels.
pub fn histogram_view(quant: &TensorQuant, w: &[f32], block_index: usize) -> HistogramView {
    let shown = &quant.blocks[block_index];
    let values = &w[shown.span.clone()];
    let qp = shown.qparams;
    let (grid_lo, grid_hi) = qp.representable_range();
    let lo = shown.alpha.min(grid_lo);
    let hi = shown.beta.max(grid_hi);
    let fp32 = Histogram::new(values.iter().copied(), lo, hi, HISTOGRAM_BINS);
    // The codes of the shown block, with the recipe's rounding (stochastic coins by tensor index).
    let codes = &quant.block_codes(w, block_index);
    let levels_n = quant.recipe.bits.levels() as usize;
    let mut counts = vec![0u32; levels_n];
    for &q in codes {
        counts[(q - qp.qmin) as usize] += 1;
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
        let h = Histogram::new(
            codes.iter().map(|&q| qp.dequantize(q)),
            lo,
            hi,
            HISTOGRAM_BINS,
        );
        let piled = (0..h.counts.len())
            .filter(|&i| h.counts[i] > 0)
            .map(|i| {
                let (a, b) = h.bin_edges(i);
                ((a + b) / 2.0, h.counts[i])
            })
            .collect();
        (Vec::new(), piled)
    };
    HistogramView {
        fp32,
        levels,
        quantized,
        occupied_levels,
        alpha: shown.alpha,
        beta: shown.beta,
        grid_lo,
        grid_hi,
    }
}

/// [`layer_view`] under a number format of its own: the histogram of the shown block (the
/// whole tensor for FP16, BF16 and FP8) with that block's levels, and the weights piled on them.
fn format_layer_view(lq: &LayerQuant, row: LayerRow, block: usize) -> LayerView {
    let quant = &lq.quant;
    let format = quant.recipe.format;
    let w = &lq.weight;
    let shape = lq.layer.weight_shape();
    let blocks = format.blocks(shape);
    let block_index = block.min(blocks - 1);
    let kept_fp32 = !format.applies_to(shape);
    let shown = format.block(w, shape, block_index);
    let span = shown
        .as_ref()
        .map_or(0..w.len(), |(span, _, _)| span.clone());
    let values = &w[span.clone()];
    // Only the shown weights, through the shown block's scale (the plain floats need none; a
    // layer the format leaves alone stays as it is).
    let fake: Vec<f32> = match (&shown, kept_fp32) {
        (_, true) => values.to_vec(),
        (Some((_, scale, _)), _) => values.iter().map(|&x| format.encode(x, scale)).collect(),
        (None, _) => values
            .iter()
            .map(|&x| format.encode(x, &BlockScale::UNIT))
            .collect(),
    };
    let (alpha, beta) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let (scale, levels) = match &shown {
        Some((_, scale, levels)) => (Some(*scale), levels.clone()),
        None => {
            let within: Vec<f32> = format
                .float_values()
                .unwrap_or_default()
                .into_iter()
                .filter(|v| (alpha..=beta).contains(v))
                .collect();
            (None, within)
        }
    };
    let levels = if levels.len() <= MAX_DRAWN_LEVELS {
        levels
    } else {
        Vec::new()
    };
    let (grid_lo, grid_hi) = match (levels.first(), levels.last()) {
        (Some(&a), Some(&b)) if shown.is_some() => (a, b),
        _ => (alpha, beta),
    };
    let (lo, hi) = (alpha.min(grid_lo), beta.max(grid_hi));
    let fp32 = Histogram::new(values.iter().copied(), lo, hi, HISTOGRAM_BINS);
    let mut distinct: Vec<f32> = fake.to_vec();
    distinct.sort_by(f32::total_cmp);
    let mut piled: Vec<(f32, u32)> = Vec::new();
    for v in distinct {
        match piled.last_mut() {
            Some((last, n)) if last.to_bits() == v.to_bits() || *last == v => *n += 1,
            _ => piled.push((v, 1)),
        }
    }
    let occupied_levels = piled.len();
    let quantized = if piled.len() <= MAX_DRAWN_LEVELS {
        piled
    } else {
        let h = Histogram::new(fake.iter().copied(), lo, hi, HISTOGRAM_BINS);
        (0..h.counts.len())
            .filter(|&i| h.counts[i] > 0)
            .map(|i| {
                let (a, b) = h.bin_edges(i);
                ((a + b) / 2.0, h.counts[i])
            })
            .collect()
    };
    let scale_spread = format.scale_spread(w, shape);
    // The integer grid's first block, for the fields a format does not fill.
    let int_block = quant.blocks[0].clone();
    LayerView {
        histogram: HistogramView {
            fp32,
            levels: levels.clone(),
            quantized,
            occupied_levels,
            alpha,
            beta,
            grid_lo,
            grid_hi,
        },
        row,
        recipe: quant.recipe,
        block_index,
        blocks,
        schemes: [Ok(int_block.clone()), Ok(int_block.clone())],
        block: int_block,
        format: Some(FormatView {
            format,
            span,
            scale,
            scale_spread,
            levels,
            kept_fp32,
        }),
    }
}

/// Each output channel's observed `(min, max)` of a weight in PyTorch's layout (`channels`
/// rows, the channel axis first), for the per-channel range chart: it depends on the weight
/// alone, not on the recipe.
pub fn channel_ranges(weight: &[f32], channels: usize) -> Vec<(f32, f32)> {
    let row_len = (weight.len() / channels.max(1)).max(1);
    weight
        .chunks(row_len)
        .map(|row| crate::quant::observe_range(row).unwrap_or((0.0, 0.0)))
        .collect()
}

/// `w` of `shape` (row major) with dimension `axis` moved first, and the new shape: the layout
/// in which that axis's slices are rows, so per-channel blocks (PyTorch's `ch_axis`) are runs.
/// A reader picks the axis of their own tensor; MNISTNet's layers use axis 0.
pub fn axis_first(w: &[f32], shape: &[usize], axis: usize) -> (Vec<f32>, Vec<usize>) {
    if axis == 0 || axis >= shape.len() {
        return (w.to_vec(), shape.to_vec());
    }
    let outer: usize = shape[..axis].iter().product();
    let (n, inner): (usize, usize) = (shape[axis], shape[axis + 1..].iter().product());
    let mut out = Vec::with_capacity(w.len());
    for c in 0..n {
        for o in 0..outer {
            let start = (o * n + c) * inner;
            out.extend_from_slice(&w[start..start + inner]);
        }
    }
    let mut new_shape = vec![shape[axis]];
    new_shape.extend(
        shape
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != axis)
            .map(|(_, &d)| d),
    );
    (out, new_shape)
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

/// Mean absolute error and SQNR of one layer for bits 2..=8 under both schemes, the other knobs
/// as in `recipe`.
pub fn error_curve(lq: &LayerQuant, recipe: LayerRecipe) -> Result<Vec<ErrorPoint>> {
    error_curve_of(&lq.weight, lq.layer.weight_shape(), lq.layer as u32, recipe)
}

/// [`error_curve`] of any tensor `w` of `shape` (PyTorch's layout; `salt` is its stream of
/// stochastic coins): a reader's own tensor gets the same curve as the bundled layers.
pub fn error_curve_of(
    w: &[f32],
    shape: &[usize],
    salt: u32,
    recipe: LayerRecipe,
) -> Result<Vec<ErrorPoint>> {
    let mut out = Vec::new();
    for scheme in Scheme::ALL {
        for bits in Bits::ALL.into_iter().filter(|b| b.get() <= 8) {
            // The integer grid's curve, whatever format the reader picked.
            let r = LayerRecipe {
                bits,
                scheme,
                format: Format::Int,
                ..recipe
            };
            let s = TensorQuant::calibrate(w, shape, r, salt)?.error_stats(w);
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

/// One rounding mode's error on a layer, the other knobs as the reader's recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundingRow {
    pub rounding: Rounding,
    pub error: ErrorStats,
}

/// Every rounding mode side by side on one layer, and stochastic rounding's spread over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundingComparison {
    pub rows: Vec<RoundingRow>,
    /// Stochastic rounding's mean signed error over [`STOCHASTIC_SEEDS`] seeds: its mean and
    /// standard deviation (how far one seed's bias strays from zero).
    pub stochastic_mean_error: (f64, f64),
}

/// The rounding modes compared ([`Rounding::modes_beside`]); stochastic is the last.
const MODES: usize = 4;

/// Seeds over which stochastic rounding's spread is measured, besides the compared one.
pub const STOCHASTIC_SEEDS: u32 = 8;

/// The selected layer's slower analyses — the clipping trade-off and the rounding comparison —
/// a step at a time, so the page can run them in short tasks after a move.
#[derive(Clone, Debug)]
pub struct Analysis {
    weight: std::sync::Arc<[f32]>,
    layer: Layer,
    recipe: LayerRecipe,
    clip: ClipSweep,
    clip_done: bool,
    todo: Vec<Rounding>,
    rows: Vec<RoundingRow>,
    seed_errors: Vec<f64>,
}

/// What [`Analysis`] finds.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisResult {
    pub layer: Layer,
    pub recipe: LayerRecipe,
    pub clip: ClipCurve,
    pub rounding: RoundingComparison,
}

impl Analysis {
    pub fn new(lq: &LayerQuant, recipe: LayerRecipe) -> Result<Self> {
        let modes = Rounding::modes_beside(recipe.rounding);
        let seed = match modes[MODES - 1] {
            Rounding::Stochastic(seed) => seed,
            _ => 0,
        };
        let mut todo: Vec<Rounding> = modes.to_vec();
        todo.extend((0..STOCHASTIC_SEEDS).map(|s| Rounding::Stochastic(seed.wrapping_add(s + 1))));
        todo.reverse();
        Ok(Analysis {
            weight: lq.weight.clone(),
            layer: lq.layer,
            recipe,
            clip: ClipSweep::new(lq, recipe)?,
            clip_done: false,
            todo,
            rows: Vec::new(),
            seed_errors: Vec::new(),
        })
    }

    /// One more unit of work; `false` once everything is computed.
    pub fn step(&mut self) -> Result<bool> {
        if !self.clip_done {
            self.clip_done = !self.clip.step()?;
            return Ok(true);
        }
        let Some(rounding) = self.todo.pop() else {
            return Ok(false);
        };
        let recipe = LayerRecipe {
            rounding,
            ..self.recipe
        };
        let error = TensorQuant::calibrate(
            &self.weight,
            self.layer.weight_shape(),
            recipe,
            self.layer as u32,
        )?
        .error_stats(&self.weight);
        if self.rows.len() < MODES {
            self.rows.push(RoundingRow { rounding, error });
        } else {
            self.seed_errors.push(error.mean_error);
        }
        Ok(!self.todo.is_empty())
    }

    /// The result, once [`Self::step`] has returned `false`.
    pub fn result(&self) -> Option<AnalysisResult> {
        if !self.todo.is_empty() {
            return None;
        }
        let mut seeds = self.seed_errors.clone();
        seeds.extend(self.rows.get(MODES - 1).map(|r| r.error.mean_error));
        let n = seeds.len() as f64;
        let mean = seeds.iter().sum::<f64>() / n;
        let sd =
            (seeds.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        Some(AnalysisResult {
            layer: self.layer,
            recipe: self.recipe,
            clip: self.clip.curve()?,
            rounding: RoundingComparison {
                rows: self.rows.clone(),
                stochastic_mean_error: (mean, sd),
            },
        })
    }

    pub fn run(mut self) -> Result<AnalysisResult> {
        while self.step()? {}
        Ok(self.result().expect("every step done"))
    }
}

/// The view of `layer` under `recipe`, showing block `block`: calibrate, row, view in one call.
pub fn layer_view_at(
    net: &crate::model::MnistNet,
    layer: Layer,
    recipe: &crate::recipe::Recipe,
    block: usize,
) -> Result<LayerView> {
    let lq = LayerQuant::new(net, layer, recipe.layer(layer))?;
    let row = crate::report::row_of(&lq)?;
    Ok(layer_view(&lq, row, block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_first_makes_the_axis_slices_rows() {
        let shape = [2, 3, 2];
        let w: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let (out, new_shape) = axis_first(&w, &shape, 1);
        assert_eq!(new_shape, vec![3, 2, 2]);
        for a in 0..2 {
            for b in 0..3 {
                for c in 0..2 {
                    assert_eq!(
                        out[b * 4 + a * 2 + c],
                        w[a * 6 + b * 2 + c],
                        "({a},{b},{c})"
                    );
                }
            }
        }
        // Axis 0 (and an axis past the last) leaves the tensor as it is.
        assert_eq!(axis_first(&w, &shape, 0), (w.clone(), shape.to_vec()));
        let (last, s) = axis_first(&w, &shape, 2);
        assert_eq!(s, vec![2, 2, 3]);
        assert_eq!(&last[..6], &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }
    use crate::model::MnistNet;
    use crate::recipe::Recipe;
    use crate::report::row_of;

    fn view(net: &MnistNet, layer: Layer, text: &str, block: usize) -> LayerView {
        let lq = LayerQuant::new(net, layer, text.parse::<Recipe>().unwrap().default).unwrap();
        let row = row_of(&lq).unwrap();
        layer_view(&lq, row, block)
    }

    #[test]
    fn a_formats_view_piles_the_shown_block_as_the_whole_tensor_quantizes_it() {
        // The view quantizes only the shown block; the network quantizes the whole tensor (with
        // NVFP4's tensor scale): the piles must be the same weights.
        let net = MnistNet::init(4);
        let w = crate::weights::torch_weight(&net, Layer::Fc1);
        let shape = Layer::Fc1.weight_shape();
        for dtype in [
            "nf4",
            "nvfp4",
            "q4_1",
            "mxfp4",
            "int4_g32",
            "fp8_e4m3",
            "int4_g128",
        ] {
            let v = view(&net, Layer::Fc1, &format!("bits=8&dtype={dtype}"), 3);
            let f = v.format.as_ref().unwrap();
            let whole = f.format.fake_quantize(&w, shape).unwrap();
            let mut want: Vec<(f32, u32)> = Vec::new();
            let mut shown = whole[f.span.clone()].to_vec();
            shown.sort_by(f32::total_cmp);
            for x in shown {
                match want.last_mut() {
                    Some((last, n)) if *last == x => *n += 1,
                    _ => want.push((x, 1)),
                }
            }
            if want.len() <= MAX_DRAWN_LEVELS {
                assert_eq!(v.histogram.quantized, want, "{dtype}");
            }
            assert_eq!(v.histogram.occupied_levels, want.len(), "{dtype}");
            // The spread of stored scales covers the shown block's.
            if let (Some(s), Some((lo, hi))) = (f.scale, f.scale_spread) {
                assert!(lo <= s.scale.abs() && s.scale.abs() <= hi, "{dtype}");
            }
        }
    }

    #[test]
    fn quantized_histogram_holds_every_weight_on_a_level() {
        let net = MnistNet::init(4);
        for bits in [2, 3, 8, 16] {
            let v = view(&net, Layer::Conv2, &format!("bits={bits}&scheme=asym"), 0);
            let total: u64 = v
                .histogram
                .quantized
                .iter()
                .map(|&(_, c)| u64::from(c))
                .sum();
            assert_eq!(total, 18_432);
            assert_eq!(v.histogram.fp32.total(), 18_432);
            let fake = net
                .fake_quantized(&format!("bits={bits}&scheme=asym").parse().unwrap())
                .unwrap();
            let mut distinct: Vec<u32> = fake
                .weight(Layer::Conv2)
                .iter()
                .map(|w| w.to_bits())
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(v.histogram.occupied_levels, distinct.len(), "{bits} bits");
            if bits <= 8 {
                assert_eq!(v.histogram.levels.len(), 1 << bits);
                assert!(v
                    .histogram
                    .quantized
                    .iter()
                    .all(|(x, _)| v.histogram.levels.contains(x)));
                assert_eq!(v.histogram.occupied_levels, v.histogram.quantized.len());
            } else {
                assert!(v.histogram.levels.is_empty());
                assert!(
                    distinct.len() > v.histogram.quantized.len(),
                    "binned for drawing"
                );
            }
        }
    }

    #[test]
    fn a_chosen_channel_shows_its_own_weights_and_both_schemes_parameters() {
        let net = MnistNet::init(4);
        let v = view(&net, Layer::Fc2, "bits=4&granularity=channel", 3);
        assert_eq!((v.block_index, v.blocks), (3, 10));
        assert_eq!(v.histogram.fp32.total(), 128);
        assert_eq!(v.block.span, 384..512);
        let sym = v.schemes[0].as_ref().unwrap();
        let asym = v.schemes[1].as_ref().unwrap();
        assert_eq!(sym, &v.block);
        assert_eq!(asym.span, v.block.span);
        assert_ne!(asym.qparams.zero_point, 0);
        let lq = LayerQuant::new(&net, Layer::Fc2, LayerRecipe::default()).unwrap();
        let ranges = channel_ranges(&lq.weight, Layer::Fc2.weight_shape()[0]);
        assert_eq!(ranges.len(), 10);
        assert_eq!(ranges[3], (v.block.alpha, v.block.beta));
        // Past the last block: the last one.
        assert_eq!(
            view(&net, Layer::Fc2, "bits=4&granularity=channel", 99).block_index,
            9
        );
    }

    #[test]
    fn the_rounding_comparison_has_every_mode_and_stochastic_is_nearly_unbiased() {
        let net = MnistNet::init(4);
        let r: LayerRecipe = "bits=4&scheme=asym&granularity=channel"
            .parse::<Recipe>()
            .unwrap()
            .default;
        let lq = LayerQuant::new(&net, Layer::Conv2, r).unwrap();
        let a = Analysis::new(&lq, r).unwrap().run().unwrap();
        let modes: Vec<Rounding> = a.rounding.rows.iter().map(|r| r.rounding).collect();
        assert_eq!(
            modes,
            [
                Rounding::HalfEven,
                Rounding::TowardZero,
                Rounding::Floor,
                Rounding::Stochastic(0)
            ]
        );
        let even = a.rounding.rows[0].error;
        let floor = a.rounding.rows[2].error;
        // Nearest rounding has the least error; floor is biased by half a step, and positive
        // (w − ŵ ≥ 0 before the clamp).
        assert!(a.rounding.rows.iter().all(|r| r.error.mse >= even.mse));
        assert!(floor.mean_error > 0.3 * floor.mean_abs_error, "{floor:?}");
        let (mean, sd) = a.rounding.stochastic_mean_error;
        assert!(
            mean.abs() < 0.05 * even.mean_abs_error && sd > 0.0,
            "{mean} ± {sd}"
        );
        assert_eq!(a.clip.points.len(), 100);
    }

    #[test]
    fn error_curve_falls_with_bits() {
        let net = MnistNet::init(4);
        let lq = LayerQuant::new(&net, Layer::Fc2, LayerRecipe::default()).unwrap();
        let curve = error_curve(&lq, LayerRecipe::default()).unwrap();
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
