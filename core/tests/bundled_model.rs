//! The committed weights and test split: accuracy, quantized accuracy, and per-layer error
//! against an independent re-implementation of the essay's formulas.

use quant_core::data::Digits;
use quant_core::eval::evaluate;
use quant_core::model::{Layer, MnistNet};
use quant_core::quant::{Bits, Scheme};
use quant_core::report::layer_rows;
use quant_core::weights::from_safetensors;

fn bundled() -> (MnistNet, Digits) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../static/");
    let read = |f: &str| std::fs::read(format!("{root}{f}")).expect("committed file");
    let net = from_safetensors(&read("mnistnet.safetensors")).unwrap();
    let test = Digits::from_idx(
        &read("mnist-test-images.idx3-ubyte"),
        &read("mnist-test-labels.idx1-ubyte"),
    )
    .unwrap();
    (net, test)
}

#[test]
fn committed_split_is_2000_stratified_digits() {
    let (_, test) = bundled();
    assert_eq!(test.len(), 2000);
    for digit in 0..10u8 {
        let n = test.labels.iter().filter(|&&l| l == digit).count();
        assert!((170..=230).contains(&n), "digit {digit}: {n}");
    }
}

#[test]
fn fp32_accuracy_is_at_least_98_and_8_bit_symmetric_within_0_2_points() {
    let (net, test) = bundled();
    let images = test.images_f32();
    let fp32 = evaluate(&net, images.view(), &test.labels);
    assert!(fp32.accuracy >= 98.0, "FP32 accuracy {}", fp32.accuracy);
    let q8 = net
        .fake_quantized(Bits::new(8).unwrap(), Scheme::Symmetric)
        .unwrap();
    let quant = evaluate(&q8, images.view(), &test.labels);
    assert!(
        (quant.accuracy - fp32.accuracy).abs() <= 0.2,
        "8-bit symmetric {} vs FP32 {}",
        quant.accuracy,
        fp32.accuracy
    );
}

/// The essay's formulas written out again, independently of `quant_core::quant`, in f32 as
/// PyTorch computes them, with the mean taken in f64.
fn independent_mae(w: &[f32], bits: u32, symmetric: bool) -> f64 {
    let qmin = -(2f32.powi(bits as i32 - 1));
    let qmax = 2f32.powi(bits as i32 - 1) - 1.0;
    let lo = w.iter().fold(0f32, |a, &b| a.min(b));
    let hi = w.iter().fold(0f32, |a, &b| a.max(b));
    let (scale, zp) = if symmetric {
        (
            (lo.abs().max(hi) / ((qmax - qmin) / 2.0)).max(f32::EPSILON),
            0f32,
        )
    } else {
        let s = ((hi - lo) / (qmax - qmin)).max(f32::EPSILON);
        (s, (qmin - (lo / s).round_ties_even()).clamp(qmin, qmax))
    };
    let inv = 1.0f32 / scale;
    let total: f64 = w
        .iter()
        .map(|&x| {
            let q = (zp + (x * inv).round_ties_even()).clamp(qmin, qmax);
            (f64::from(x) - f64::from(scale * (q - zp))).abs()
        })
        .sum();
    total / w.len() as f64
}

#[test]
fn per_layer_mean_abs_error_matches_an_independent_implementation() {
    let (net, _) = bundled();
    for scheme in Scheme::ALL {
        for bits in Bits::ALL {
            let rows = layer_rows(&net, bits, scheme).unwrap();
            for (row, layer) in rows.iter().zip(Layer::ALL) {
                let expected =
                    independent_mae(net.weight(layer), bits.get(), scheme == Scheme::Symmetric);
                let rel = (row.error.mean_abs_error - expected).abs() / expected;
                assert!(
                    rel <= 1e-7,
                    "{layer:?} {bits} {scheme}: {} vs {expected}",
                    row.error.mean_abs_error
                );
            }
        }
    }
}
