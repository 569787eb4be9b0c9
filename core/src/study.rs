//! The digits and the layers: which test digits a recipe flips, how each layer alone bears
//! fewer bits (sensitivity), and which bit width each layer should get under a size budget
//! (allocation).
//!
//! Allocation searches every assignment of the eight widths (2–8 and 16 bits) to the four
//! layers, 8⁴ = 4,096 recipes. Measuring each on the 2,000 test digits would be 8 million
//! forward passes (minutes in a browser), so the search prunes: a recipe's loss is predicted as
//! the FP32 loss plus the sum of each layer's loss increase when it alone is quantized (the
//! sensitivity table), every assignment is ranked by that prediction and its exact size, and
//! only the assignments on the predicted Pareto front of size against loss (a few dozen) are
//! measured. The measured accuracies are what the reader sees; the prediction only chooses
//! what to measure.

use crate::data::Digits;
use crate::error::{Error, Result};
use crate::eval::{argmax, Evaluation, CHUNK};
use crate::formats::Format;
use crate::infer::Inference;
use crate::model::{Layer, MnistNet, CLASSES};
use crate::quant::Bits;
use crate::recipe::{LayerRecipe, Recipe};
use crate::report::model_size_bytes;
use serde::{Deserialize, Serialize};

/// Class scores `[n][10]` of `net` on every digit, row-major.
pub fn scores(net: &MnistNet, digits: &Digits) -> Vec<f32> {
    let mut inference = Inference::new(net);
    let mut out = Vec::with_capacity(digits.len() * CLASSES);
    for start in (0..digits.len()).step_by(CHUNK) {
        let images = digits.images_f32_rows(start..(start + CHUNK).min(digits.len()));
        let images = images.as_standard_layout();
        out.extend_from_slice(inference.logits(images.as_slice().expect("standard layout")));
    }
    out
}

/// Class probabilities from scores, `softmax(z)_i = exp(z_i − max z) / Σ_j exp(z_j − max z)`.
pub fn softmax(scores: &[f32]) -> [f32; CLASSES] {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p = [0.0f32; CLASSES];
    let mut sum = 0.0f64;
    for (p, &z) in p.iter_mut().zip(scores) {
        *p = (z - max).exp();
        sum += f64::from(*p);
    }
    p.iter_mut().for_each(|p| *p = (f64::from(*p) / sum) as f32);
    p
}

/// A test digit whose predicted class under the quantized network differs from FP32's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flip {
    /// Its index among the test digits.
    pub index: usize,
    pub label: u8,
    pub fp32: u8,
    pub quantized: u8,
    /// Each network's probability of its own prediction.
    pub fp32_confidence: f32,
    pub quantized_confidence: f32,
}

impl Flip {
    /// Whether quantizing broke a right answer (true), mended a wrong one (false, the other
    /// way), or moved one wrong answer to another (None).
    pub fn broke(&self) -> Option<bool> {
        match (self.fp32 == self.label, self.quantized == self.label) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    }
}

/// The digits whose prediction differs between `fp32` and `quantized` scores (`[n][10]` each,
/// the same digits), in test order.
pub fn flips(fp32: &[f32], quantized: &[f32], labels: &[u8]) -> Vec<Flip> {
    fp32.chunks_exact(CLASSES)
        .zip(quantized.chunks_exact(CLASSES))
        .zip(labels)
        .enumerate()
        .filter_map(|(index, ((a, b), &label))| {
            let (pa, pb) = (argmax(a), argmax(b));
            (pa != pb).then(|| Flip {
                index,
                label,
                fp32: pa as u8,
                quantized: pb as u8,
                fp32_confidence: softmax(a)[pa],
                quantized_confidence: softmax(b)[pb],
            })
        })
        .collect()
}

/// `confusion[true class][predicted class]`: how many digits of each label got each prediction.
pub fn confusion(scores: &[f32], labels: &[u8]) -> [[u32; CLASSES]; CLASSES] {
    let mut m = [[0u32; CLASSES]; CLASSES];
    for (row, &label) in scores.chunks_exact(CLASSES).zip(labels) {
        m[label as usize % CLASSES][argmax(row)] += 1;
    }
    m
}

/// One option for a layer in a per-layer recipe: its integer width under the base recipe's other
/// knobs, or a format of its own (FP32 keeps it unquantized).
pub fn layer_choice(base: LayerRecipe, choice: &str) -> Result<LayerRecipe> {
    let choice = choice.trim();
    match choice.parse::<u32>() {
        Ok(n) => Ok(LayerRecipe {
            bits: Bits::new(n)?,
            format: Format::Int,
            ..base
        }),
        Err(_) => Ok(LayerRecipe {
            format: choice.parse()?,
            ..base
        }),
    }
}

/// `recipe` with the per-layer choices of `conv1=8,conv2=4,fc1=2,fc2=fp32` (the CLI's
/// `--layer-bits`): a number is that integer width with the recipe's other knobs, a name is a
/// format (`fp32`, `nf4`, `q4_0`, …). Layers not named keep theirs.
pub fn with_layer_bits(mut recipe: Recipe, text: &str) -> Result<Recipe> {
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (layer, choice) = part
            .split_once('=')
            .ok_or_else(|| Error::Recipe(format!("{part:?} is not layer=bits (conv1=8)")))?;
        let layer: Layer = layer.trim().parse().map_err(Error::Recipe)?;
        let r = layer_choice(recipe.default, choice)?;
        recipe.apply(&format!("{}.dtype", layer.name()), &r.format.to_string())?;
        if r.is_int() {
            recipe.apply(&format!("{}.bits", layer.name()), &r.bits.to_string())?;
        }
    }
    Ok(recipe)
}

/// The recipe that quantizes `layer` alone, at `bits` with `base`'s other integer knobs, and
/// keeps the other layers in FP32: one cell of the sensitivity table.
pub fn alone(base: LayerRecipe, layer: Layer, bits: Bits) -> Recipe {
    let mut r = Recipe::uniform(LayerRecipe {
        format: Format::Fp32,
        ..base
    });
    r.overrides[layer as usize] = Some(LayerRecipe {
        bits,
        format: Format::Int,
        ..base
    });
    r
}

/// Every cell of the sensitivity table, layer by layer, from 2 bits up: [`alone`] for each
/// layer and width.
pub fn sensitivity_recipes(base: LayerRecipe) -> Vec<(Layer, Bits, Recipe)> {
    Layer::ALL
        .into_iter()
        .flat_map(|l| {
            Bits::ALL
                .into_iter()
                .map(move |b| (l, b, alone(base, l, b)))
        })
        .collect()
}

/// The integer recipe with `bits[l]` for layer `l` and `base`'s other knobs.
pub fn assignment(base: LayerRecipe, bits: [Bits; 4]) -> Recipe {
    let int = LayerRecipe {
        format: Format::Int,
        ..base
    };
    let mut r = Recipe::uniform(int);
    for l in Layer::ALL {
        r.overrides[l as usize] = Some(LayerRecipe {
            bits: bits[l as usize],
            ..int
        });
    }
    // An override equal to the default is no override: through the text form, one recipe.
    r.to_string().parse().expect("a recipe's own text form")
}

/// An assignment of widths the search considered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Width of conv1, conv2, fc1, fc2.
    pub bits: [Bits; 4],
    pub recipe: Recipe,
    pub size_bytes: usize,
    /// The loss predicted from the sensitivity table.
    pub predicted_loss: f64,
}

/// The assignments on the predicted front: every assignment of `widths` to the four layers
/// (8⁴ = 4,096 for all eight) ranked by size and predicted loss (`fp32_loss + Σ_l (loss of l
/// alone at its width − fp32_loss)`), keeping those no other assignment beats on both (as small
/// or smaller, as low a loss or lower, one strictly). `loss_alone[l][i]` is the loss with layer
/// `l` alone at `widths[i]`.
pub fn predicted_front(
    base: LayerRecipe,
    widths: &[Bits],
    fp32_loss: f64,
    loss_alone: &[Vec<f64>; 4],
    depth: usize,
) -> Vec<Candidate> {
    let n = widths.len();
    let mut all = Vec::with_capacity(n.pow(4));
    for code in 0..n.pow(4) {
        let idx = [
            code / (n * n * n),
            code / (n * n) % n,
            code / n % n,
            code % n,
        ];
        let bits = idx.map(|i| widths[i]);
        let recipe = assignment(base, bits);
        let predicted_loss = fp32_loss
            + (0..4)
                .map(|l| loss_alone[l][idx[l]] - fp32_loss)
                .sum::<f64>();
        all.push(Candidate {
            bits,
            recipe,
            size_bytes: model_size_bytes(Some(&recipe)),
            predicted_loss,
        });
    }
    // The predicted front and the next `depth − 1` fronts under it (each the front of what is
    // left): the prediction ignores how layers' errors interact, so the true best at a size is
    // often on the second front, rarely lower.
    let key = |c: &Candidate| (c.size_bytes as f64, -c.predicted_loss);
    let mut out = Vec::new();
    for _ in 0..depth {
        let front = front_by(&all, key);
        all.retain(|c| !front.iter().any(|f| f.bits == c.bits));
        out.extend(front);
    }
    out.sort_by_key(|c| c.size_bytes);
    out
}

/// How many predicted fronts the search measures.
pub const FRONTS: usize = 2;

/// One cell of the sensitivity table: `layer` alone at `bits`, the others FP32.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sensitivity {
    pub layer: Layer,
    pub bits: Bits,
    pub recipe: Recipe,
    pub evaluation: Evaluation,
    /// The layer's weight error at that width.
    pub error: crate::stats::ErrorStats,
}

/// The sensitivity table, measured on `digits` (one row per layer and width of `widths`).
pub fn sensitivity(
    net: &MnistNet,
    digits: &Digits,
    base: LayerRecipe,
    widths: &[Bits],
) -> Result<Vec<Sensitivity>> {
    let images = digits.images_f32();
    let mut out = Vec::new();
    for layer in Layer::ALL {
        for &bits in widths {
            let recipe = alone(base, layer, bits);
            let q = net.fake_quantized(&recipe)?;
            let evaluation = crate::eval::evaluate(&q, images.view(), &digits.labels)?;
            let lq = crate::quantizer::LayerQuant::new(net, layer, recipe.layer(layer))?;
            let row = crate::report::row_of(&lq)?;
            out.push(Sensitivity {
                layer,
                bits,
                recipe,
                evaluation,
                error: row.error,
            });
        }
    }
    Ok(out)
}

/// What the allocation found: the sensitivity table it started from, the predicted front, and
/// each of those measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Allocation {
    pub fp32: Evaluation,
    pub sensitivity: Vec<Sensitivity>,
    pub measured: Vec<Measured>,
}

/// The loss of each layer alone at each width, from the sensitivity table, as
/// [`predicted_front`] takes it.
pub fn losses_alone(sensitivity: &[Sensitivity], widths: &[Bits]) -> Result<[Vec<f64>; 4]> {
    let mut out: [Vec<f64>; 4] = Default::default();
    for l in Layer::ALL {
        for &b in widths {
            let cell = sensitivity
                .iter()
                .find(|s| s.layer == l && s.bits == b)
                .ok_or_else(|| {
                    Error::Recipe(format!("no sensitivity for {} at {b} bits", l.name()))
                })?;
            out[l as usize].push(cell.evaluation.loss);
        }
    }
    Ok(out)
}

/// The allocation search, natively: sensitivity, the predicted front, and the front measured.
pub fn allocate(
    net: &MnistNet,
    digits: &Digits,
    base: LayerRecipe,
    widths: &[Bits],
) -> Result<Allocation> {
    let images = digits.images_f32();
    let fp32 = crate::eval::evaluate(net, images.view(), &digits.labels)?;
    let sensitivity = sensitivity(net, digits, base, widths)?;
    let front = predicted_front(
        base,
        widths,
        fp32.loss,
        &losses_alone(&sensitivity, widths)?,
        FRONTS,
    );
    let measured = front
        .into_iter()
        .map(|candidate| {
            let q = net.fake_quantized(&candidate.recipe)?;
            let evaluation = crate::eval::evaluate(&q, images.view(), &digits.labels)?;
            Ok(Measured {
                candidate,
                evaluation,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Allocation {
        fp32,
        sensitivity,
        measured,
    })
}

/// The items no other item beats: `key` gives (cost, value); an item is beaten by one with a
/// cost as low or lower and a value as high or higher, one of them strictly. Sorted by cost.
/// O(n log n): sorted by cost (then best value first), an item is on the front when its value
/// beats every cheaper item's.
pub fn front_by<T: Clone>(items: &[T], key: impl Fn(&T) -> (f64, f64)) -> Vec<T> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(kb.1.total_cmp(&ka.1))
    });
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for item in sorted {
        let (_, value) = key(item);
        if value > best {
            best = value;
            out.push(item.clone());
        }
    }
    out
}

/// A measured candidate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub candidate: Candidate,
    pub evaluation: Evaluation,
}

/// The measured front, and the most accurate recipe that fits in `budget_bytes` (the smallest
/// of equals), if any does.
pub fn best_under(measured: &[Measured], budget_bytes: usize) -> Option<Measured> {
    front_by(measured, |m| {
        (m.candidate.size_bytes as f64, m.evaluation.accuracy)
    })
    .into_iter()
    .rfind(|m| m.candidate.size_bytes <= budget_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Scheme;

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let p = softmax(&[1.0, 3.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&p), 9);
        let p = softmax(&[0.0; 10]);
        assert!(p.iter().all(|&x| (x - 0.1).abs() < 1e-7));
    }

    #[test]
    fn flips_and_confusion_on_hand_made_scores() {
        let one_hot = |c: usize| {
            let mut z = [0.0f32; 10];
            z[c] = 5.0;
            z
        };
        let fp32: Vec<f32> = [1, 2, 3, 4].iter().flat_map(|&c| one_hot(c)).collect();
        let quant: Vec<f32> = [1, 7, 3, 9].iter().flat_map(|&c| one_hot(c)).collect();
        let labels = [1, 2, 3, 9];
        let f = flips(&fp32, &quant, &labels);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].index, f[0].fp32, f[0].quantized), (1, 2, 7));
        assert_eq!(f[0].broke(), Some(true));
        assert_eq!(f[1].broke(), Some(false));
        let m = confusion(&quant, &labels);
        assert_eq!((m[2][7], m[9][9], m[1][1]), (1, 1, 1));
        assert_eq!(m.iter().flatten().sum::<u32>(), 4);
    }

    #[test]
    fn layer_bits_parse_into_overrides() {
        let base = Recipe::per_tensor(Bits::new(8).unwrap(), Scheme::Asymmetric);
        let r = with_layer_bits(base, "conv1=8,conv2=4,fc1=2,fc2=fp32").unwrap();
        assert_eq!(r.layer(Layer::Conv2).bits.get(), 4);
        assert_eq!(r.layer(Layer::Fc1).bits.get(), 2);
        assert_eq!(r.layer(Layer::Fc1).scheme, Scheme::Asymmetric);
        assert_eq!(r.layer(Layer::Fc2).format, Format::Fp32);
        assert_eq!(r.overrides[Layer::Conv1 as usize], None);
        assert_eq!(
            r.to_string(),
            "bits=8&scheme=asym&conv2.bits=4&fc1.bits=2&fc2.dtype=fp32"
        );
        assert!(with_layer_bits(base, "conv3=4").is_err());
        assert!(with_layer_bits(base, "fc1=1").is_err());
        assert!(with_layer_bits(base, "fc1").is_err());
    }

    #[test]
    fn the_front_matches_brute_force() {
        // Random (cost, value) pairs: the O(n log n) front equals the definition checked pair
        // by pair.
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..50 {
            let items: Vec<(f64, f64)> = (0..60)
                .map(|_| ((rng.below(12)) as f64, (rng.below(9)) as f64))
                .collect();
            let fast: Vec<(f64, f64)> = front_by(&items, |&x| x);
            let mut slow: Vec<(f64, f64)> = items
                .iter()
                .filter(|&&(c, v)| {
                    !items
                        .iter()
                        .any(|&(c2, v2)| c2 <= c && v2 >= v && (c2 < c || v2 > v))
                })
                .copied()
                .collect();
            slow.sort_by(|a, b| a.0.total_cmp(&b.0));
            slow.dedup();
            assert_eq!(fast, slow);
        }
    }
}
