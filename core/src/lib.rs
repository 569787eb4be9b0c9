//! The numeric core of Quantization Playground: PyTorch-exact quantization, the essay's MNISTNet
//! (forward and backward), the MNIST sample, and the reports the CLI and the web app show.
//! No web dependency: everything here is tested natively with `cargo test`.

pub mod data;
pub mod draw;
pub mod error;
pub mod model;
pub mod observer;
pub mod ptq;
pub mod qat;
pub mod qinfer;
pub mod quant;
pub mod quantizer;
pub mod recipe;
pub mod rng;
pub mod stats;
pub mod study;
pub mod tensor_file;

pub use error::{Error, Result};
pub mod eval;
pub mod export;
pub mod fmt;
pub mod formats;
pub mod gemm;
pub mod infer;
mod lanes;
pub mod report;
pub mod train;
pub mod url;
pub mod view;
pub mod weights;
mod winograd;
