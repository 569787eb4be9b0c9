//! Runs the selected layer's slower analyses (the clipping trade-off, the rounding comparison)
//! once the reader pauses, in slices of at most ~4 ms, so neither a move's frame nor the
//! reader's next input waits for them, and a reader dragging the slider through six widths pays
//! for one analysis, not six. A newer move abandons an older run.

use crate::browser;
use leptos::prelude::*;
use quant_core::view::{Analysis, AnalysisResult};
use std::cell::Cell;
use std::time::Duration;

/// One slice's budget, in milliseconds: a fifth of a frame.
const SLICE_MS: f64 = 3.0;
/// How long after a move the analysis starts, if no other move came (ms). Started at once, its
/// first slice ran before the move's frame and delayed it.
const SETTLE_MS: u64 = 400;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// What the panels show: the last finished analysis, or why it could not run.
pub type Shown = Option<Result<AnalysisResult, String>>;

/// Starts the job `make` builds, once the reader has paused, abandoning any earlier one; `out`
/// gets the result when it is complete.
pub fn start(make: impl FnOnce() -> quant_core::Result<Analysis> + 'static, out: RwSignal<Shown>) {
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    set_timeout(
        move || {
            if GENERATION.with(Cell::get) != generation {
                return;
            }
            match make() {
                Ok(job) => pump(job, generation, out),
                Err(e) => out.set(Some(Err(e.to_string()))),
            }
        },
        Duration::from_millis(SETTLE_MS),
    );
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
