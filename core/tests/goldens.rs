//! The bundled network against PyTorch: goldens written by `scripts/goldens.py` (PyTorch 2.15,
//! torch.ao's observers and fake-quant kernels, torch.nn's forward pass), read here without
//! PyTorch. Scale and zero_point bit for bit for every block of every recipe, mean absolute error
//! to 1e-7 relative, every digit's predicted class, loss to 1e-5.

use quant_core::eval::evaluate_each;
use quant_core::model::Layer;
use quant_core::quantizer::LayerQuant;
use quant_core::recipe::Recipe;
use safetensors::SafeTensors;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;
use common::*;

/// The goldens are for the weights we ship, not for an older copy.
fn check_weights(goldens: &Value) {
    let sha = format!("{:x}", Sha256::digest(file("static/mnistnet.safetensors")));
    assert_eq!(
        goldens["weights_sha256"], sha,
        "static/mnistnet.safetensors changed: rerun scripts/goldens.py"
    );
}

fn layer(name: &str) -> Layer {
    name.parse().unwrap()
}

#[test]
fn every_block_s_scale_and_zero_point_and_every_layer_s_error_match_pytorch() {
    let goldens = json("core/tests/goldens/recipes.json");
    check_weights(&goldens);
    let qparams = file("core/tests/goldens/qparams.safetensors");
    let qparams = SafeTensors::deserialize(&qparams).unwrap();
    let net = bundled();
    let recipes = goldens["recipes"].as_array().unwrap();
    assert!(recipes.len() >= 60, "every knob covered");
    for (i, entry) in recipes.iter().enumerate() {
        let text = entry["recipe"].as_str().unwrap();
        let recipe: Recipe = text.parse().unwrap();
        for (name, expected) in entry["layers"].as_object().unwrap() {
            let l = layer(name);
            let lq = LayerQuant::new(&net, l, recipe.layer(l)).unwrap();
            let scales = qparams.tensor(&format!("{i}/{name}/scale")).unwrap();
            let zps = qparams.tensor(&format!("{i}/{name}/zero_point")).unwrap();
            let scales: Vec<f32> = scales
                .data()
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            let zps: Vec<i32> = zps
                .data()
                .chunks(4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            assert_eq!(lq.quant.blocks.len(), scales.len(), "{text} {name}: blocks");
            assert_eq!(expected["blocks"], scales.len());
            for (b, block) in lq.quant.blocks.iter().enumerate() {
                assert_eq!(
                    block.qparams.scale.to_bits(),
                    scales[b].to_bits(),
                    "{text} {name} block {b}: scale {} vs PyTorch {}",
                    block.qparams.scale,
                    scales[b]
                );
                assert_eq!(block.qparams.zero_point, zps[b], "{text} {name} block {b}");
            }
            let mae = lq.error_stats().mean_abs_error;
            let want = expected["mae"].as_f64().unwrap();
            assert!(
                (mae - want).abs() <= 1e-7 * want,
                "{text} {name}: MAE {mae} vs PyTorch {want}"
            );
        }
    }
}

#[test]
fn stochastic_rounding_has_the_expected_error_of_its_definition_and_no_bias() {
    // Stochastic rounding cannot match a PyTorch run coin for coin (its coins are ours); the
    // goldens give its expected mean |w − ŵ| and mean (w − ŵ) under the definition (0 inside
    // the grid; the clamp at its ends biases it), each with the standard error of a mean over
    // this many weights. Ours must fall within four standard errors of both.
    let goldens = json("core/tests/goldens/recipes.json");
    let net = bundled();
    for entry in goldens["stochastic"].as_array().unwrap() {
        let text = entry["recipe"].as_str().unwrap();
        let recipe: Recipe = text.parse().unwrap();
        for (name, expected) in entry["layers"].as_object().unwrap() {
            let l = layer(name);
            let stats = LayerQuant::new(&net, l, recipe.layer(l))
                .unwrap()
                .error_stats();
            let want = expected["expected_mae"].as_f64().unwrap();
            let se = expected["standard_error"].as_f64().unwrap();
            assert!(
                (stats.mean_abs_error - want).abs() <= 4.0 * se,
                "{text} {name}: MAE {} vs expected {want} ± {se}",
                stats.mean_abs_error
            );
            let want = expected["expected_mean_error"].as_f64().unwrap();
            let se = expected["mean_error_standard_error"].as_f64().unwrap();
            assert!(
                (stats.mean_error - want).abs() <= 4.0 * se,
                "{text} {name}: mean signed error {} vs expected {want} ± {se}",
                stats.mean_error
            );
        }
    }
}

#[test]
fn every_digit_s_prediction_and_the_loss_match_pytorch_at_every_bits_scheme_and_granularity() {
    // The fast forward pass (Winograd, the SIMD kernel's scalar twin) against torch.nn's, on the
    // bundled network fake-quantized as torch.fake_quantize_per_{tensor,channel}_affine does.
    let goldens = json("core/tests/goldens/accuracy.json");
    check_weights(&goldens);
    let net = bundled();
    let test = test_digits();
    let images = test.images_f32();
    let settings = goldens["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 1 + 8 * 2 * 2);
    for s in settings {
        let text = s["recipe"].as_str().unwrap();
        let quantized = match text {
            "fp32" => net.clone(),
            _ => net.fake_quantized(&text.parse().unwrap()).unwrap(),
        };
        let (eval, predicted) = evaluate_each(&quantized, images.view(), &test.labels).unwrap();
        let ours: String = predicted.iter().map(|p| char::from(b'0' + p)).collect();
        let theirs = s["predictions"].as_str().unwrap();
        let differ: Vec<usize> = (0..ours.len())
            .filter(|&i| ours.as_bytes()[i] != theirs.as_bytes()[i])
            .collect();
        assert!(
            differ.is_empty(),
            "{text}: digits {differ:?} predicted differently"
        );
        assert_eq!(
            eval.correct,
            s["correct"].as_u64().unwrap() as usize,
            "{text}"
        );
        let loss = s["loss"].as_f64().unwrap();
        assert!(
            (eval.loss - loss).abs() <= 1e-5,
            "{text}: loss {} vs PyTorch {loss}",
            eval.loss
        );
    }
}
