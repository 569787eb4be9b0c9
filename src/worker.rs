//! Accuracy in Web Workers, so evaluating never blocks the page and uses every core.
//!
//! The workers run this same wasm module: the page hands each one the compiled
//! `WebAssembly.Module` (no second download, no second compile) and the URL of wasm-bindgen's
//! glue. A worker's `main` sees it has no `window` and calls [`serve`] instead of mounting the
//! app. The page's [`Scheduler`] hands each worker a few blocks of 25 digits at a time (the
//! reader's setting first, then FP32, its neighbours and its curves) and tops it up as it
//! reports each block's tally, so a worker that gets more of the CPU takes more blocks and the
//! workers finish together. A slider move replaces every worker's queue: the new setting starts
//! when the block in progress ends, and that block's tally is kept for when the reader comes
//! back. While the reader moves, the workers evaluate only the reader's setting; the rest
//! waits until they pause, so the page keeps a core to draw on.
//!
//! The worker script is a Blob URL: a sandboxed iframe has an opaque origin and may not start a
//! worker from a same-site URL, but may from a Blob it made. Nothing here needs
//! SharedArrayBuffer or cross-origin isolation. If a worker cannot start, the page falls back to
//! evaluating on the main thread in slices ([`crate::eval_loop`]).

use crate::browser;
use crate::bundle;
use leptos::prelude::*;
use quant_core::data::Digits;
use quant_core::eval::{Block, EvalTally, Precision, Progress, Scheduler};
use quant_core::infer::Inference;
use quant_core::model::{MnistNet, ModelId};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, Worker};

/// At most this many workers, however many cores the reader has.
const MAX_WORKERS: usize = 4;
/// The page publishes the workers' reports at most this often (ms), not once per message: each
/// publication redraws the accuracy panel, and at 60 a second that took most of a core from the
/// workers. The reader's setting is published at once when its first estimate or its complete
/// accuracy arrives.
const PUBLISH_MS: f64 = 100.0;
/// After a move, the workers evaluate only the reader's setting until the reader has been still
/// this long (ms); then the background (FP32, the neighbours, the curves) resumes.
const QUIET_MS: u64 = 300;

/// Imports the glue, then instantiates the module the page sent, which runs `main` → [`serve`].
/// The glue's URL stays on the worker's global as `quantGlue`, so the PTQ worker can start
/// helpers of its own (crate::helpers).
const BOOTSTRAP: &str = "onmessage = async (e) => {
  onmessage = null;
  self.quantGlue = e.data.glue;
  if (e.data.weights) self.quantWeights = e.data.weights;
  const glue = await import(e.data.glue);
  glue.initSync({ module: e.data.module });
};";

#[derive(Serialize, Deserialize)]
pub(crate) enum Command {
    /// Evaluate these blocks after the ones already queued.
    Append(Vec<Block>),
    /// The reader moved: forget the queue, evaluate these instead.
    Replace(Vec<Block>),
    /// Run static PTQ (the PTQ worker, see crate::ptq_run).
    Ptq(crate::ptq_run::Request),
    /// Run or count a calibration batch (a helper of the PTQ worker, see crate::helpers).
    PtqHelp(crate::helpers::Help),
    /// Start, pause, resume or stop QAT (the QAT worker, see crate::qat_run).
    Qat(crate::qat_run::Request),
}

/// Where [`BOOTSTRAP`] keeps the glue's URL on a worker's global.
pub(crate) const GLUE_KEY: &str = "quantGlue";

/// A worker's message that says it failed (to load, or a panic), and why.
pub(crate) fn failure(text: &str) -> Option<String> {
    match serde_json::from_str::<Report>(text) {
        Ok(Report::Failed(why)) => Some(why),
        _ => None,
    }
}

#[derive(Serialize, Deserialize)]
enum Report {
    /// Loaded, and which network: the page checks it is the one its results are keyed by.
    Ready(ModelId),
    Done {
        block: Block,
        tally: EvalTally,
    },
    /// That setting's network could not be built: its own error, not the worker's.
    RecipeFailed {
        precision: Precision,
        error: String,
    },
    Failed(String),
}

/// True inside a dedicated worker (where `main` must not mount the app).
pub fn in_worker() -> bool {
    js_sys::global().is_instance_of::<DedicatedWorkerGlobalScope>()
}

// ---- the worker side -------------------------------------------------------------------------

struct Served {
    fp32: MnistNet,
    test: Digits,
    queue: VecDeque<Block>,
    /// The network of the last block, kept while the next blocks are for the same setting.
    network: Option<(Precision, Inference)>,
    /// What fc1 reads for each block, from the FP32 convolutions: a setting that keeps conv1
    /// and conv2 in FP32 (the sensitivity table's fc1 and fc2 cells) runs only its fc1 and fc2
    /// on them, a tenth of a forward pass. Blocks this worker met under such a setting only
    /// (~310 KB each).
    features: std::collections::HashMap<usize, Vec<f32>>,
    /// fc1's FP32 outputs for each block, likewise, for a setting that quantizes only fc2
    /// (~13 KB a block).
    hidden: std::collections::HashMap<usize, Vec<f32>>,
    fp32_convs: Option<Inference>,
    scheduled: bool,
}

thread_local! {
    static SERVED: RefCell<Option<Served>> = const { RefCell::new(None) };
    static TICK: RefCell<Option<web_sys::MessageChannel>> = const { RefCell::new(None) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(report: &Report) {
    let json = serde_json::to_string(report).expect("reports serialize");
    let _ = scope().post_message(&JsValue::from_str(&json));
}

/// The worker's entry point: answer the page's commands.
pub fn serve() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(&Report::Failed(info.to_string()));
    }));
    // A zero-delay yield between blocks (setTimeout would be clamped to 4 ms), so commands that
    // arrived meanwhile are handled before the next block.
    let Ok(channel) = web_sys::MessageChannel::new() else {
        post(&Report::Failed("no MessageChannel in this worker".into()));
        return;
    };
    let tick = Closure::<dyn FnMut()>::new(step);
    channel
        .port1()
        .set_onmessage(Some(tick.as_ref().unchecked_ref()));
    tick.forget();
    TICK.with(|t| *t.borrow_mut() = Some(channel));
    let bundle = match bundle::load() {
        Ok(b) => b,
        Err(e) => return post(&Report::Failed(e)),
    };
    SERVED.with(|s| {
        *s.borrow_mut() = Some(Served {
            fp32: bundle.net,
            test: bundle.test,
            queue: VecDeque::new(),
            network: None,
            features: std::collections::HashMap::new(),
            hidden: std::collections::HashMap::new(),
            fp32_convs: None,
            scheduled: false,
        })
    });

    let on_command = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| {
        if crate::helpers::receive_bytes(&e.data()) {
            return;
        }
        let command = e
            .data()
            .as_string()
            .and_then(|s| serde_json::from_str::<Command>(&s).ok());
        let Some(command) = command else {
            return post(&Report::Failed("unreadable command".into()));
        };
        let command = match command {
            Command::Ptq(req) => return crate::ptq_run::serve(req),
            Command::PtqHelp(help) => return crate::helpers::help(help),
            Command::Qat(req) => return crate::qat_run::serve(req),
            c => c,
        };
        SERVED.with(|s| {
            if let Some(s) = s.borrow_mut().as_mut() {
                match command {
                    Command::Append(blocks) => s.queue.extend(blocks),
                    Command::Replace(blocks) => s.queue = blocks.into(),
                    Command::Ptq(_) | Command::PtqHelp(_) | Command::Qat(_) => {}
                }
            }
        });
        schedule();
    });
    scope().set_onmessage(Some(on_command.as_ref().unchecked_ref()));
    on_command.forget();
    let model = SERVED.with(|s| s.borrow().as_ref().map(|s| s.fp32.id()));
    if let Some(model) = model {
        post(&Report::Ready(model));
    }
}

fn schedule() {
    let go = SERVED.with(|s| match s.borrow_mut().as_mut() {
        Some(s) if !s.scheduled && !s.queue.is_empty() => {
            s.scheduled = true;
            true
        }
        _ => false,
    });
    if go {
        TICK.with(|t| {
            if let Some(c) = t.borrow().as_ref() {
                let _ = c.port2().post_message(&JsValue::NULL);
            }
        });
    }
}

/// How many of `p`'s first layers keep their FP32 weights (so their outputs are FP32's): 2 for
/// the sensitivity table's fc1 cells, 3 for its fc2 cells. FP32 itself counts 0: it has no use
/// for a cache of its own outputs.
fn fp32_prefix(p: Precision) -> usize {
    use quant_core::formats::Format;
    use quant_core::model::Layer;
    match p {
        Precision::Fp32 => 0,
        Precision::Quantized(r) => Layer::ALL
            .iter()
            .take_while(|&&l| r.layer(l).format == Format::Fp32)
            .count(),
    }
}

/// Evaluates the next queued block and reports its tally.
fn step() {
    let report = SERVED.with(|s| {
        let mut s = s.borrow_mut();
        let s = s.as_mut()?;
        s.scheduled = false;
        let block = s.queue.pop_front()?;
        let p = block.precision;
        if s.network.as_ref().map(|(q, _)| *q) != Some(p) {
            match p.network(&s.fp32) {
                Ok(net) => s.network = Some((p, Inference::new(&net))),
                Err(e) => {
                    // The rest of that setting's blocks would fail the same way.
                    s.queue.retain(|b| b.precision != p);
                    return Some(Report::RecipeFailed {
                        precision: p,
                        error: e.to_string(),
                    });
                }
            }
        }
        let prefix = fp32_prefix(p);
        let tally = if prefix >= 2 {
            let rows = Scheduler::digits(s.test.len(), block.index);
            let Served {
                test,
                features,
                hidden,
                fp32_convs,
                fp32,
                network,
                ..
            } = s;
            let reference = fp32_convs.get_or_insert_with(|| Inference::new(fp32));
            let f = features.entry(block.index).or_insert_with(|| {
                let images = test.images_f32_rows(rows.clone());
                reference.features(images.as_slice().expect("standard layout"))
            });
            let net = &mut network.as_mut().expect("set above").1;
            let scores = if prefix >= 3 {
                let h = hidden
                    .entry(block.index)
                    .or_insert_with(|| reference.hidden(f));
                net.logits_from_hidden(h)
            } else {
                net.logits_from_features(f)
            };
            let mut tally = quant_core::eval::EvalTally::default();
            tally.add_scores(
                ndarray::ArrayView2::from_shape((rows.len(), 10), scores).expect("10 a digit"),
                &test.labels[rows],
            );
            tally
        } else {
            let net = &mut s.network.as_mut().expect("set above").1;
            Scheduler::evaluate(net, &s.test, block.index)
        };
        Some(Report::Done { block, tally })
    });
    if let Some(r) = report {
        post(&r);
    }
    schedule();
}

// ---- the page side ---------------------------------------------------------------------------

struct Pool {
    workers: Vec<Worker>,
    ready: Vec<bool>,
    scheduler: Scheduler,
    publish_scheduled: bool,
    /// When the snapshot was last published (performance.now, ms).
    published_at: f64,
    /// Whether the reader's setting has been published since they picked it.
    priority_shown: bool,
    snapshot: RwSignal<Vec<Progress>>,
    error: RwSignal<Option<String>>,
    /// Settings that cannot be evaluated, and why.
    failures: RwSignal<Vec<(Precision, String)>>,
    /// The network every tally here is for.
    model: ModelId,
    /// When each worker last reported (performance.now, ms), for the watchdog.
    last_heard: Vec<f64>,
    /// Runs once if the workers cannot start: evaluate on the main thread instead.
    fallback: Option<Box<dyn FnOnce(Precision)>>,
    /// Releases the background once the reader has been still for [`QUIET_MS`].
    quiet: browser::Debounce,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// How many workers to start: one per core the browser reports, at most [`MAX_WORKERS`].
fn worker_count() -> usize {
    let cores = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency())
        .unwrap_or(1.0);
    (cores as usize).clamp(1, MAX_WORKERS)
}

/// The URL of wasm-bindgen's glue module, from the `modulepreload` link Trunk writes.
fn glue_url() -> Option<String> {
    let doc = web_sys::window()?.document()?;
    let link = doc
        .query_selector("link[rel=modulepreload][href$='.js']")
        .ok()??;
    Some(link.unchecked_into::<web_sys::HtmlLinkElement>().href())
}

/// The worker script: a Blob URL (see the module's note on sandboxed iframes).
pub(crate) fn bootstrap_url() -> Option<String> {
    let parts = js_sys::Array::of1(&BOOTSTRAP.into());
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type("text/javascript");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// One more worker running this module, its messages passed to `on_message` (the PTQ worker).
pub(crate) fn spawn_worker(on_message: impl Fn(JsValue) + 'static) -> Option<Worker> {
    let worker = spawn(&bootstrap_url()?, &glue_url()?).ok()?;
    let handler =
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| on_message(e.data()));
    worker.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget();
    Some(worker)
}

pub(crate) fn spawn(script: &str, glue: &str) -> Result<Worker, JsValue> {
    // A classic worker (which may still `import()`): Chromium refuses a module worker from a
    // Blob made in a sandboxed iframe's opaque origin.
    let worker = Worker::new(script)?;
    let init = js_sys::Object::new();
    js_sys::Reflect::set(&init, &"glue".into(), &glue.into())?;
    js_sys::Reflect::set(&init, &"module".into(), &wasm_bindgen::module())?;
    // Not the bundled network: the worker runs on the page's weights (crate::bundle).
    if let Some(w) = bundle::weights_override() {
        let bytes = js_sys::Uint8Array::from(&w[..]);
        js_sys::Reflect::set(&init, &"weights".into(), &bytes)?;
    }
    worker.post_message(&init)?;
    Ok(worker)
}

/// Starts the workers, evaluating `first` before anything else. Returns false (having started
/// nothing) when workers are unavailable; `fallback` also runs if they fail before they are ready.
pub fn start(
    model: ModelId,
    first: Precision,
    total: usize,
    snapshot: RwSignal<Vec<Progress>>,
    error: RwSignal<Option<String>>,
    failures: RwSignal<Vec<(Precision, String)>>,
    fallback: impl FnOnce(Precision) + 'static,
) -> bool {
    let Some(glue) = glue_url() else {
        return false;
    };
    let Some(script) = bootstrap_url() else {
        return false;
    };
    let n = worker_count();
    let mut workers = Vec::with_capacity(n);
    for index in 0..n {
        let Ok(worker) = spawn(&script, &glue) else {
            workers.iter().for_each(Worker::terminate);
            return false;
        };
        let on_report = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let report = e
                .data()
                .as_string()
                .and_then(|s| serde_json::from_str::<Report>(&s).ok());
            if let Some(r) = report {
                received(index, r);
            }
        });
        worker.set_onmessage(Some(on_report.as_ref().unchecked_ref()));
        on_report.forget();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let message = e
                .dyn_ref::<web_sys::ErrorEvent>()
                .map(|e| e.message())
                .unwrap_or_else(|| "the worker could not start".into());
            failed(index, message);
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        workers.push(worker);
    }
    POOL.with(|p| {
        *p.borrow_mut() = Some(Pool {
            ready: vec![false; n],
            workers,
            scheduler: Scheduler::new(total, n, first),
            publish_scheduled: false,
            published_at: f64::NEG_INFINITY,
            priority_shown: false,
            snapshot,
            error,
            failures,
            model,
            last_heard: vec![browser::now(); n],
            fallback: Some(Box::new(fallback)),
            quiet: browser::Debounce::default(),
        })
    });
    watch();
    true
}

/// A worker that holds blocks and has said nothing for this long (ms) is taken to have hung: its
/// blocks go to the others. A block takes 5–30 ms; a starting worker reports ready in ~100 ms.
const SILENT_MS: f64 = 5_000.0;

/// Checks every second that no worker holding work has gone silent.
fn watch() {
    set_timeout(
        || {
            let silent = POOL.with(|pool| {
                let pool = pool.borrow();
                let pool = pool.as_ref()?;
                let now = browser::now();
                (0..pool.workers.len()).find(|&w| {
                    pool.ready[w] && pool.scheduler.holds(w) && now - pool.last_heard[w] > SILENT_MS
                })
            });
            if let Some(w) = silent {
                failed(w, format!("silent for {} s", SILENT_MS / 1000.0));
            }
            if POOL.with(|p| p.borrow().is_some()) {
                watch();
            }
        },
        Duration::from_secs(1),
    );
}

fn send(worker: &Worker, command: &Command) {
    let json = serde_json::to_string(command).expect("commands serialize");
    let _ = worker.post_message(&JsValue::from_str(&json));
}

/// The reader moved to `p`: every worker evaluates it next, and nothing else until the reader
/// has been still for [`QUIET_MS`].
pub fn prioritize(p: Precision) {
    let quiet = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let pool = pool.as_mut()?;
        if p == pool.scheduler.priority() {
            return None;
        }
        pool.priority_shown = false;
        let dropped = pool.scheduler.prioritize(p);
        pool.scheduler.hold_background(true);
        for w in 0..pool.workers.len() {
            if !pool.ready[w] {
                continue;
            }
            let blocks = pool.scheduler.top_up(w);
            // A worker with an empty queue needs no message unless there is new work.
            if dropped.contains(&w) {
                send(&pool.workers[w], &Command::Replace(blocks));
            } else if !blocks.is_empty() {
                send(&pool.workers[w], &Command::Append(blocks));
            }
        }
        Some(pool.quiet.clone())
    });
    if let Some(quiet) = quiet {
        quiet.call(Duration::from_millis(QUIET_MS), || {
            POOL.with(|pool| {
                if let Some(pool) = pool.borrow_mut().as_mut() {
                    pool.scheduler.hold_background(false);
                    top_up_ready(pool);
                }
            })
        });
    }
}

/// Evaluates `extra` too, after the current order, until the reader's next move.
pub fn also(extra: &[Precision]) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let Some(pool) = pool.as_mut() else { return };
        pool.scheduler.extend_order(extra);
        top_up_ready(pool);
    });
}

/// Evaluates `extra` next, before the neighbours and curves, until the reader's next move.
pub fn soon(extra: &[Precision]) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let Some(pool) = pool.as_mut() else { return };
        pool.scheduler.extend_order_soon(extra);
        top_up_ready(pool);
    });
}

/// Hands every ready worker the blocks it has room for (those still starting are handed blocks
/// when they report ready).
fn top_up_ready(pool: &mut Pool) {
    for w in 0..pool.workers.len() {
        if pool.ready[w] {
            top_up(pool, w);
        }
    }
}

/// Hands worker `w` more blocks, if it has room and any are left.
fn top_up(pool: &mut Pool, w: usize) {
    let blocks = pool.scheduler.top_up(w);
    if !blocks.is_empty() {
        send(&pool.workers[w], &Command::Append(blocks));
    }
}

fn received(index: usize, report: Report) {
    POOL.with(|pool| {
        if let Some(pool) = pool.borrow_mut().as_mut() {
            pool.last_heard[index] = browser::now();
        }
    });
    match report {
        Report::Ready(model) => {
            let expected = POOL.with(|pool| pool.borrow().as_ref().map(|p| p.model));
            if expected != Some(model) {
                // Its tallies would be another network's: never mixed with this one's.
                return failed(index, format!("it loaded another network ({model})"));
            }
            POOL.with(|pool| {
                if let Some(pool) = pool.borrow_mut().as_mut() {
                    pool.ready[index] = true;
                    top_up(pool, index);
                }
            })
        }
        Report::Done { block, tally } => {
            let precision = block.precision;
            // Publish at once unless we did within PUBLISH_MS; then once that much has passed.
            let wait = POOL.with(|pool| {
                let mut pool = pool.borrow_mut();
                let pool = pool.as_mut()?;
                pool.scheduler.record(index, block, tally);
                top_up(pool, index);
                let reader_waits = precision == pool.scheduler.priority()
                    && (!pool.priority_shown || pool.scheduler.is_done(precision));
                if reader_waits {
                    pool.priority_shown = true;
                    return Some(0.0);
                }
                if pool.publish_scheduled {
                    return None;
                }
                let wait = (pool.published_at + PUBLISH_MS - browser::now()).max(0.0);
                pool.publish_scheduled = wait > 0.0;
                Some(wait)
            });
            match wait {
                Some(ms) if ms <= 0.0 => publish_now(),
                Some(ms) => set_timeout(
                    || {
                        POOL.with(|p| {
                            if let Some(p) = p.borrow_mut().as_mut() {
                                p.publish_scheduled = false;
                            }
                        });
                        publish_now();
                    },
                    Duration::from_micros((ms * 1000.0) as u64),
                ),
                None => {}
            }
        }
        Report::RecipeFailed { precision, error } => {
            let failures = POOL.with(|pool| {
                let mut pool = pool.borrow_mut();
                let pool = pool.as_mut()?;
                pool.scheduler.fail(index, precision, error.clone());
                top_up(pool, index);
                Some(pool.failures)
            });
            // Set outside the borrow: the effects it wakes may call `prioritize`.
            if let Some(f) = failures {
                f.update(|f| f.push((precision, error)));
            }
        }
        Report::Failed(message) => failed(index, message),
    }
}

fn publish_now() {
    let update = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let pool = pool.as_mut()?;
        pool.published_at = browser::now();
        Some((pool.snapshot, pool.scheduler.snapshot()))
    });
    // Set outside the borrow: the effects it wakes may call `prioritize`.
    if let Some((signal, snapshot)) = update {
        signal.set(snapshot);
    }
}

/// A worker failed. Before any was ready (the cause is likely to stop them all: a policy that
/// forbids workers, a module that does not instantiate), the main thread evaluates instead.
/// After, the others take over its blocks; only when none is left does the main thread.
fn failed(index: usize, message: String) {
    let fallback = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let p = pool.as_mut()?;
        if p.ready.iter().any(|&r| r) {
            p.ready[index] = false;
            p.workers[index].terminate();
            let left = p.scheduler.retire(index);
            if left > 0 {
                p.error.set(Some(format!(
                    "The accuracy worker {} stopped ({message}); the other{} carr{} on.",
                    index + 1,
                    if left > 1 { "s" } else { "" },
                    if left > 1 { "y" } else { "ies" },
                )));
                top_up_ready(p);
                return None;
            }
        }
        let p = pool.take()?;
        p.workers.iter().for_each(Worker::terminate);
        Some((p.fallback?, p.scheduler.priority()))
    });
    if let Some((fallback, priority)) = fallback {
        web_sys::console::warn_1(
            &format!("Evaluating on the main thread: the workers stopped ({message}).").into(),
        );
        fallback(priority);
    }
}
