//! Work over more than one core: the PTQ worker and the QAT worker (each a lead,
//! [`crate::ptq_run`], [`crate::qat_run`]) start helpers of their own, nested workers running
//! this same module, and send them the training split once.
//!
//! QAT: each step's batch is planned in two parts ([`quant_core::qat::PARTS`]); the lead sends a
//! helper the fake-quantized weights and one part's digit indices, computes the other part's
//! gradient meanwhile, and combines the two (the same parts, in the same order, as one worker
//! alone, so the weights do not depend on how many workers ran them). Weights and gradients go
//! as Float32Arrays, not JSON.
//!
//! PTQ calibration: the lead hands out batches of calibration digits in order, two at a time to
//! each helper and to itself, so that no one waits:
//!
//! 1. A helper answers [`Help::Run`] with its batch's five site ranges, and keeps the batch.
//! 2. The lead holds the observers. It answers with the range each batch's histogram counts are
//!    taken over: the union of the ranges of every batch before it, in order, because PyTorch's
//!    observers see the batches one after another.
//! 3. The helper sends back its five summaries (40 KB instead of its 15 MB of activations), and
//!    the lead absorbs them in order, while the next batches run.
//!
//! The result has the same bits as one worker calibrating alone (tested in core/tests/ptq.rs), in
//! about half the time on two cores. If helpers cannot start (no nested workers, no glue URL),
//! the lead calibrates alone.

use crate::bundle;
use quant_core::data::Digits;
use quant_core::model::MnistNet;
use quant_core::observer::BatchSummary;
use quant_core::ptq::{FloatNet, SiteBatch};
use quant_core::qat;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

/// Each site's `(min, max)`: a batch's ranges, or the ranges its counts are taken over.
pub type Ranges = [(f32, f32); 5];

/// At most this many helpers beside the lead, however many cores the reader has.
const MAX_HELPERS: usize = 3;

/// What the lead asks a helper.
#[derive(Clone, Serialize, Deserialize)]
pub enum Help {
    /// Run training digits `digits.0..digits.1` through the float network and report each
    /// site's range. The training split came before, once, from the lead ([`send_digits`]): it is
    /// fetched once per page.
    Run { id: u64, digits: (usize, usize) },
    /// Count the batch kept from the `Run` of the digits from `start` over these ranges, send
    /// its summaries, and drop it.
    Count {
        id: u64,
        start: usize,
        ranges: Ranges,
    },
}

/// What a helper answers.
#[derive(Clone, Serialize, Deserialize)]
pub enum Reply {
    Ranges {
        id: u64,
        start: usize,
        ranges: Ranges,
    },
    Summaries {
        id: u64,
        start: usize,
        summaries: Box<[BatchSummary; 5]>,
    },
    Failed {
        id: u64,
        error: String,
    },
}

// ---- the helper side ---------------------------------------------------------------------------

struct Helper {
    float: FloatNet,
    train: Option<Digits>,
    /// The test digits as the network reads them, for QAT's evaluations (made on first use).
    test: Digits,
    test_images: Option<ndarray::Array2<f32>>,
    /// Batches run and not yet counted: request, first digit, activations (two at most, as
    /// the lead hands them out).
    kept: Vec<(u64, usize, SiteBatch)>,
}

thread_local! {
    static HELPER: RefCell<Option<Helper>> = const { RefCell::new(None) };
}

fn reply(r: &Reply) {
    let json = serde_json::to_string(r).expect("replies serialize");
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let _ = scope.post_message(&JsValue::from_str(&json));
}

/// The keys of the message that carries the training split (pixels and labels as bytes).
const PIXELS_KEY: &str = "trainPixels";
const LABELS_KEY: &str = "trainLabels";

/// The keys of a QAT part (lead → helper) and of its gradient (helper → lead).
const PART_KEY: &str = "qatPart";
const GRADIENT_KEY: &str = "qatGradient";

/// A network's eight tensors end to end, as one Float32Array, each copied once into it (this
/// goes both ways every QAT step, 1.7 MB; the message then transfers its buffer, no copy).
fn flat(net: &MnistNet) -> js_sys::Float32Array {
    flat_into(net, None)
}

/// [`flat`] into `reuse` when it has the length (a transferred, detached array has none). QAT's
/// part and its gradient travel in one buffer, to the helper and back, and again next step: a
/// new 1.7 MB array cost ~0.7 ms at each end of each step, four times the copy into it.
fn flat_into(net: &MnistNet, reuse: Option<js_sys::Float32Array>) -> js_sys::Float32Array {
    let len = net.param_count() as u32;
    let all = reuse
        .filter(|a| a.length() == len)
        .unwrap_or_else(|| js_sys::Float32Array::new_with_length(len));
    let mut at = 0;
    for t in net.tensors() {
        all.subarray(at, at + t.len() as u32).copy_from(t);
        at += t.len() as u32;
    }
    all
}

/// [`flat`] back into a network; None if the length is not MNISTNet's.
fn unflat(a: &js_sys::Float32Array) -> Option<MnistNet> {
    let mut net = MnistNet::zeros();
    if a.length() as usize != net.param_count() {
        return None;
    }
    let mut at = 0;
    for t in net.tensors_mut() {
        a.subarray(at, at + t.len() as u32).copy_to(t);
        at += t.len() as u32;
    }
    Some(net)
}

/// The buffer of `a`, as a message's transfer list.
fn transfer(a: &js_sys::Float32Array) -> js_sys::Array {
    js_sys::Array::of1(&a.buffer())
}

fn field(data: &JsValue, key: &str) -> Option<JsValue> {
    js_sys::Reflect::get(data, &key.into())
        .ok()
        .filter(|v| !v.is_undefined())
}

fn set(o: &js_sys::Object, key: &str, v: &JsValue) -> bool {
    js_sys::Reflect::set(o, &key.into(), v).is_ok()
}

/// A helper's handler for a QAT part (true if `data` is one): its gradient goes back.
fn receive_part(data: &JsValue) -> bool {
    let Some(id) = field(data, PART_KEY).and_then(|v| v.as_f64()) else {
        return false;
    };
    let step = field(data, "step").and_then(|v| v.as_f64()).unwrap_or(-1.0);
    let weights = field(data, "weights").and_then(|v| v.dyn_into::<js_sys::Float32Array>().ok());
    let fake = weights.as_ref().and_then(unflat);
    let part = field(data, "digits")
        .and_then(|v| v.dyn_into::<js_sys::Uint32Array>().ok())
        .map(|a| a.to_vec());
    let gradient = with_helper(|h| {
        let train = h
            .train
            .as_ref()
            .ok_or("the training digits did not reach this worker")?;
        let (Some(fake), Some(part)) = (fake, part) else {
            return Err("a QAT part arrived damaged".to_string());
        };
        qat::part_gradient(&fake, train, &part).map_err(|e| e.to_string())
    });
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let o = js_sys::Object::new();
    set(&o, GRADIENT_KEY, &id.into());
    set(&o, "step", &step.into());
    match gradient {
        Ok(g) => {
            set(&o, "digits", &(g.digits as f64).into());
            set(&o, "loss", &f64::from(g.loss).into());
            // Back in the buffer the weights came in.
            let grads = flat_into(&g.grads, weights);
            set(&o, "grads", &grads);
            let _ = scope.post_message_with_transfer(&o, &transfer(&grads));
        }
        Err(error) => {
            set(&o, "error", &error.into());
            let _ = scope.post_message(&o);
        }
    }
    true
}

/// A helper's handler for a message that is not a JSON command (true if it was one of these):
/// the training split, from [`send_digits`], or a QAT part, from [`send_part`].
pub fn receive_bytes(data: &JsValue) -> bool {
    if !data.is_object() {
        return false;
    }
    if receive_part(data) || receive_evaluation(data) {
        return true;
    }
    let bytes = |key: &str| {
        js_sys::Reflect::get(data, &key.into())
            .ok()
            .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
            .map(|a| a.to_vec())
    };
    let (Some(pixels), Some(labels)) = (bytes(PIXELS_KEY), bytes(LABELS_KEY)) else {
        return false;
    };
    let train = Digits::from_pixels(pixels, labels).ok();
    with_helper(|h| {
        h.train = train;
        Ok(())
    })
    .is_ok()
}

fn with_helper<T>(f: impl FnOnce(&mut Helper) -> Result<T, String>) -> Result<T, String> {
    let fresh = HELPER.with(|h| h.borrow().is_none());
    if fresh {
        let b = bundle::load()?;
        let helper = Helper {
            float: FloatNet::new(&b.net),
            train: None,
            test: b.test,
            test_images: None,
            kept: Vec::new(),
        };
        HELPER.with(|h| *h.borrow_mut() = Some(helper));
    }
    HELPER.with(|h| f(h.borrow_mut().as_mut().expect("made above")))
}

/// A helper's command handler (called by the worker's, [`crate::worker::serve`]).
pub fn help(cmd: Help) {
    let id = match &cmd {
        Help::Run { id, .. } | Help::Count { id, .. } => *id,
    };
    match with_helper(|h| run(h, cmd)) {
        Ok(r) => reply(&r),
        Err(error) => reply(&Reply::Failed { id, error }),
    }
}

fn run(h: &mut Helper, cmd: Help) -> Result<Reply, String> {
    match cmd {
        Help::Run {
            id,
            digits: (start, end),
        } => {
            let train = h
                .train
                .as_ref()
                .ok_or("the training digits did not reach this worker")?;
            if start >= end || end > train.len() {
                return Err(format!(
                    "digits {start}..{end} asked, {} available",
                    train.len()
                ));
            }
            let images = train.images_f32_rows(start..end);
            let batch = SiteBatch::run(&h.float, images.view()).map_err(|e| e.to_string())?;
            let ranges = batch.ranges;
            // A newer request replaces an older one's batches.
            h.kept.retain(|k| k.0 == id);
            h.kept.push((id, start, batch));
            Ok(Reply::Ranges { id, start, ranges })
        }
        Help::Count { id, start, ranges } => {
            let at = h
                .kept
                .iter()
                .position(|k| k.0 == id && k.1 == start)
                .ok_or("no calibration batch is kept for this request")?;
            let (_, _, batch) = h.kept.remove(at);
            let summaries = batch.summaries(&ranges).map_err(|e| e.to_string())?;
            Ok(Reply::Summaries {
                id,
                start,
                summaries: Box::new(summaries),
            })
        }
    }
}

// ---- the lead side -----------------------------------------------------------------------------

struct Pool {
    workers: Vec<Worker>,
    /// A helper is ready once its first message (the worker's own "loaded") has arrived.
    ready: Vec<bool>,
    /// The training split has been sent to it.
    has_digits: Vec<bool>,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
    /// The buffer the last QAT gradient came back in, for the next part ([`flat_into`]).
    static SPARE: RefCell<Option<js_sys::Float32Array>> = const { RefCell::new(None) };
}

/// The keys of a QAT evaluation (lead → helper) and of its result (helper → lead).
const EVAL_KEY: &str = "qatEvaluate";
const EVALUATED_KEY: &str = "qatEvaluated";

/// A helper's handler for a QAT evaluation (true if `data` is one): the network (already
/// fake-quantized) on the 2,000 test digits, sent back.
fn receive_evaluation(data: &JsValue) -> bool {
    let Some(id) = field(data, EVAL_KEY).and_then(|v| v.as_f64()) else {
        return false;
    };
    let step = field(data, "step").and_then(|v| v.as_f64()).unwrap_or(-1.0);
    let net = field(data, "weights")
        .and_then(|v| v.dyn_into::<js_sys::Float32Array>().ok())
        .and_then(|a| unflat(&a));
    let result = with_helper(|h| {
        let net = net.ok_or("a QAT evaluation arrived damaged")?;
        let images = h.test_images.get_or_insert_with(|| h.test.images_f32());
        quant_core::eval::evaluate(&net, images.view(), &h.test.labels).map_err(|e| e.to_string())
    });
    let o = js_sys::Object::new();
    set(&o, EVALUATED_KEY, &id.into());
    set(&o, "step", &step.into());
    match result {
        Ok(e) => {
            set(&o, "loss", &e.loss.into());
            set(&o, "accuracy", &e.accuracy.into());
            set(&o, "correct", &(e.correct as f64).into());
            set(&o, "count", &(e.count as f64).into());
        }
        Err(error) => {
            set(&o, "error", &error.into());
        }
    }
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let _ = scope.post_message(&o);
    true
}

/// A QAT evaluation as a helper sent it back.
pub struct EvaluationReply {
    pub id: u64,
    pub step: usize,
    pub result: Result<quant_core::eval::Evaluation, String>,
}

fn evaluation_reply(data: &JsValue) -> Option<EvaluationReply> {
    let id = field(data, EVALUATED_KEY)?.as_f64()? as u64;
    let step = field(data, "step")?.as_f64()? as usize;
    let num = |k: &str| field(data, k).and_then(|v| v.as_f64());
    let result = match field(data, "error").and_then(|e| e.as_string()) {
        Some(error) => Err(error),
        None => match (num("loss"), num("accuracy"), num("correct"), num("count")) {
            (Some(loss), Some(accuracy), Some(correct), Some(count)) => {
                Ok(quant_core::eval::Evaluation {
                    loss,
                    accuracy,
                    correct: correct as usize,
                    count: count as usize,
                })
            }
            _ => Err("an evaluation arrived damaged".into()),
        },
    };
    Some(EvaluationReply { id, step, result })
}

/// Sends helper `index` a QAT evaluation of `net` (run `id`, after `step` steps).
pub fn send_evaluation(index: usize, id: u64, step: usize, net: &MnistNet) -> bool {
    let o = js_sys::Object::new();
    let ok = set(&o, EVAL_KEY, &(id as f64).into())
        && set(&o, "step", &(step as f64).into())
        && set(&o, "weights", &flat(net));
    ok && POOL.with(|p| {
        p.borrow()
            .as_ref()
            .and_then(|p| p.workers.get(index))
            .is_some_and(|w| w.post_message(&o).is_ok())
    })
}

/// Where a lead's helpers' answers go.
pub struct Replies {
    /// PTQ calibration's.
    pub ptq: fn(usize, Reply),
    /// QAT's part gradients.
    pub gradient: fn(usize, GradientReply),
    /// QAT's evaluations.
    pub evaluation: fn(usize, EvaluationReply),
    /// A helper failed to start or died: the lead works alone from then on.
    pub lost: fn(),
}

/// A QAT part's gradient as a helper sent it back: the run, the step, and the gradient (or
/// why there is none).
pub struct GradientReply {
    pub id: u64,
    pub step: usize,
    pub gradient: Result<qat::PartGradient, String>,
}

fn gradient_reply(data: &JsValue) -> Option<GradientReply> {
    let id = field(data, GRADIENT_KEY)?.as_f64()? as u64;
    let step = field(data, "step")?.as_f64()? as usize;
    let gradient = match field(data, "error").and_then(|e| e.as_string()) {
        Some(error) => Err(error),
        None => {
            let array =
                field(data, "grads").and_then(|v| v.dyn_into::<js_sys::Float32Array>().ok());
            let grads = array.as_ref().and_then(unflat);
            // It carries the next part's weights (`send_part`).
            SPARE.with(|s| *s.borrow_mut() = array);
            let digits = field(data, "digits").and_then(|v| v.as_f64());
            let loss = field(data, "loss").and_then(|v| v.as_f64());
            match (grads, digits, loss) {
                (Some(grads), Some(digits), Some(loss)) => Ok(qat::PartGradient {
                    digits: digits as usize,
                    loss: loss as f32,
                    grads,
                }),
                _ => Err("a gradient arrived damaged".into()),
            }
        }
    };
    Some(GradientReply { id, step, gradient })
}

/// Starts the helpers (in a lead worker only, once): one per core beyond the lead's, at least
/// one, at most [`MAX_HELPERS`]. Their answers go to `replies`.
pub fn start(replies: Replies) {
    let Replies {
        ptq: on_reply,
        gradient: on_gradient,
        evaluation: on_evaluation,
        lost: on_lost,
    } = replies;
    if !crate::worker::in_worker() || POOL.with(|p| p.borrow().is_some()) {
        return;
    }
    let global = js_sys::global();
    let glue = js_sys::Reflect::get(&global, &crate::worker::GLUE_KEY.into())
        .ok()
        .and_then(|g| g.as_string());
    let cores = js_sys::Reflect::get(&global, &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"hardwareConcurrency".into()))
        .ok()
        .and_then(|c| c.as_f64())
        .unwrap_or(2.0) as usize;
    let (Some(glue), Some(script)) = (glue, crate::worker::bootstrap_url()) else {
        return;
    };
    let mut workers = Vec::new();
    for index in 0..cores.saturating_sub(1).clamp(1, MAX_HELPERS) {
        let Ok(worker) = crate::worker::spawn(&script, &glue) else {
            break;
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(g) = gradient_reply(&e.data()) {
                return on_gradient(index, g);
            }
            if let Some(r) = evaluation_reply(&e.data()) {
                return on_evaluation(index, r);
            }
            let text = e.data().as_string().unwrap_or_default();
            match serde_json::from_str::<Reply>(&text) {
                Ok(r) => on_reply(index, r),
                // The worker's own messages: loaded, or why it could not (or a panic).
                Err(_) if crate::worker::failure(&text).is_some() => lost(on_lost),
                Err(_) => POOL.with(|p| {
                    if let Some(p) = p.borrow_mut().as_mut() {
                        p.ready[index] = true;
                    }
                }),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| lost(on_lost));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        workers.push(worker);
    }
    let ready = vec![false; workers.len()];
    let has_digits = ready.clone();
    POOL.with(|p| {
        *p.borrow_mut() = Some(Pool {
            workers,
            ready,
            has_digits,
        })
    });
}

/// A helper failed: stop them all (the lead calibrates alone from now on).
fn lost(on_lost: fn()) {
    POOL.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.workers.iter().for_each(Worker::terminate);
            p.workers.clear();
            p.ready.clear();
            p.has_digits.clear();
        }
    });
    on_lost();
}

/// The helpers ready now.
pub fn ready() -> Vec<usize> {
    POOL.with(|p| {
        p.borrow()
            .as_ref()
            .map(|p| (0..p.ready.len()).filter(|&i| p.ready[i]).collect())
            .unwrap_or_default()
    })
}

/// Sends the training split to helper `index` unless it has it (a copy, 6.3 MB: the page fetches
/// it once); false if it cannot be sent.
pub fn send_digits(index: usize, train: &Digits) -> bool {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let Some(p) = p.as_mut() else { return false };
        if p.has_digits.get(index) == Some(&true) {
            return true;
        }
        let Some(w) = p.workers.get(index) else {
            return false;
        };
        let msg = js_sys::Object::new();
        let pixels = js_sys::Uint8Array::from(train.images.as_slice().unwrap_or_default());
        let labels = js_sys::Uint8Array::from(&train.labels[..]);
        let sent = js_sys::Reflect::set(&msg, &PIXELS_KEY.into(), &pixels).is_ok()
            && js_sys::Reflect::set(&msg, &LABELS_KEY.into(), &labels).is_ok()
            && w.post_message(&msg).is_ok();
        p.has_digits[index] = sent;
        sent
    })
}

/// Sends helper `index` one part of a QAT step (run `id`, `step` steps done): the weights its
/// gradient is taken at and the training digits of the part. False if it cannot be sent.
pub fn send_part(index: usize, id: u64, step: usize, fake: &MnistNet, part: &[u32]) -> bool {
    let o = js_sys::Object::new();
    let weights = flat_into(fake, SPARE.with(|s| s.borrow_mut().take()));
    let ok = set(&o, PART_KEY, &(id as f64).into())
        && set(&o, "step", &(step as f64).into())
        && set(&o, "weights", &weights)
        && set(&o, "digits", &js_sys::Uint32Array::from(part));
    ok && POOL.with(|p| {
        p.borrow()
            .as_ref()
            .and_then(|p| p.workers.get(index))
            .is_some_and(|w| {
                w.post_message_with_transfer(&o, &transfer(&weights))
                    .is_ok()
            })
    })
}

/// Sends `help` to helper `index`; false if it cannot be sent.
pub fn send(index: usize, help: &Help) -> bool {
    let json = serde_json::to_string(&crate::worker::Command::PtqHelp(help.clone()))
        .expect("commands serialize");
    POOL.with(|p| {
        p.borrow()
            .as_ref()
            .and_then(|p| p.workers.get(index))
            .is_some_and(|w| w.post_message(&JsValue::from_str(&json)).is_ok())
    })
}
