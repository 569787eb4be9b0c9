//! Quantization Playground in the browser: a thin Leptos shell over `quant_core` (all numbers)
//! and `quant_charts` (all drawing). Components only wire signals to what the core computes.

mod analysis;
mod app;
mod backend;
mod bench;
mod browser;
mod bundle;
mod canvas;
mod eval_loop;
mod helpers;
mod panels;
pub mod panic;
mod ptq_run;
mod qat_run;
mod train_digits;
pub mod worker;

pub use app::App;
pub use browser::remove_boot_note;
