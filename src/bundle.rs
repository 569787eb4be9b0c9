//! The model and the test digits, embedded in the wasm binary: the app makes no request for them.

use quant_core::data::Digits;
use quant_core::model::MnistNet;
use quant_core::weights;

static WEIGHTS: &[u8] = include_bytes!("../static/mnistnet.safetensors");
static TEST_IMAGES: &[u8] = include_bytes!("../static/mnist-test-images.idx3-ubyte");
static TEST_LABELS: &[u8] = include_bytes!("../static/mnist-test-labels.idx1-ubyte");

pub struct Bundle {
    pub net: MnistNet,
    pub test: Digits,
}

pub fn load() -> Result<Bundle, String> {
    Ok(Bundle {
        net: weights::from_safetensors(WEIGHTS).map_err(|e| e.to_string())?,
        test: Digits::from_idx(TEST_IMAGES, TEST_LABELS).map_err(|e| e.to_string())?,
    })
}
