//! The number formats against their reference implementations: goldens written by
//! scripts/format_goldens.py from PyTorch 2.15 (FP16, BF16, FP8), torchao (the MX element casts,
//! MXFP8/6/4, NVFP4, INT4 group-wise), bitsandbytes (NF4) and ggml's formats in the `gguf`
//! package (Q4_0, Q4_1, Q5_0, Q8_0). Every comparison is of f32 bit patterns: equal to the bit, NaN to NaN.

mod common;
use common::*;
use quant_core::formats::{self, Format};
use quant_core::model::Layer;
use quant_core::weights::torch_weight;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn element_formats_round_as_pytorch_and_torchao() {
    let g = json("core/tests/goldens/formats.json");
    type Cast = fn(f32) -> f32;
    let casts: [(&str, Cast); 7] = [
        ("fp16", formats::fp16_round),
        ("bf16", formats::bf16_round),
        ("fp8_e4m3", formats::e4m3_round),
        ("fp8_e5m2", formats::e5m2_round),
        ("fp6_e2m3", formats::fp6_e2m3_round),
        ("fp6_e3m2", formats::fp6_e3m2_round),
        ("fp4_e2m1", formats::fp4_e2m1_round),
    ];
    for (name, cast) in casts {
        let case = &g["elements"][name];
        let (xs, want) = (u32s(&case["in"]), u32s(&case["out"]));
        assert!(xs.len() > 1000, "{name}: {} inputs", xs.len());
        let mut wrong = Vec::new();
        for (&x, &w) in xs.iter().zip(&want) {
            let (x, w) = (f32::from_bits(x), f32::from_bits(w));
            if !same(cast(x), w) {
                wrong.push((x, cast(x), w));
            }
        }
        assert!(
            wrong.is_empty(),
            "{name}: {} of {} differ, e.g. (input, ours, reference) {:?}",
            wrong.len(),
            xs.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
}

fn block_formats() -> impl Iterator<Item = Format> {
    Format::ALL.into_iter().filter(|f| *f != Format::Int)
}

#[test]
fn block_formats_equal_their_references_on_a_tensor_of_corner_cases() {
    let g = json("core/tests/goldens/formats.json");
    let x: Vec<f32> = u32s(&g["blocks"]["in"])
        .into_iter()
        .map(f32::from_bits)
        .collect();
    let shape: Vec<usize> = g["blocks"]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    for f in block_formats() {
        let want = u32s(&g["blocks"]["out"][f.key()]);
        let ours = f.fake_quantize(&x, &shape).unwrap();
        let wrong: Vec<_> = (0..x.len())
            .filter(|&i| !same(ours[i], f32::from_bits(want[i])))
            .map(|i| (i, x[i], ours[i], f32::from_bits(want[i])))
            .collect();
        assert!(
            wrong.is_empty(),
            "{f}: {} of {} differ, e.g. (index, input, ours, reference) {:?}",
            wrong.len(),
            x.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
}

#[test]
fn every_format_on_every_layer_equals_its_reference_to_the_bit() {
    let g = json("core/tests/goldens/formats.json");
    let raw = file("static/mnistnet.safetensors");
    assert_eq!(
        g["weights_sha256"].as_str().unwrap(),
        format!("{:x}", Sha256::digest(&raw)),
        "the weights changed: rerun scripts/format_goldens.py"
    );
    let net = bundled();
    for f in block_formats() {
        for layer in Layer::ALL {
            let w = torch_weight(&net, layer);
            let ours = f.fake_quantize(&w, layer.weight_shape()).unwrap();
            let bytes: Vec<u8> = ours.iter().flat_map(|x| x.to_le_bytes()).collect();
            let want = &g["layers"][f.key()][format!("{}.weight", layer.name())];
            assert_eq!(
                format!("{:x}", Sha256::digest(&bytes)),
                want["sha256"].as_str().unwrap(),
                "{f} on {}",
                layer.name()
            );
            let mae = ours
                .iter()
                .zip(&w)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .sum::<f64>()
                / w.len() as f64;
            let gm = want["mae"].as_f64().unwrap();
            assert!(
                (mae - gm).abs() <= 1e-9 * gm.max(1e-12),
                "{f}: {mae} vs {gm}"
            );
        }
    }
}
