//! The essay's tables, computed once here and printed by the CLI or rendered by the web app.

use crate::error::Result;
use crate::eval::{evaluate, Evaluation};
use crate::model::{Layer, MnistNet};
use crate::quant::{observe_range, Bits, QParams, Scheme};
use crate::stats::{error_stats, ErrorAccumulator, ErrorStats};
use ndarray::ArrayView2;
use serde::Serialize;

/// One row of the essay's per-layer printout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerRow {
    pub layer: Layer,
    /// PyTorch's shape of the weight.
    pub shape: Vec<usize>,
    pub min: f32,
    pub max: f32,
    #[serde(flatten)]
    pub qparams: QParams,
    #[serde(flatten)]
    pub error: ErrorStats,
}

pub fn layer_row(net: &MnistNet, layer: Layer, bits: Bits, scheme: Scheme) -> Result<LayerRow> {
    let w = net.weight(layer);
    let (min, max) = observe_range(w)?;
    let qparams = QParams::from_range(min, max, bits, scheme)?;
    Ok(LayerRow {
        layer,
        shape: layer.weight_shape().to_vec(),
        min,
        max,
        qparams,
        error: error_stats(w, &qparams),
    })
}

pub fn layer_rows(net: &MnistNet, bits: Bits, scheme: Scheme) -> Result<Vec<LayerRow>> {
    Layer::ALL
        .into_iter()
        .map(|l| layer_row(net, l, bits, scheme))
        .collect()
}

/// The essay's per-layer table as text cells, shared by the CLI's output and the web app's CSV
/// and markdown export so both print the same figures.
pub fn essay_table(rows: &[LayerRow]) -> ([&'static str; 7], Vec<Vec<String>>) {
    let headers = [
        "layer",
        "shape",
        "min",
        "max",
        "scale",
        "zero_point",
        "mean abs error",
    ];
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.layer.name().to_string(),
                format!("{:?}", r.shape),
                format!("{:.6}", r.min),
                format!("{:.6}", r.max),
                format!("{:.10}", r.qparams.scale),
                r.qparams.zero_point.to_string(),
                format!("{:.3e}", r.error.mean_abs_error),
            ]
        })
        .collect();
    (headers, cells)
}

/// Error pooled over every weight of the network (each weight counts once, so fc1 dominates,
/// as it does in the model).
pub fn model_error(net: &MnistNet, bits: Bits, scheme: Scheme) -> Result<ErrorStats> {
    let mut acc = ErrorAccumulator::default();
    for (qp, layer) in net.qparams(bits, scheme)?.iter().zip(Layer::ALL) {
        acc.add(net.weight(layer), qp);
    }
    Ok(acc.finish())
}

/// Bytes to store the model: weights packed at `bits` each (FP32 when `None`), biases as f32,
/// and per quantized tensor one f32 scale and one i32 zero_point.
pub fn model_size_bytes(bits: Option<Bits>) -> usize {
    Layer::ALL
        .into_iter()
        .map(|layer| {
            let weights: usize = layer.weight_shape().iter().product();
            let bias = 4 * layer.bias_len();
            match bits {
                None => 4 * weights + bias,
                Some(b) => (weights * b.get() as usize).div_ceil(8) + bias + 8,
            }
        })
        .sum()
}

/// The essay's comparison: the FP32 network against its fake-quantized copy on the test digits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub bits: Bits,
    pub scheme: Scheme,
    pub fp32: Evaluation,
    pub quantized: Evaluation,
    pub fp32_bytes: usize,
    pub quantized_bytes: usize,
}

pub fn compare(
    net: &MnistNet,
    images: ArrayView2<f32>,
    labels: &[u8],
    bits: Bits,
    scheme: Scheme,
) -> Result<Comparison> {
    Ok(Comparison {
        bits,
        scheme,
        fp32: evaluate(net, images, labels),
        quantized: evaluate(&net.fake_quantized(bits, scheme)?, images, labels),
        fp32_bytes: model_size_bytes(None),
        quantized_bytes: model_size_bytes(Some(bits)),
    })
}

/// One setting of the sweep over bit widths and schemes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepRow {
    pub bits: Bits,
    pub scheme: Scheme,
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
    bits: Bits,
    scheme: Scheme,
) -> Result<SweepRow> {
    let eval = evaluate(&net.fake_quantized(bits, scheme)?, images, labels);
    let error = model_error(net, bits, scheme)?;
    Ok(SweepRow {
        bits,
        scheme,
        accuracy: eval.accuracy,
        loss: eval.loss,
        mean_abs_error: error.mean_abs_error,
        sqnr_db: error.sqnr_db,
        size_bytes: model_size_bytes(Some(bits)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_sizes() {
        assert_eq!(model_size_bytes(None), 421_642 * 4);
        // 8 bits: 421,408 weight bytes + 234 biases × 4 + 4 × 8 bytes of qparams.
        assert_eq!(
            model_size_bytes(Some(Bits::new(8).unwrap())),
            421_408 + 936 + 32
        );
        // 3 bits: each tensor packed separately, rounded up to whole bytes.
        let three: usize = [288usize, 18_432, 401_408, 1_280]
            .iter()
            .map(|w| (w * 3).div_ceil(8))
            .sum();
        assert_eq!(
            model_size_bytes(Some(Bits::new(3).unwrap())),
            three + 936 + 32
        );
    }

    #[test]
    fn pooled_error_weights_every_value_once() {
        let net = MnistNet::init(2);
        let (bits, scheme) = (Bits::new(4).unwrap(), Scheme::Asymmetric);
        let rows = layer_rows(&net, bits, scheme).unwrap();
        let pooled = model_error(&net, bits, scheme).unwrap();
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
