//! Drives the core's `EvalQueue` — the main thread as one more evaluator of the one `Scheduler`
//! the workers use — from the browser's event loop: blocks of 25 digits (5–8 ms each) for at
//! most ~12 ms per task, then yield, so evaluating 2,000 digits never freezes the page. The
//! scheduler decides what to evaluate (the reader's setting first); here we only run and publish.

use crate::browser;
use leptos::prelude::*;
use quant_core::eval::{EvalQueue, Precision, Progress};
use std::cell::RefCell;
use std::time::Duration;

/// Time budget of one slice, in milliseconds: under one 16 ms frame.
const SLICE_MS: f64 = 12.0;

thread_local! {
    static QUEUE: RefCell<Option<EvalQueue>> = const { RefCell::new(None) };
}

/// Starts evaluating in the background, `first` before anything else; `snapshot` is updated
/// after every slice.
pub fn prioritize_then_start(
    mut queue: EvalQueue,
    first: Precision,
    snapshot: RwSignal<Vec<Progress>>,
    failures: RwSignal<Vec<(Precision, String)>>,
) {
    queue.prioritize(first);
    QUEUE.with(|q| *q.borrow_mut() = Some(queue));
    set_timeout(move || pump(snapshot, failures), Duration::ZERO);
}

/// The reader moved to `p`: evaluate it next.
pub fn prioritize(p: Precision) {
    QUEUE.with(|q| {
        if let Some(q) = q.borrow_mut().as_mut() {
            q.prioritize(p);
        }
    });
}

/// Evaluates `extra` too, after the current order, until the reader's next move.
/// Evaluates `extra` next, before the curves (see `Scheduler::extend_order_soon`).
pub fn soon(extra: &[Precision]) {
    QUEUE.with(|q| {
        if let Some(q) = q.borrow_mut().as_mut() {
            q.extend_order_soon(extra);
        }
    });
}

pub fn also(extra: &[Precision]) {
    QUEUE.with(|q| {
        if let Some(q) = q.borrow_mut().as_mut() {
            q.extend_order(extra);
        }
    });
}

fn pump(snapshot: RwSignal<Vec<Progress>>, failures: RwSignal<Vec<(Precision, String)>>) {
    let start = browser::now();
    let more = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        let Some(queue) = q.as_mut() else {
            return false;
        };
        loop {
            match queue.step() {
                Some(_) if browser::now() - start < SLICE_MS => continue,
                Some(_) => break,
                None => return false,
            }
        }
        snapshot.set(queue.snapshot());
        let failed = queue.failures();
        if failed.len() != failures.with_untracked(Vec::len) {
            failures.set(failed);
        }
        true
    });
    if more {
        set_timeout(move || pump(snapshot, failures), Duration::ZERO);
    } else {
        QUEUE.with(|q| {
            if let Some(queue) = q.borrow().as_ref() {
                snapshot.set(queue.snapshot());
            }
        });
    }
}
