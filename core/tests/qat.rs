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
