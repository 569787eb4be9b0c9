//! One file per panel. Each renders what the core computed, with a few sentences for a curious
//! reader about what to look at and why it matters.

pub mod accuracy;
pub mod block;
pub mod channels;
pub mod clipping;
pub mod controls;
pub mod draw;
pub mod embed;
pub mod error;
pub mod export;
pub mod flips;
pub mod gallery;
pub mod histogram;
pub mod layers;
pub mod legend;
pub mod notices;
pub mod ptq;
pub mod qat;
pub mod rounding;
pub mod staircase;
pub mod table;
pub mod tensor;
