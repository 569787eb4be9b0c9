//! Every way the core can refuse its input. Edge cases are named errors, never panics, so the CLI
//! can print them and the web app can show them next to the control that caused them.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    #[error("unsupported bit width {0}: choose 2 to 8, or 16")]
    UnsupportedBits(u32),
    #[error("invalid bit width {0:?}: choose 2 to 8, or 16")]
    InvalidBits(String),
    #[error("unknown scheme {0:?}: use \"sym\" (symmetric) or \"asym\" (asymmetric)")]
    UnknownScheme(String),
    #[error("cannot quantize an empty tensor")]
    EmptyTensor,
    #[error("tensor holds a non-finite value ({0}) at index {1}")]
    NonFinite(f32, usize),
    #[error("invalid range: min {min} is greater than max {max}")]
    InvalidRange { min: f32, max: f32 },
    #[error("recipe: {0}")]
    Recipe(String),
    #[error("IDX file: {0}")]
    Idx(String),
    #[error("weights file: {0}")]
    Weights(String),
    #[error("data set: {0}")]
    Data(String),
    /// A reader's own `.safetensors` or `.npy` file.
    #[error("tensor file: {0}")]
    File(String),
    #[error("PTQ: {0}")]
    Ptq(String),
    #[error("QAT: {0}")]
    Qat(String),
}

pub type Result<T> = std::result::Result<T, Error>;
