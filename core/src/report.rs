//! The essay's tables, computed once here and printed by the CLI or rendered by the web app.

use crate::error::Result;
use crate::eval::{evaluate, Evaluation};
use crate::formats::Format;
use crate::model::{Layer, MnistNet};
use crate::quant::QParams;
use crate::quantizer::{LayerQuant, TensorQuant};
use crate::recipe::{Granularity, LayerRecipe, Recipe};
use crate::stats::{ErrorAccumulator, ErrorStats};
use crate::weights::torch_weight;
use ndarray::ArrayView2;
use serde::Serialize;
use std::sync::Arc;

/// One row of the essay's per-layer printout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerRow {
    pub layer: Layer,
    /// The layer's recipe in its text form.
    #[serde(serialize_with = "layer_recipe_text")]
    pub recipe: LayerRecipe,
    /// PyTorch's shape of the weight.
    pub shape: Vec<usize>,
    pub min: f32,
    pub max: f32,
    /// How many (scale, zero_point) pairs the layer has: 1 per tensor, one per channel or group.
    pub blocks: usize,
    /// The one pair of a per-tensor recipe; `None` when there are several (see the ranges).
    #[serde(flatten)]
    pub qparams: Option<QParams>,
    pub scale_min: f32,
    pub scale_max: f32,
    pub zero_point_min: i32,
    pub zero_point_max: i32,
    #[serde(flatten)]
    pub error: ErrorStats,
}

fn layer_recipe_text<S: serde::Serializer>(
    r: &LayerRecipe,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&Recipe::uniform(*r).to_string())
}

/// The table row of a calibrated layer. Its range is its blocks' (they cover the tensor), so no
/// second pass over the weights.
pub fn row_of(lq: &LayerQuant) -> Result<LayerRow> {
    let blocks = &lq.quant.blocks;
    let min = blocks.iter().map(|b| b.alpha).fold(f32::INFINITY, f32::min);
    let max = blocks
        .iter()
        .map(|b| b.beta)
        .fold(f32::NEG_INFINITY, f32::max);
    let ((scale_min, scale_max), (zero_point_min, zero_point_max)) = lq.quant.spread();
    let recipe = lq.quant.recipe;
    if !recipe.is_int() {
        // Another format: its own scales (an f16 d, an E8M0 power of two, an absmax) are not
        // a (scale, zero_point) pair, so the row gives none (NaN: null in JSON, "—" in tables).
        return Ok(LayerRow {
            layer: lq.layer,
            recipe,
            shape: lq.layer.weight_shape().to_vec(),
            min,
            max,
            blocks: recipe.format.blocks(lq.layer.weight_shape()),
            qparams: None,
            scale_min: f32::NAN,
            scale_max: f32::NAN,
            zero_point_min: 0,
            zero_point_max: 0,
            error: lq.error_stats(),
        });
    }
    Ok(LayerRow {
        layer: lq.layer,
        recipe: lq.quant.recipe,
        shape: lq.layer.weight_shape().to_vec(),
        min,
        max,
        blocks: blocks.len(),
        qparams: (blocks.len() == 1).then(|| blocks[0].qparams),
        scale_min,
        scale_max,
        zero_point_min,
        zero_point_max,
        error: lq.error_stats(),
    })
}

pub fn layer_rows(net: &MnistNet, recipe: &Recipe) -> Result<Vec<LayerRow>> {
    layer_rows_from(&Layer::ALL.map(|l| torch_weight(net, l).into()), recipe)
}

/// [`layer_rows`] from the layers' weights already in PyTorch's layout (`weights[layer]`).
pub fn layer_rows_from(weights: &[Arc<[f32]>; 4], recipe: &Recipe) -> Result<Vec<LayerRow>> {
    layer_rows_with(|l| {
        LayerQuant::from_torch(l, weights[l as usize].clone(), recipe.layer(l)).map(Arc::new)
    })
}

/// The table's rows from each layer calibrated by `quant` (the web app's, which keeps the
/// calibrated layers it has seen, so a layer is not calibrated twice for its view and its row).
pub fn layer_rows_with(
    mut quant: impl FnMut(Layer) -> Result<Arc<LayerQuant>>,
) -> Result<Vec<LayerRow>> {
    Layer::ALL
        .into_iter()
        .map(|l| row_of(&*quant(l)?))
        .collect()
}

impl LayerRow {
    /// The zero point, or the range of them when the blocks' differ ("-2 – 3"), as the table and
    /// its exports show it.
    pub fn zero_point_text(&self) -> String {
        if !self.recipe.is_int() {
            return "—".into();
        }
        match self.qparams {
            Some(qp) => qp.zero_point.to_string(),
            None if self.zero_point_min == self.zero_point_max => self.zero_point_min.to_string(),
            None => format!("{} – {}", self.zero_point_min, self.zero_point_max),
        }
    }
}

/// A granularity in words: "per-tensor", "per-channel", "group-wise (32)".
pub fn granularity_words(g: Granularity) -> String {
    match g {
        Granularity::PerTensor => "per-tensor".into(),
        Granularity::PerChannel => "per-channel".into(),
        Granularity::PerGroup(n) => format!("group-wise ({n})"),
    }
}

/// What the blocks of a row are called, for a reader (`32 channels`, `1,152 groups of 16`).
pub fn blocks_label(row: &LayerRow) -> String {
    if !row.recipe.is_int() {
        return match row.recipe.format.block_size() {
            Some(b) => format!("{} blocks of {b}", crate::fmt::thousands(row.blocks)),
            None => "per value".into(),
        };
    }
    match row.recipe.granularity {
        Granularity::PerTensor => "per tensor".into(),
        Granularity::PerChannel => format!("{} channels", row.blocks),
        Granularity::PerGroup(g) => {
            format!("{} groups of {g}", crate::fmt::thousands(row.blocks))
        }
    }
}

/// The essay's per-layer table as text cells, shared by the CLI's output and the web app's CSV
/// and markdown export so both print the same figures.
pub fn essay_table(rows: &[LayerRow]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    // Per channel or per group, each row has many scales: the table gives their range, and how
    // many there are.
    let several = rows.iter().any(|r| r.blocks > 1);
    let mut headers = vec!["layer", "shape", "min", "max", "scale", "zero_point"];
    if several {
        headers.push("parameters");
    }
    headers.push("mean abs error");
    let cells = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.layer.name().to_string(),
                format!("{:?}", r.shape),
                format!("{:.6}", r.min),
                format!("{:.6}", r.max),
                match r.qparams {
                    Some(qp) => format!("{:.10}", qp.scale),
                    None if !r.recipe.is_int() => "—".into(),
                    None => format!("{:.6} – {:.6}", r.scale_min, r.scale_max),
                },
                r.zero_point_text(),
            ];
            if several {
                cells.push(blocks_label(r));
            }
            cells.push(format!("{:.3e}", r.error.mean_abs_error));
            cells
        })
        .collect();
    (headers, cells)
}

/// Error pooled over every weight of the network (each weight counts once, so fc1 dominates,
/// as it does in the model).
pub fn model_error(net: &MnistNet, recipe: &Recipe) -> Result<ErrorStats> {
    let mut acc = ErrorAccumulator::default();
    for layer in Layer::ALL {
        let r = recipe.layer(layer);
        if r.is_int() {
            let lq = LayerQuant::new(net, layer, r)?;
            lq.quant.accumulate_error(&lq.weight, &mut acc);
        } else {
            // A format of its own needs no integer calibration.
            let w = torch_weight(net, layer);
            let fake = r.format.fake_quantize(&w, layer.weight_shape())?;
            acc.add_with(&w, |i, _| (fake[i], false));
        }
    }
    Ok(acc.finish())
}

/// One line of the essay's printout for any tensor (a reader's own, `qp inspect`): its recipe,
/// the one (scale, zero_point) pair when one covers the tensor, how many blocks, the error.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorRow {
    pub recipe: String,
    pub scale: Option<f32>,
    pub zero_point: Option<i32>,
    pub blocks: usize,
    pub mean_abs_error: f64,
    pub sqnr_db: Option<f64>,
}

/// The printout of a tensor: its range, a row under `recipe` and (on the integer grid) one
/// under the other scheme beside it, and the recipe's own quantizer (for its codes and its
/// histogram).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorPrintout {
    pub min: f32,
    pub max: f32,
    pub rows: Vec<TensorRow>,
    pub quant: TensorQuant,
}

/// [`TensorPrintout`] of `w` (PyTorch's layout, `shape`) under `recipe`.
pub fn tensor_printout(w: &[f32], shape: &[usize], recipe: LayerRecipe) -> Result<TensorPrintout> {
    let row = |r: LayerRecipe| -> Result<(TensorRow, TensorQuant)> {
        let q = TensorQuant::calibrate(w, shape, r, 0)?;
        let e = q.error_stats(w);
        let one = (q.blocks.len() == 1 && r.is_int()).then(|| q.blocks[0].qparams);
        let row = TensorRow {
            recipe: Recipe::uniform(r).to_string(),
            scale: one.map(|p| p.scale),
            zero_point: one.map(|p| p.zero_point),
            blocks: q.blocks.len(),
            mean_abs_error: e.mean_abs_error,
            sqnr_db: e.sqnr_db,
        };
        Ok((row, q))
    };
    let (first, quant) = row(recipe)?;
    let mut rows = vec![first];
    if recipe.is_int() {
        let other = LayerRecipe {
            scheme: recipe.scheme.other(),
            ..recipe
        };
        rows.push(row(other)?.0);
    }
    let (min, max) = w
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    Ok(TensorPrintout {
        min,
        max,
        rows,
        quant,
    })
}

/// Which of `points` (bits per weight, accuracy) lie on the Pareto front: no other point has
/// as few bits or fewer and as high an accuracy or higher, one of them strictly. Points without
/// an accuracy yet are on no front.
pub fn pareto_front(points: &[(f64, Option<f64>)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(bits, acc)| {
            let Some(acc) = acc else { return false };
            !points
                .iter()
                .any(|&(b, a)| a.is_some_and(|a| b <= bits && a >= acc && (b < bits || a > acc)))
        })
        .collect()
}

/// Bytes to store the model: weights packed at their layer's bits (FP32 when `None`), biases as
/// f32, and per block (tensor, channel or group) one f32 scale and one i32 zero_point; in another
/// format, its elements and its own scales ([`crate::formats::Format::storage_bits`]).
pub fn model_size_bytes(recipe: Option<&Recipe>) -> usize {
    Layer::ALL
        .into_iter()
        .map(|layer| layer_size_bytes(layer, recipe.map(|r| r.layer(layer))))
        .sum()
}

/// One layer's share of [`model_size_bytes`]: its weights and scales under `recipe` (FP32 when
/// `None`) and its FP32 bias.
pub fn layer_size_bytes(layer: Layer, recipe: Option<LayerRecipe>) -> usize {
    let shape = layer.weight_shape();
    let weights: usize = shape.iter().product();
    let bias = 4 * layer.bias_len();
    match recipe {
        None => 4 * weights + bias,
        Some(r) if !r.is_int() => {
            let bits = r.format.storage_bits(shape).expect("not the integer grid");
            bits.div_ceil(8) as usize + bias
        }
        Some(r) => {
            let blocks = crate::quantizer::spans(shape, r.granularity).len();
            (weights * r.bits.get() as usize).div_ceil(8) + bias + 8 * blocks
        }
    }
}

/// Bits each weight takes under `recipe`, its scales (and zero points) counted: the model's
/// packed size without the FP32 biases, over its 421,408 weights.
pub fn bits_per_weight(recipe: &Recipe) -> f64 {
    let weights: usize = Layer::ALL
        .iter()
        .map(|l| l.weight_shape().iter().product::<usize>())
        .sum();
    let biases: usize = Layer::ALL.iter().map(|l| 4 * l.bias_len()).sum();
    (model_size_bytes(Some(recipe)) - biases) as f64 * 8.0 / weights as f64
}

/// The name of a recipe's format for a table: `INT4 sym, per-channel` for the integer grid,
/// the format's own name (`NF4`, `Q4_0`) otherwise. Per-layer overrides are not named.
pub fn format_label(recipe: &Recipe) -> String {
    let d = recipe.default;
    if d.is_int() {
        format!(
            "INT{} {}, {}",
            d.bits,
            d.scheme.short(),
            granularity_words(d.granularity)
        )
    } else {
        // Layers the format leaves alone (torchao's INT4 takes only Linear layers whose rows its
        // group divides) are named: they are FP32 in the size and the accuracy.
        let kept: Vec<&str> = Layer::ALL
            .iter()
            .filter(|l| !d.format.applies_to(l.weight_shape()))
            .map(|l| l.name())
            .collect();
        if kept.is_empty() {
            d.format.label().to_string()
        } else {
            format!("{} ({} in FP32)", d.format.label(), kept.join(", "))
        }
    }
}

/// The format gallery's rows: the reader's integer recipe at 8, 6, 4, 3 and 2 bits, then every
/// other format applied to every layer.
pub fn gallery_recipes(base: &Recipe) -> Vec<Recipe> {
    let int = Recipe::uniform(LayerRecipe {
        format: Format::Int,
        ..base.default
    });
    [8u32, 6, 4, 3, 2]
        .into_iter()
        .map(|b| {
            let bits = crate::quant::Bits::new(b).expect("a bit width offered");
            Recipe::uniform(LayerRecipe {
                bits,
                ..int.default
            })
        })
        .chain(
            Format::ALL
                .into_iter()
                .filter(|f| *f != Format::Int)
                .map(|f| {
                    Recipe::uniform(LayerRecipe {
                        format: f,
                        ..int.default
                    })
                }),
        )
        .collect()
}

/// The essay's comparison: the FP32 network against its fake-quantized copy on the test digits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub recipe: Recipe,
    pub fp32: Evaluation,
    pub quantized: Evaluation,
    pub fp32_bytes: usize,
    pub quantized_bytes: usize,
}

pub fn compare(
    net: &MnistNet,
    images: ArrayView2<f32>,
    labels: &[u8],
    recipe: &Recipe,
) -> Result<Comparison> {
    Ok(Comparison {
        recipe: *recipe,
        fp32: evaluate(net, images, labels)?,
        quantized: evaluate(&net.fake_quantized(recipe)?, images, labels)?,
        fp32_bytes: model_size_bytes(None),
        quantized_bytes: model_size_bytes(Some(recipe)),
    })
}

/// One setting of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepRow {
    pub recipe: Recipe,
    pub accuracy: f64,
    pub loss: f64,
    /// Mean absolute error over all weights.
    pub mean_abs_error: f64,
    /// SQNR over all weights, dB (`None`: no error at all).
    pub sqnr_db: Option<f64>,
    pub size_bytes: usize,
}

pub fn sweep_row(
    net: &MnistNet,
    images: ArrayView2<f32>,
    labels: &[u8],
    recipe: &Recipe,
) -> Result<SweepRow> {
    let eval = evaluate(&net.fake_quantized(recipe)?, images, labels)?;
    let error = model_error(net, recipe)?;
    Ok(SweepRow {
        recipe: *recipe,
        accuracy: eval.accuracy,
        loss: eval.loss,
        mean_abs_error: error.mean_abs_error,
        sqnr_db: error.sqnr_db,
        size_bytes: model_size_bytes(Some(recipe)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{Bits, Scheme};

    #[test]
    fn model_sizes() {
        let r = |text: &str| text.parse::<Recipe>().unwrap();
        assert_eq!(model_size_bytes(None), 421_642 * 4);
        // 8 bits: 421,408 weight bytes + 234 biases × 4 + 4 × 8 bytes of qparams.
        assert_eq!(model_size_bytes(Some(&r("bits=8"))), 421_408 + 936 + 32);
        // 3 bits: each tensor packed separately, rounded up to whole bytes.
        let three: usize = [288usize, 18_432, 401_408, 1_280]
            .iter()
            .map(|w| (w * 3).div_ceil(8))
            .sum();
        assert_eq!(model_size_bytes(Some(&r("bits=3"))), three + 936 + 32);
        // Per channel: one pair per output channel (32 + 64 + 128 + 10).
        assert_eq!(
            model_size_bytes(Some(&r("bits=8&granularity=channel"))),
            421_408 + 936 + 8 * 234
        );
        // Groups of 32: conv1's rows of 9 are one group each; fc1's 3,136 are 98.
        let groups = 32 + 64 * 9 + 128 * 98 + 10 * 4;
        assert_eq!(
            model_size_bytes(Some(&r("bits=4&granularity=group:32"))),
            421_408 / 2 + 936 + 8 * groups
        );
        // A per-layer override packs that layer at its own width.
        assert_eq!(
            model_size_bytes(Some(&r("bits=8&fc1.bits=4"))),
            421_408 - 401_408 / 2 + 936 + 32
        );
        // Q4_0: 18 bytes per 32 weights (every layer's length is a multiple of 32).
        assert_eq!(
            model_size_bytes(Some(&r("bits=8&dtype=q4_0"))),
            421_408 / 32 * 18 + 936
        );
        // NF4: conv1's 288 weights are 4 blocks of 64 and one of 32, each with an f32 absmax.
        let nf4 = [288usize, 18_432, 401_408, 1_280]
            .iter()
            .map(|n| n / 2 + 4 * n.div_ceil(64))
            .sum::<usize>();
        assert_eq!(model_size_bytes(Some(&r("bits=8&dtype=nf4"))), nf4 + 936);
    }

    #[test]
    fn the_pareto_front_keeps_what_nothing_beats() {
        let points = [
            (4.0, Some(98.0)),
            (4.5, Some(97.0)), // beaten by (4.0, 98.0)
            (8.0, Some(99.0)),
            (8.5, Some(99.0)), // as accurate as 8.0, more bits
            (2.0, Some(30.0)),
            (3.0, None),
            (4.0, Some(98.0)), // a tie with the first: neither beats the other
        ];
        assert_eq!(
            pareto_front(&points),
            [true, false, true, false, true, false, true]
        );
    }

    #[test]
    fn a_formats_pooled_error_is_its_layers_together() {
        let net = MnistNet::init(3);
        let recipe: Recipe = "bits=8&dtype=nf4".parse().unwrap();
        let pooled = model_error(&net, &recipe).unwrap();
        let rows = layer_rows(&net, &recipe).unwrap();
        let n: usize = rows.iter().map(|r| r.error.count).sum();
        let weighted = rows
            .iter()
            .map(|r| r.error.mean_abs_error * r.error.count as f64)
            .sum::<f64>()
            / n as f64;
        assert_eq!(pooled.count, 421_408);
        assert!((pooled.mean_abs_error - weighted).abs() <= 1e-12 * weighted);
        assert!(rows.iter().all(|r| r.qparams.is_none() && r.blocks > 1));
    }

    #[test]
    fn pooled_error_weights_every_value_once() {
        let net = MnistNet::init(2);
        let recipe = Recipe::per_tensor(Bits::new(4).unwrap(), Scheme::Asymmetric);
        let rows = layer_rows(&net, &recipe).unwrap();
        let pooled = model_error(&net, &recipe).unwrap();
        let n: usize = rows.iter().map(|r| r.error.count).sum();
        let weighted: f64 = rows
            .iter()
            .map(|r| r.error.mean_abs_error * r.error.count as f64)
            .sum::<f64>()
            / n as f64;
        assert_eq!(pooled.count, n);
        assert!((pooled.mean_abs_error - weighted).abs() <= 1e-12 * weighted);
    }
}
