//! What the integration tests that read goldens share: the repository's files, the bundled
//! network and the committed digits.
#![allow(dead_code)] // each test file uses its own part

use quant_core::data::Digits;
use quant_core::model::MnistNet;
use quant_core::weights::from_safetensors;
use serde_json::Value;

/// A file of the repository, by its path from the root.
pub fn file(path: &str) -> Vec<u8> {
    let p = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn json(path: &str) -> Value {
    serde_json::from_slice(&file(path)).unwrap()
}

pub fn bundled() -> MnistNet {
    from_safetensors(&file("static/mnistnet.safetensors")).unwrap()
}

fn digits(images: &str, labels: &str) -> Digits {
    Digits::from_idx(&file(images), &file(labels)).unwrap()
}

pub fn test_digits() -> Digits {
    digits(
        "static/mnist-test-images.idx3-ubyte",
        "static/mnist-test-labels.idx1-ubyte",
    )
}

pub fn train_digits() -> Digits {
    digits(
        "data/mnist-train-images.idx3-ubyte",
        "data/mnist-train-labels.idx1-ubyte",
    )
}
