//! QAT from the bundled weights: at 2 bits per tensor, symmetric, the fake-quantized network
//! falls to about a third of the digits right; a short fine-tune with the STE brings much of it
//! back.

use quant_core::eval::evaluate;
use quant_core::qat::{Qat, QatConfig};
use quant_core::quant::{Bits, Scheme};
use quant_core::recipe::Recipe;

mod common;
use common::*;

#[test]
fn a_short_qat_run_at_2_bits_raises_the_accuracy() {
    let (net, train, test) = (bundled(), train_digits(), test_digits());
    let images = test.images_f32();
    let recipe = Recipe::per_tensor(Bits::new(2).unwrap(), Scheme::Symmetric);
    let accuracy = |n: &quant_core::model::MnistNet| {
        evaluate(
            &n.fake_quantized(&recipe).unwrap(),
            images.view(),
            &test.labels,
        )
        .unwrap()
        .accuracy
    };
    let before = accuracy(&net);
    let mut qat = Qat::new(&net, &train, QatConfig::new(recipe, 60)).unwrap();
    let mut losses = vec![];
    while !qat.finished() {
        losses.push(qat.step().unwrap());
    }
    let after = accuracy(qat.weights());
    eprintln!(
        "2-bit accuracy {before:.2} % → {after:.2} % after 60 steps; loss {:.3} → {:.3}",
        losses[0], losses[59]
    );
    assert!(before < 50.0, "{before}");
    assert!(after > before + 30.0, "{before} → {after}");
    // The same seed gives the same weights (ten steps suffice to show it).
    let ten = || {
        let mut q = Qat::new(&net, &train, QatConfig::new(recipe, 10)).unwrap();
        while !q.finished() {
            q.step().unwrap();
        }
        q.weights().clone()
    };
    assert_eq!(ten().tensors(), ten().tensors());
}

/// With the activations fake-quantized too (W2A4): each batch is one part (its observers see it
/// whole), the accuracy before QAT is below weight-only's, and training brings it up.
#[test]
fn qat_with_quantized_activations_raises_the_accuracy() {
    let (net, train, test) = (bundled(), train_digits(), test_digits());
    let images = test.images_f32();
    let recipe = Recipe::per_tensor(Bits::new(2).unwrap(), Scheme::Symmetric);
    let config = QatConfig {
        activation_bits: Some(4),
        ..QatConfig::new(recipe, 40)
    };
    let mut planned = Qat::new(&net, &train, config.clone()).unwrap();
    assert_eq!(planned.plan().unwrap().parts.len(), 1);
    let mut qat = Qat::new(&net, &train, config).unwrap();
    let before = qat.evaluate(images.view(), &test.labels).unwrap().accuracy;
    while !qat.finished() {
        qat.step().unwrap();
    }
    let after = qat.evaluate(images.view(), &test.labels).unwrap().accuracy;
    eprintln!("W2A4 accuracy {before:.2} % → {after:.2} % after 40 steps");
    assert!(after > before + 15.0, "{before} → {after}");
    // 4-bit activations are themselves a loss: at 8-bit weights they cost accuracy.
    let w8 = Recipe::per_tensor(Bits::new(8).unwrap(), Scheme::Symmetric);
    let a4 = Qat::new(
        &net,
        &train,
        QatConfig {
            activation_bits: Some(4),
            ..QatConfig::new(w8, 0)
        },
    )
    .unwrap();
    let w8_only = Qat::new(&net, &train, QatConfig::new(w8, 0)).unwrap();
    let (a, w) = (
        a4.evaluate(images.view(), &test.labels).unwrap().accuracy,
        w8_only
            .evaluate(images.view(), &test.labels)
            .unwrap()
            .accuracy,
    );
    assert!(a < w, "W8A4 {a} vs W8 {w}");
}
