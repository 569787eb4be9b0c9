//! Runs the selected layer's slower analyses (the clipping trade-off, the rounding comparison)
//! in slices of at most ~8 ms after a move, so neither a move's frame nor the reader's next
//! input waits for them. A newer move abandons an older run.

use crate::browser;
use leptos::prelude::*;
use quant_core::view::{Analysis, AnalysisResult};
use std::cell::Cell;
use std::time::Duration;

/// One slice's budget, in milliseconds: half a frame.
const SLICE_MS: f64 = 8.0;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// What the panels show: the last finished analysis, or why it could not run.
pub type Shown = Option<Result<AnalysisResult, String>>;

/// Starts `job`, abandoning any earlier one; `out` gets the result when it is complete.
pub fn start(job: quant_core::Result<Analysis>, out: RwSignal<Shown>) {
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    match job {
        Ok(job) => set_timeout(move || pump(job, generation, out), Duration::ZERO),
        Err(e) => out.set(Some(Err(e.to_string()))),
    }
}

fn pump(mut job: Analysis, generation: u64, out: RwSignal<Shown>) {
    if GENERATION.with(Cell::get) != generation {
        return;
    }
    let start = browser::now();
    loop {
        match job.step() {
            Ok(true) if browser::now() - start < SLICE_MS => continue,
            Ok(true) => {
                set_timeout(move || pump(job, generation, out), Duration::ZERO);
                return;
            }
            Ok(false) => {
                out.set(job.result().map(Ok));
                return;
            }
            Err(e) => {
                out.set(Some(Err(e.to_string())));
                return;
            }
        }
    }
}
