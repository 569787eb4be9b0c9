//! The model and the test digits, embedded in the wasm binary: the app makes no request for them.
//! The page may run on other weights instead (a QAT run's, `model=qat`): set once on the page
//! before anything loads, and handed to every worker it starts, which finds them on its global.

use quant_core::data::Digits;
use quant_core::model::MnistNet;
use quant_core::weights;
use std::cell::RefCell;
use wasm_bindgen::JsCast;

static WEIGHTS: &[u8] = include_bytes!("../static/mnistnet.safetensors");
static TEST_IMAGES: &[u8] = include_bytes!("../static/mnist-test-images.idx3-ubyte");
static TEST_LABELS: &[u8] = include_bytes!("../static/mnist-test-labels.idx1-ubyte");

/// Where the bootstrap script keeps the page's weights on a worker's global (see
/// crate::worker's BOOTSTRAP), when they are not the bundled ones.
pub const WEIGHTS_KEY: &str = "quantWeights";

thread_local! {
    static OVERRIDE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Runs this page (and the workers it starts from now on) on `bytes` instead of the bundle.
pub fn set_weights(bytes: Vec<u8>) {
    OVERRIDE.with(|o| *o.borrow_mut() = Some(bytes));
}

/// The weights in use when they are not the bundled ones: set on this thread, or handed to this
/// worker at its start.
pub fn weights_override() -> Option<Vec<u8>> {
    if let Some(bytes) = OVERRIDE.with(|o| o.borrow().clone()) {
        return Some(bytes);
    }
    let handed = js_sys::Reflect::get(&js_sys::global(), &WEIGHTS_KEY.into())
        .ok()
        .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
        .map(|a| a.to_vec())?;
    set_weights(handed.clone());
    Some(handed)
}

pub struct Bundle {
    pub net: MnistNet,
    pub test: Digits,
}

pub fn load() -> Result<Bundle, String> {
    let net = match weights_override() {
        Some(bytes) => {
            weights::from_safetensors(&bytes).map_err(|e| format!("the weights in use: {e}"))?
        }
        None => weights::from_safetensors(WEIGHTS).map_err(|e| e.to_string())?,
    };
    Ok(Bundle {
        net,
        test: Digits::from_idx(TEST_IMAGES, TEST_LABELS).map_err(|e| e.to_string())?,
    })
}
