//! The committed weights and test split: the split's make-up and the accuracy the README
//! promises. (Every number against PyTorch is in `goldens.rs`.)

use quant_core::data::Digits;
use quant_core::eval::evaluate;
use quant_core::model::MnistNet;
use quant_core::quant::{Bits, Scheme};
use quant_core::recipe::Recipe;
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
    let fp32 = evaluate(&net, images.view(), &test.labels).unwrap();
    assert!(fp32.accuracy >= 98.0, "FP32 accuracy {}", fp32.accuracy);
    let q8 = net
        .fake_quantized(&Recipe::per_tensor(
            Bits::new(8).unwrap(),
            Scheme::Symmetric,
        ))
        .unwrap();
    let quant = evaluate(&q8, images.view(), &test.labels).unwrap();
    assert!(
        (quant.accuracy - fp32.accuracy).abs() <= 0.2,
        "8-bit symmetric {} vs FP32 {}",
        quant.accuracy,
        fp32.accuracy
    );
}
