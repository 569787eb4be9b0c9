//! Static PTQ in a worker of its own: calibration, conversion and evaluation one batch per task,
//! with progress, the newest setting winning. The training digits (6.3 MB) are fetched from the
//! same origin the first time a reader opens PTQ, never at load. Without workers, the same job
//! runs on the main thread in slices between frames.

use crate::browser;
use crate::bundle;
use crate::helpers::{self, Ranges};
use crate::train_digits;
use leptos::prelude::*;
use quant_core::data::Digits;
use quant_core::eval::{EvalTally, Evaluation};
use quant_core::infer::Inference;
use quant_core::model::MnistNet;
use quant_core::observer::BatchSummary;
use quant_core::ptq::{
    self, Calibration, Calibrator, Preset, PtqConfig, PtqEvaluator, PtqReport, SiteBatch,
};
use quant_core::qinfer::IntNet;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Worker;

/// What the page asks: run `config`, fetching the training digits from these URLs if needed.
#[derive(Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub config: PtqConfig,
    pub images_url: String,
    pub labels_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The PTQ worker is loading.
    Starting,
    Downloading,
    Calibrating,
    Evaluating,
}

/// Speeds measured while the job ran, in this browser.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    pub calibration_ms: f64,
    /// Workers that shared the calibration (the PTQ worker and its helpers).
    pub calibration_workers: usize,
    /// Images per second, one thread.
    pub fp32: f64,
    pub simulated: f64,
    pub integer: Option<f64>,
}

#[derive(Clone, Serialize, Deserialize)]
pub enum Msg {
    Progress {
        id: u64,
        stage: Stage,
        done: usize,
        total: usize,
    },
    Done {
        id: u64,
        report: Box<PtqReport>,
        speed: Speed,
    },
    Failed {
        id: u64,
        error: String,
    },
}

// ---- the job (worker or main thread) --------------------------------------------------------

enum State {
    Calibrating(Box<Calibrator>),
    /// Calibration shared with the helpers (crate::helpers): batches handed out in order,
    /// absorbed in order as their summaries arrive.
    Shared(Box<Pipeline>),
    Evaluating {
        cal: Box<Calibration>,
        eval: Box<PtqEvaluator>,
    },
    /// Between the two, for a step that moves the state on.
    Moving,
}

/// A calibration batch handed out and not yet absorbed.
struct Pending {
    digits: std::ops::Range<usize>,
    /// The helper running it, or None: this worker.
    runner: Option<usize>,
    ranges: Option<Ranges>,
    /// Our own batch's activations, until counted.
    own: Option<SiteBatch>,
    /// Its counting ranges have gone out (or it was counted here).
    counting: bool,
    summaries: Option<Box<[BatchSummary; 5]>>,
}

/// Batches in flight, in the order the observers take them.
struct Pipeline {
    cal: Box<Calibrator>,
    pending: std::collections::VecDeque<Pending>,
    /// The first digit not handed out yet.
    next: usize,
    failed: Option<String>,
    /// A helper stopped: its batches and every one after them run again here.
    lost: bool,
}

/// Batches queued on each helper (one running, one waiting), and our own held uncounted.
const IN_FLIGHT: usize = 2;

/// What the runner does after a step.
#[derive(PartialEq)]
enum Flow {
    Next,
    /// Nothing to do until a helper replies.
    Wait,
    Finished,
}

struct Job {
    id: u64,
    config: PtqConfig,
    state: State,
    started: f64,
    calibration_ms: f64,
    /// The most workers a calibration round used.
    workers: usize,
}

/// What the job runs on: the network, the digits, and evaluations that do not depend on the
/// calibration (FP32 and weight-only per preset and bits), kept across settings.
struct Context {
    net: MnistNet,
    test: Digits,
    train: Option<Digits>,
    fp32: Option<Evaluation>,
    fp32_net: Option<Inference>,
    weight_only: HashMap<(Preset, u8), Evaluation>,
}

impl Context {
    fn new() -> Result<Self, String> {
        let b = bundle::load()?;
        Ok(Context {
            net: b.net,
            test: b.test,
            train: None,
            fp32: None,
            fp32_net: None,
            weight_only: HashMap::new(),
        })
    }

    fn evaluate(net: &MnistNet, test: &Digits) -> Evaluation {
        let mut inf = Inference::new(net);
        let mut tally = EvalTally::default();
        tally.add(&mut inf, test.images_f32().view(), &test.labels);
        tally.evaluation()
    }

    /// FP32's evaluation (kept), and the speed here now of its forward pass and of the integer
    /// engine (when the recipe has one): the same 500 test digits, in batches of 100 taken in
    /// turns by the two, so a busy moment of the machine or a cold cache falls on both alike.
    /// (Timed apart — FP32 in one pass after the evaluation, the engine batch by batch during
    /// it, each batch after the simulated network's — the ratio between them moved from 1.2× to
    /// 1.5× from one run to the next.)
    fn speeds(&mut self, int: Option<&IntNet>) -> (Evaluation, f64, Option<f64>) {
        let e = *self
            .fp32
            .get_or_insert_with(|| Self::evaluate(&self.net, &self.test));
        let inf = self
            .fp32_net
            .get_or_insert_with(|| Inference::new(&self.net));
        let images = self.test.images_f32_rows(0..500.min(self.test.len()));
        let images = images.as_slice().expect("standard layout");
        let (mut fp32_ms, mut int_ms) = (0.0, 0.0);
        for batch in images.chunks(100 * quant_core::data::PIXELS) {
            let t = browser::now();
            std::hint::black_box(inf.logits(batch));
            let t2 = browser::now();
            fp32_ms += t2 - t;
            if let Some(int) = int {
                std::hint::black_box(int.logits(batch));
                int_ms += browser::now() - t2;
            }
        }
        let n = (images.len() / quant_core::data::PIXELS) as f64;
        let rate = |ms: f64| n / (ms.max(0.1) / 1000.0);
        (e, rate(fp32_ms), int.map(|_| rate(int_ms)))
    }

    fn weight_only(&mut self, config: &PtqConfig) -> Result<Evaluation, String> {
        let key = (config.preset, config.weight_bits);
        if let Some(e) = self.weight_only.get(&key) {
            return Ok(*e);
        }
        let net = ptq::weight_only(&self.net, config.preset, config.weight_bits)
            .map_err(|e| e.to_string())?;
        let e = Self::evaluate(&net, &self.test);
        self.weight_only.insert(key, e);
        Ok(e)
    }
}

impl Job {
    fn new(req: &Request, available: usize) -> Result<Self, String> {
        let (id, config) = (req.id, req.config);
        Ok(Job {
            id,
            config,
            state: State::Calibrating(Box::new(
                Calibrator::new(config, available).map_err(|e| e.to_string())?,
            )),
            started: browser::now(),
            calibration_ms: 0.0,
            workers: 1,
        })
    }

    /// One batch of work: the message to send, if any, and what comes next.
    fn step(&mut self, cx: &mut Context) -> (Option<Msg>, Flow) {
        match self.try_step(cx) {
            Ok(r) => r,
            Err(error) => (Some(Msg::Failed { id: self.id, error }), Flow::Finished),
        }
    }

    /// Progress through the calibration, and the next state: more batches, or the evaluation.
    fn calibrated(
        &mut self,
        c: Box<Calibrator>,
        net: &MnistNet,
    ) -> Result<(Option<Msg>, Flow), String> {
        let e = |e: quant_core::Error| e.to_string();
        let done = c.done();
        self.state = if done < self.config.calibration {
            State::Calibrating(c)
        } else {
            let cal = c.finish().map_err(e)?;
            self.calibration_ms = browser::now() - self.started;
            let eval = PtqEvaluator::new(net, &cal).map_err(e)?;
            State::Evaluating {
                cal: Box::new(cal),
                eval: Box::new(eval),
            }
        };
        let (id, total) = (self.id, self.config.calibration);
        let msg = Msg::Progress {
            id,
            stage: Stage::Calibrating,
            done,
            total,
        };
        Ok((Some(msg), Flow::Next))
    }

    /// Moves the shared calibration on: counts what can be counted, absorbs what has come
    /// back in order, hands out more batches, and runs one here if this worker has room.
    fn share(
        &mut self,
        mut p: Box<Pipeline>,
        net: &MnistNet,
        train: &Digits,
    ) -> Result<(Option<Msg>, Flow), String> {
        let e = |e: quant_core::Error| e.to_string();
        if let Some(error) = p.failed.take() {
            return Err(format!("a calibration worker failed: {error}"));
        }
        if p.lost {
            if let Some(i) = p.pending.iter().position(|b| b.runner.is_some()) {
                p.next = p.pending[i].digits.start;
                p.pending.truncate(i);
            }
            p.lost = false;
        }
        // Every batch whose predecessors' ranges are all known gets its counting ranges.
        let known: Vec<Ranges> = p.pending.iter().map_while(|b| b.ranges).collect();
        let ranges = p.cal.histogram_ranges(&known);
        for (b, r) in p.pending.iter_mut().zip(ranges) {
            if b.counting {
                continue;
            }
            b.counting = true;
            match (b.runner, b.own.take()) {
                (None, Some(own)) => b.summaries = Some(Box::new(own.summaries(&r).map_err(e)?)),
                (Some(h), _) => {
                    let count = helpers::Help::Count {
                        id: self.id,
                        start: b.digits.start,
                        ranges: r,
                    };
                    p.lost |= !helpers::send(h, &count);
                }
                (None, None) => return Err("a calibration batch was lost".into()),
            }
        }
        let mut absorbed = false;
        while let Some(s) = p.pending.front().and_then(|b| b.summaries.as_ref()) {
            let digits = p.pending[0].digits.len();
            p.cal.absorb(digits, s, None).map_err(e)?;
            p.pending.pop_front();
            absorbed = true;
        }
        let total = self.config.calibration;
        if p.pending.is_empty() && p.next >= total {
            return self.calibrated(p.cal, net);
        }
        // A helper always has a batch queued behind the one it runs (counting is quick, and it
        // must not idle while we run ours); we hold at most two of our own, uncounted.
        let running = |p: &Pipeline, h: usize| {
            p.pending
                .iter()
                .filter(|b| b.runner == Some(h) && b.ranges.is_none())
                .count()
        };
        let uncounted = |p: &Pipeline| p.pending.iter().filter(|b| b.own.is_some()).count();
        let take = |p: &mut Pipeline| {
            let d = p.next..(p.next + ptq::CALIBRATION_BATCH).min(total);
            p.next = d.end;
            d
        };
        // Batch k is worker k mod (1 + helpers)'s (0 is us): an even share each, so no one is
        // left with a queue of batches at the end while the others have none.
        let ready = helpers::ready();
        let mut flow = Flow::Wait;
        while !p.lost && p.next < total {
            let k = p.next / ptq::CALIBRATION_BATCH % (1 + ready.len());
            if k > 0 {
                let h = ready[k - 1];
                if running(&p, h) >= IN_FLIGHT {
                    break;
                }
                let d = take(&mut p);
                let run = helpers::Help::Run {
                    id: self.id,
                    digits: (d.start, d.end),
                };
                if !helpers::send_digits(h, train) || !helpers::send(h, &run) {
                    p.lost = true;
                }
                self.workers = self.workers.max(2 + h);
                p.pending.push_back(Pending {
                    digits: d,
                    runner: Some(h),
                    ranges: None,
                    own: None,
                    counting: false,
                    summaries: None,
                });
            } else {
                if uncounted(&p) >= IN_FLIGHT {
                    break;
                }
                let d = take(&mut p);
                let own = p.cal.run_batch(net, train, d.clone()).map_err(e)?;
                p.pending.push_back(Pending {
                    digits: d,
                    runner: None,
                    ranges: Some(own.ranges),
                    own: Some(own),
                    counting: false,
                    summaries: None,
                });
                // Back to the event loop: the helpers' replies wait behind this step.
                flow = Flow::Next;
                break;
            }
        }
        if p.lost {
            flow = Flow::Next;
        }
        let msg = absorbed.then(|| Msg::Progress {
            id: self.id,
            stage: Stage::Calibrating,
            done: p.cal.done(),
            total,
        });
        self.state = State::Shared(p);
        Ok((msg, flow))
    }

    fn try_step(&mut self, cx: &mut Context) -> Result<(Option<Msg>, Flow), String> {
        let id = self.id;
        let e = |e: quant_core::Error| e.to_string();
        let train = cx.train.as_ref().ok_or("no training digits")?;
        match std::mem::replace(&mut self.state, State::Moving) {
            State::Calibrating(mut c) => {
                let share = c.summaries_suffice()
                    && c.batches(2).len() == 2
                    && !helpers::ready().is_empty();
                if share {
                    let next = c.done();
                    let p = Pipeline {
                        cal: c,
                        pending: Default::default(),
                        next,
                        failed: None,
                        lost: false,
                    };
                    return self.share(Box::new(p), &cx.net, train);
                }
                c.step(&cx.net, train).map_err(e)?;
                self.calibrated(c, &cx.net)
            }
            State::Shared(p) => self.share(p, &cx.net, train),
            State::Evaluating { cal, mut eval } => {
                if eval.step(&cx.test, &browser::now) {
                    let (done, total) = (eval.done(), cx.test.len());
                    self.state = State::Evaluating { cal, eval };
                    return Ok((
                        Some(Msg::Progress {
                            id,
                            stage: Stage::Evaluating,
                            done,
                            total,
                        }),
                        Flow::Next,
                    ));
                }
                let (fp32, fp32_rate, integer) = cx.speeds(eval.integer_net());
                let weight_only = cx.weight_only(&self.config)?;
                let (simulated, _) = eval.rates();
                let speed = Speed {
                    calibration_ms: self.calibration_ms,
                    calibration_workers: self.workers,
                    fp32: fp32_rate,
                    simulated,
                    integer,
                };
                let report = Box::new(eval.finish(&cx.net, &cal, fp32, weight_only));
                Ok((Some(Msg::Done { id, report, speed }), Flow::Finished))
            }
            State::Moving => Err("the PTQ job was interrupted".into()),
        }
    }
}

// ---- the runner: in the PTQ worker, or on the main thread when workers cannot start ----------

/// Where a job's messages go.
type Deliver = Rc<dyn Fn(Msg)>;

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
    static JOB: RefCell<Option<Job>> = const { RefCell::new(None) };
    static SCHEDULED: RefCell<bool> = const { RefCell::new(false) };
    /// Where messages go: the page (from a worker), or the page's handler directly.
    static DELIVER: RefCell<Option<Deliver>> = const { RefCell::new(None) };
}

fn deliver(msg: Msg) {
    if let Some(d) = DELIVER.with(|d| d.borrow().clone()) {
        d(msg);
    }
}

/// Runs `req`, replacing any job in progress.
pub fn accept(req: Request, to: Deliver) {
    DELIVER.with(|d| *d.borrow_mut() = Some(to));
    let ready = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            match Context::new() {
                Ok(cx) => {
                    helpers::start(helpers::Replies {
                        ptq: helper_replied,
                        gradient: |_, _| {},
                        evaluation: |_, _| {},
                        lost: helpers_lost,
                    });
                    *c = Some(cx)
                }
                Err(error) => {
                    deliver(Msg::Failed { id: req.id, error });
                    return None;
                }
            }
        }
        c.as_ref().map(|c| c.train.is_some())
    });
    match ready {
        None => {}
        Some(true) => start(req),
        Some(false) => {
            deliver(Msg::Progress {
                id: req.id,
                stage: Stage::Downloading,
                done: 0,
                total: 1,
            });
            download(req);
        }
    }
}

/// Fetches the training split (both files), then starts the job.
fn download(req: Request) {
    let (images, labels) = (req.images_url.clone(), req.labels_url.clone());
    train_digits::fetch(
        &images,
        &labels,
        |_, _| {},
        move |train| match train {
            Ok(train) => {
                CONTEXT.with(|c| {
                    if let Some(c) = c.borrow_mut().as_mut() {
                        c.train = Some(train);
                    }
                });
                start(req);
            }
            Err(error) => deliver(Msg::Failed { id: req.id, error }),
        },
    );
}

fn start(req: Request) {
    let available = CONTEXT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|c| c.train.as_ref().map(Digits::len))
    });
    match Job::new(&req, available.unwrap_or(0)) {
        Ok(job) => {
            JOB.with(|j| *j.borrow_mut() = Some(job));
            schedule();
        }
        Err(error) => deliver(Msg::Failed { id: req.id, error }),
    }
}

/// The next step after any message waiting (a newer request wins at the next batch).
fn schedule() {
    if SCHEDULED.with(|s| s.replace(true)) {
        return;
    }
    later(tick);
}

/// `setTimeout(f, 0)` on whatever global this is (a worker has no `window`).
pub(crate) fn later(f: fn()) {
    let global = js_sys::global();
    let Ok(set) = js_sys::Reflect::get(&global, &"setTimeout".into()) else {
        return;
    };
    let Ok(set) = set.dyn_into::<js_sys::Function>() else {
        return;
    };
    let _ = set.call2(&global, &Closure::once_into_js(f), &JsValue::from(0));
}

fn tick() {
    SCHEDULED.with(|s| *s.borrow_mut() = false);
    let Some(mut job) = JOB.with(|j| j.borrow_mut().take()) else {
        return;
    };
    let step = CONTEXT.with(|c| c.borrow_mut().as_mut().map(|cx| job.step(cx)));
    let Some((msg, flow)) = step else { return };
    if flow != Flow::Finished {
        // Put it back unless a newer request replaced it meanwhile (it cannot: one thread).
        JOB.with(|j| {
            let mut j = j.borrow_mut();
            if j.is_none() {
                *j = Some(job);
            }
        });
        if flow == Flow::Next {
            schedule();
        }
    }
    if let Some(msg) = msg {
        deliver(msg);
    }
}

/// A helper's reply: kept with its batch (a reply to an older request is dropped).
fn helper_replied(helper: usize, reply: helpers::Reply) {
    use helpers::Reply;
    let moved = JOB.with(|j| {
        let mut j = j.borrow_mut();
        let Some(job) = j.as_mut() else { return false };
        let State::Shared(p) = &mut job.state else {
            return false;
        };
        let (id, start) = match &reply {
            Reply::Ranges { id, start, .. } | Reply::Summaries { id, start, .. } => {
                (*id, Some(*start))
            }
            Reply::Failed { id, .. } => (*id, None),
        };
        if id != job.id {
            return false;
        }
        let batch = p
            .pending
            .iter_mut()
            .find(|b| b.runner == Some(helper) && Some(b.digits.start) == start);
        match (reply, batch) {
            (Reply::Ranges { ranges, .. }, Some(b)) => b.ranges = Some(ranges),
            (Reply::Summaries { summaries, .. }, Some(b)) => b.summaries = Some(summaries),
            (Reply::Failed { error, .. }, _) => p.failed = Some(error),
            _ => return false,
        }
        true
    });
    if moved {
        schedule();
    }
}

/// A helper stopped: the calibration goes on without the helpers.
fn helpers_lost() {
    JOB.with(|j| {
        if let Some(Job {
            state: State::Shared(p),
            ..
        }) = j.borrow_mut().as_mut()
        {
            p.lost = true;
        }
    });
    schedule();
}

// ---- the page side ----------------------------------------------------------------------------

/// What the PTQ panel shows.
#[derive(Clone, Copy)]
pub struct PtqSignals {
    pub report: RwSignal<Option<(PtqReport, Speed)>>,
    pub progress: RwSignal<Option<(Stage, usize, usize)>>,
    pub error: RwSignal<Option<String>>,
}

impl PtqSignals {
    pub fn new() -> Self {
        PtqSignals {
            report: RwSignal::new(None),
            progress: RwSignal::new(None),
            error: RwSignal::new(None),
        }
    }
}

struct Page {
    worker: Option<Worker>,
    /// The worker has loaded (its first message); until then the newest request waits here.
    ready: bool,
    pending: Option<Request>,
    current: u64,
    signals: PtqSignals,
}

thread_local! {
    static PAGE: RefCell<Option<Page>> = const { RefCell::new(None) };
}

fn received(msg: Msg) {
    PAGE.with(|p| {
        let p = p.borrow();
        let Some(p) = p.as_ref() else { return };
        let s = p.signals;
        match msg {
            Msg::Progress {
                id,
                stage,
                done,
                total,
            } if id == p.current => s.progress.set(Some((stage, done, total))),
            Msg::Done { id, report, speed } if id == p.current => {
                s.progress.set(None);
                s.error.set(None);
                s.report.set(Some((*report, speed)));
            }
            Msg::Failed { id, error } if id == p.current => {
                s.progress.set(None);
                s.error.set(Some(error));
            }
            _ => {}
        }
    });
}

/// Runs `config` (in the PTQ worker, started on first use) and shows the outcome in `signals`.
pub fn request(config: PtqConfig, signals: PtqSignals) {
    let id = PAGE.with(|p| {
        let mut p = p.borrow_mut();
        let page = p.get_or_insert_with(|| Page {
            worker: crate::worker::spawn_worker(|data| {
                match data
                    .as_string()
                    .and_then(|s| serde_json::from_str::<Msg>(&s).ok())
                {
                    Some(msg) => received(msg),
                    // The worker's first message says it has loaded (or why it could not).
                    None => worker_ready(),
                }
            }),
            ready: false,
            pending: None,
            current: 0,
            signals,
        });
        page.current += 1;
        page.current
    });
    let req = Request {
        id,
        config,
        images_url: train_digits::url(train_digits::IMAGES),
        labels_url: train_digits::url(train_digits::LABELS),
    };
    signals.progress.set(Some((Stage::Starting, 0, 1)));
    let local = PAGE.with(|p| {
        let mut p = p.borrow_mut();
        let page = p.as_mut().expect("made above");
        match (&page.worker, page.ready) {
            (None, _) => Some(req),
            (Some(w), true) => {
                send(w, req, signals);
                None
            }
            (Some(_), false) => {
                page.pending = Some(req);
                None
            }
        }
    });
    // No worker: the same job on this thread, one batch per task.
    if let Some(req) = local {
        accept(req, Rc::new(received));
    }
}

fn send(w: &Worker, req: Request, signals: PtqSignals) {
    let json = serde_json::to_string(&crate::worker::Command::Ptq(req)).expect("serializes");
    if w.post_message(&JsValue::from_str(&json)).is_err() {
        signals
            .error
            .set(Some("the PTQ worker is not answering".into()));
    }
}

fn worker_ready() {
    PAGE.with(|p| {
        let mut p = p.borrow_mut();
        let Some(page) = p.as_mut() else { return };
        if page.ready {
            return;
        }
        page.ready = true;
        if let (Some(w), Some(req)) = (&page.worker, page.pending.take()) {
            send(w, req, page.signals);
        }
    });
}

/// The worker side of [`request`]: called by the worker's command handler.
pub fn serve(req: Request) {
    accept(
        req,
        Rc::new(|msg: Msg| {
            let json = serde_json::to_string(&msg).expect("messages serialize");
            let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
            let _ = scope.post_message(&JsValue::from_str(&json));
        }),
    );
}
