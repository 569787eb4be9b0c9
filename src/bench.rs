//! A hook for the benchmark (`scripts/bench.sh`), callable from the page as
//! `wasmBindings.benchmark_forward(n)`: the evaluation forward pass over the first `n` test
//! digits on the calling thread, the same code each accuracy worker runs.

use crate::{browser, bundle};
use quant_core::data::PIXELS;
use quant_core::eval::Scheduler;
use quant_core::infer::Inference;
use wasm_bindgen::prelude::*;

/// Images per second of the FP32 forward pass on one thread (best of `repeats`), or an error.
#[wasm_bindgen]
pub fn benchmark_forward(n: usize, repeats: usize) -> Result<f64, JsError> {
    let b = bundle::load().map_err(|e| JsError::new(&e))?;
    let n = n.clamp(1, b.test.len());
    let images = b.test.images_f32();
    let images = &images.as_slice().expect("standard layout")[..n * PIXELS];
    let mut net = Inference::new(&b.net);
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = browser::now();
        std::hint::black_box(net.logits(images));
        best = best.min(browser::now() - t);
    }
    Ok(n as f64 / (best / 1000.0))
}

/// Images per second of what a worker does with the 2,000 test digits: blocks of the
/// scheduler's size, each evaluated and tallied on its own (best of `repeats`).
#[wasm_bindgen]
pub fn benchmark_blocks(repeats: usize) -> Result<f64, JsError> {
    let b = bundle::load().map_err(|e| JsError::new(&e))?;
    let mut net = Inference::new(&b.net);
    let blocks = b.test.len().div_ceil(quant_core::eval::BLOCK_DIGITS);
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = browser::now();
        for index in 0..blocks {
            std::hint::black_box(Scheduler::evaluate(&mut net, &b.test, index));
        }
        best = best.min(browser::now() - t);
    }
    Ok(b.test.len() as f64 / (best / 1000.0))
}
