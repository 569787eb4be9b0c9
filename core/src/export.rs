//! "Take it home": the network quantized under a recipe, as one safetensors file that PyTorch
//! loads unchanged, and the Python that checks it ([`SNIPPET`]).
//!
//! The file's tensors, all in PyTorch's layout and names:
//!
//! | name | dtype, shape | what |
//! |---|---|---|
//! | `{layer}.weight` | F32, the layer's | `ŵ = s·(q − z)`: the weight the app evaluates |
//! | `{layer}.bias` | F32 | unchanged (FP32, as the essay and PyTorch's quantized modules keep it) |
//! | `{layer}.weight_int` | I8 (≤ 8 bits) or I16 | the integer codes `q = clamp(z + round(w/s), qmin, qmax)` |
//! | `{layer}.weight_scale` | F32 `[rows, blocks]` | `s` of each block |
//! | `{layer}.weight_zero_point` | I32 `[rows, blocks]` | `z` of each block |
//! | `test.images`, `test.labels` | U8 `[n, 28, 28]`, `[n]` | the digits the app measures on |
//!
//! A block is a run of `{layer}.block` consecutive weights of a row (metadata): per tensor the
//! whole tensor is one row and one block, per channel each output row is one block, per group a
//! row has ⌈row/g⌉ blocks (the last may be shorter). Layers under a format of its own (FP8, NF4,
//! GGUF, MX…) or kept in FP32 have no codes: their `.weight` is the format's `ŵ` and the
//! metadata names the format. So `load_state_dict` of the `.weight`s and `.bias`es is the
//! dequantized network, and the codes rebuild it bit for bit: `(q − z)·s` in f32 is `ŵ`.

use crate::data::{Digits, SIDE};
use crate::error::Result;
use crate::eval::{evaluate, Evaluation};
use crate::model::{Layer, MnistNet};
use crate::quantizer::LayerQuant;
use crate::recipe::{Granularity, Recipe};
use crate::tensor_file::write_safetensors;
use crate::weights::{set_torch_weight, torch_weight};

/// The Python that loads an exported file, rebuilds the dequantized network from the codes,
/// checks it against the file's `.weight`s and prints its accuracy on the file's digits.
pub const SNIPPET: &str = include_str!("load_quantized.py");

/// An exported file and what the network in it scores on the digits it carries.
pub struct Export {
    pub bytes: Vec<u8>,
    pub evaluation: Evaluation,
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

/// `net` quantized under `recipe`, with its codes, scales and zero points, and the digits
/// `test` (evaluated here, so the file states the accuracy its own digits give).
pub fn quantized_model(net: &MnistNet, recipe: &Recipe, test: &Digits) -> Result<Export> {
    let mut tensors: Vec<(String, &str, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut metadata = vec![("recipe".to_string(), recipe.to_string())];
    let mut quantized = net.clone();
    for layer in Layer::ALL {
        let name = layer.name();
        let lr = recipe.layer(layer);
        let lq = LayerQuant::from_torch(layer, torch_weight(net, layer).into(), lr)?;
        let fake = lq.fake_quantized();
        set_torch_weight(&mut quantized, layer, &fake);
        let shape = layer.weight_shape().to_vec();
        tensors.push((
            format!("{name}.weight"),
            "F32",
            shape.clone(),
            le_bytes(&fake, f32::to_le_bytes),
        ));
        let bias = net.tensors()[2 * layer as usize + 1];
        tensors.push((
            format!("{name}.bias"),
            "F32",
            vec![layer.bias_len()],
            le_bytes(bias, f32::to_le_bytes),
        ));
        metadata.push((format!("{name}.format"), lr.format.key().to_string()));
        if !lr.is_int() {
            continue;
        }
        let q = &lq.quant;
        let codes: Vec<i32> = (0..q.blocks.len())
            .flat_map(|b| q.block_codes(&lq.weight, b))
            .collect();
        let (dtype, code_bytes) = if lr.bits.get() <= 8 {
            ("I8", codes.iter().map(|&c| c as i8 as u8).collect())
        } else {
            ("I16", le_bytes(&codes, |c| (c as i16).to_le_bytes()))
        };
        tensors.push((format!("{name}.weight_int"), dtype, shape, code_bytes));
        let n = lq.weight.len();
        let (rows, block) = match lr.granularity {
            Granularity::PerTensor => (1, n),
            Granularity::PerChannel => (layer.weight_shape()[0], n / layer.weight_shape()[0]),
            Granularity::PerGroup(g) => (layer.weight_shape()[0], usize::from(g)),
        };
        let blocks_shape = vec![rows, q.blocks.len() / rows];
        let scales: Vec<f32> = q.blocks.iter().map(|b| b.qparams.scale).collect();
        let zero_points: Vec<i32> = q.blocks.iter().map(|b| b.qparams.zero_point).collect();
        tensors.push((
            format!("{name}.weight_scale"),
            "F32",
            blocks_shape.clone(),
            le_bytes(&scales, f32::to_le_bytes),
        ));
        tensors.push((
            format!("{name}.weight_zero_point"),
            "I32",
            blocks_shape,
            le_bytes(&zero_points, i32::to_le_bytes),
        ));
        metadata.push((format!("{name}.block"), block.to_string()));
        let (qmin, qmax) = (lr.bits.qmin(), lr.bits.qmax());
        metadata.push((format!("{name}.qmin"), qmin.to_string()));
        metadata.push((format!("{name}.qmax"), qmax.to_string()));
    }
    let evaluation = evaluate(&quantized, test.images_f32().view(), &test.labels)?;
    metadata.push(("test.correct".into(), evaluation.correct.to_string()));
    metadata.push(("test.count".into(), evaluation.count.to_string()));
    tensors.push((
        "test.images".into(),
        "U8",
        vec![test.len(), SIDE, SIDE],
        test.images.iter().copied().collect(),
    ));
    tensors.push((
        "test.labels".into(),
        "U8",
        vec![test.len()],
        test.labels.clone(),
    ));
    Ok(Export {
        bytes: write_safetensors(&tensors, &metadata),
        evaluation,
    })
}

/// The file name a download of `recipe` gets: `mnistnet-bits-4-scheme-asym.safetensors`.
pub fn file_name(recipe: &Recipe) -> String {
    let text: String = recipe
        .to_string()
        .chars()
        .map(|c| match c {
            '&' | '=' | '.' | ':' => '-',
            c => c,
        })
        .collect();
    format!("mnistnet-{text}.safetensors")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_file::{list, read, Dtype};

    fn digits(n: usize) -> Digits {
        let images = ndarray::Array2::from_shape_fn((n, 784), |(i, j)| ((i * 7 + j) % 256) as u8);
        Digits {
            images,
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn codes_scales_and_zero_points_rebuild_each_weight_bit_for_bit() {
        let net = MnistNet::init(5);
        for text in [
            "bits=4&scheme=asym",
            "bits=3&granularity=channel",
            "bits=8&granularity=group:8&scheme=asym",
            "bits=16",
        ] {
            let recipe: Recipe = text.parse().unwrap();
            let out = quantized_model(&net, &recipe, &digits(20)).unwrap();
            let entries = list(&out.bytes, out.bytes.len() as u64).unwrap();
            let get = |name: &str| entries.iter().find(|e| e.name == name).unwrap();
            let raw = |name: &str| {
                let e = get(name);
                &out.bytes[e.start as usize..e.end as usize]
            };
            let meta = crate::weights::metadata(&out.bytes).unwrap();
            for layer in Layer::ALL {
                let name = layer.name();
                let w = read(
                    get(&format!("{name}.weight")),
                    raw(&format!("{name}.weight")),
                )
                .unwrap();
                let e = get(&format!("{name}.weight_int"));
                let codes: Vec<i32> = match e.dtype {
                    Dtype::Other("I8") => {
                        raw(&e.name).iter().map(|&b| i32::from(b as i8)).collect()
                    }
                    Dtype::Other("I16") => raw(&e.name)
                        .chunks_exact(2)
                        .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])))
                        .collect(),
                    other => panic!("{text}: codes as {other:?}"),
                };
                let scale = read(
                    get(&format!("{name}.weight_scale")),
                    raw(&format!("{name}.weight_scale")),
                )
                .unwrap();
                let zero_point: Vec<i32> = raw(&format!("{name}.weight_zero_point"))
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let block: usize = meta[&format!("{name}.block")].parse().unwrap();
                let blocks_per_row = get(&format!("{name}.weight_scale")).shape[1] as usize;
                let row = w.len() / get(&format!("{name}.weight_scale")).shape[0] as usize;
                for (i, (&q, &wq)) in codes.iter().zip(&w).enumerate() {
                    let b = (i / row) * blocks_per_row + (i % row) / block;
                    let rebuilt = scale[b] * (q - zero_point[b]) as f32;
                    assert_eq!(rebuilt.to_bits(), wq.to_bits(), "{text} {name}[{i}]");
                }
                let (qmin, qmax) = (
                    recipe.layer(layer).bits.qmin(),
                    recipe.layer(layer).bits.qmax(),
                );
                assert!(
                    codes.iter().all(|&q| (qmin..=qmax).contains(&q)),
                    "{text} {name}"
                );
            }
            // The evaluation is the fake-quantized network's, and the file states it.
            let expected = evaluate(
                &net.fake_quantized(&recipe).unwrap(),
                digits(20).images_f32().view(),
                &digits(20).labels,
            )
            .unwrap();
            assert_eq!(out.evaluation.correct, expected.correct);
            assert_eq!(meta["test.correct"], expected.correct.to_string());
            assert_eq!(
                crate::weights::from_safetensors(&out.bytes).unwrap(),
                net.fake_quantized(&recipe).unwrap()
            );
        }
    }

    #[test]
    fn a_format_layer_has_no_codes_and_names_its_format() {
        let net = MnistNet::init(5);
        let recipe: Recipe = "dtype=nf4&fc2.dtype=fp32".parse().unwrap();
        let out = quantized_model(&net, &recipe, &digits(10)).unwrap();
        let entries = list(&out.bytes, out.bytes.len() as u64).unwrap();
        assert!(!entries.iter().any(|e| e.name.ends_with(".weight_int")));
        let meta = crate::weights::metadata(&out.bytes).unwrap();
        assert_eq!(meta["fc1.format"], "nf4");
        assert_eq!(meta["fc2.format"], "fp32");
        assert_eq!(
            crate::weights::from_safetensors(&out.bytes).unwrap(),
            net.fake_quantized(&recipe).unwrap()
        );
    }

    #[test]
    fn file_names_carry_the_recipe() {
        let recipe: Recipe = "bits=4&scheme=asym&fc1.bits=2".parse().unwrap();
        assert_eq!(
            file_name(&recipe),
            "mnistnet-bits-4-scheme-asym-fc1-bits-2.safetensors"
        );
    }
}
