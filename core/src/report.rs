//! The essay's tables, computed once here and printed by the CLI or rendered by the web app.

use crate::error::Result;
use crate::eval::{evaluate, Evaluation};
use crate::model::{Layer, MnistNet};
use crate::quant::QParams;
use crate::quantizer::LayerQuant;
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
        let lq = LayerQuant::new(net, layer, recipe.layer(layer))?;
        lq.quant.accumulate_error(&lq.weight, &mut acc);
    }
    Ok(acc.finish())
}

/// Bytes to store the model: weights packed at their layer's bits (FP32 when `None`), biases as
/// f32, and per block (tensor, channel or group) one f32 scale and one i32 zero_point.
pub fn model_size_bytes(recipe: Option<&Recipe>) -> usize {
    Layer::ALL
        .into_iter()
        .map(|layer| {
            let shape = layer.weight_shape();
            let weights: usize = shape.iter().product();
            let bias = 4 * layer.bias_len();
            match recipe.map(|r| r.layer(layer)) {
                None => 4 * weights + bias,
                Some(r) => {
                    let blocks = crate::quantizer::spans(shape, r.granularity).len();
                    (weights * r.bits.get() as usize).div_ceil(8) + bias + 8 * blocks
                }
            }
        })
        .sum()
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
