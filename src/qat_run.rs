//! QAT in a worker of its own: the training digits are fetched when the reader presses Start
//! (never at load), then the worker runs one training step per task — so Pause, Resume and a
//! new run are heard between steps — and every [`EVERY`] steps evaluates the fake-quantized
//! network on the 2,000 test digits and sends the point and the weights as they are. Without
//! workers, the same run goes on the main thread, one step per task.

use crate::browser;
use crate::bundle;
use crate::helpers;
use crate::train_digits;
use leptos::prelude::*;
use ndarray::Array2;
use quant_core::data::Digits;
use quant_core::eval::{evaluate, Evaluation};
use quant_core::model::MnistNet;
use quant_core::qat::{
    Curve, PartGradient, Plan, Point, Qat, QatConfig, QatSetting, WeightObserver,
};
use quant_core::recipe::Recipe;
use quant_core::weights;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Worker;

/// Test accuracy every this many steps: 20 points over the essay's 500 steps, each evaluation
/// (2,000 digits) a few percent of the time the steps between take.
pub const EVERY: usize = 25;

/// Where the weights ride in a message of their own (bytes, not JSON).
const WEIGHTS_KEY: &str = "qatWeights";
const ID_KEY: &str = "qatId";

#[derive(Clone, Serialize, Deserialize)]
pub struct Start {
    pub id: u64,
    /// The recipe as its URL query (the one value that names a setting everywhere).
    pub recipe: String,
    pub steps: usize,
    pub learning_rate: f32,
    pub lsq: bool,
    pub weight_observer: WeightObserver,
    pub activation_bits: Option<u8>,
    pub images_url: String,
    pub labels_url: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub enum Request {
    Start(Start),
    Pause(u64),
    Resume(u64),
    /// Forget the run.
    Stop(u64),
}

#[derive(Clone, Serialize, Deserialize)]
pub enum Msg {
    Downloading {
        id: u64,
        loaded: f64,
        /// 0 when the server does not say.
        total: f64,
    },
    Stepped {
        id: u64,
        step: usize,
        /// Training images per second so far (the steps' own time, evaluations not counted).
        rate: f64,
        /// The same over the steps both workers computed: while the helper evaluates the test
        /// digits (every [`EVERY`] steps) this worker trains alone.
        shared_rate: Option<f64>,
        /// Workers that computed this step (this one, and a helper).
        workers: usize,
    },
    Point {
        id: u64,
        point: Point,
        /// Evaluated by the helper worker (while this one trained on), not here.
        by_helper: bool,
    },
    /// The FP32 network on the same test digits: the ceiling.
    Fp32 {
        id: u64,
        test: Evaluation,
    },
    /// The FP32 weights as trained so far (safetensors, PyTorch's names). From a worker these
    /// travel as bytes beside the JSON messages.
    Weights {
        id: u64,
        /// After this many steps.
        step: usize,
        bytes: Vec<u8>,
    },
    Finished {
        id: u64,
    },
    Failed {
        id: u64,
        error: String,
    },
}

// ---- the run (worker or main thread) --------------------------------------------------------

struct Context {
    net: MnistNet,
    test_images: Array2<f32>,
    test_labels: Vec<u8>,
    train: Option<Digits>,
    fp32: Option<Evaluation>,
}

struct Run {
    id: u64,
    qat: Qat,
    curve: Curve,
    paused: bool,
    /// Every training step's time and images, and those of the steps a helper shared.
    steps: Tally,
    shared: Tally,
    /// A step whose other part a helper is computing.
    in_flight: Option<InFlight>,
    /// Points not yet sent, in order: each waits for its test evaluation (from the helper) or
    /// has it already (computed here behind one that waits).
    awaiting: std::collections::VecDeque<Awaiting>,
    /// When the last [`Msg::Stepped`] went out (ms).
    last_stepped: f64,
}

/// Progress goes to the page at most this often (ms). A message every step made the page redo
/// its views ~35 times a second, on the same two cores the workers train on (with this and the
/// charts redrawn only for new points: 1,970 → 2,040 img/s).
const STEPPED_EVERY_MS: f64 = 200.0;

/// Time spent in training steps (ms), and the images they saw.
#[derive(Default)]
struct Tally {
    ms: f64,
    images: usize,
}

impl Tally {
    fn add(&mut self, ms: f64, images: usize) {
        self.ms += ms;
        self.images += images;
    }

    /// Images per second, once a step is counted.
    fn rate(&self) -> Option<f64> {
        (self.images > 0).then(|| self.images as f64 / (self.ms.max(0.1) / 1000.0))
    }
}

struct Awaiting {
    step: usize,
    train_loss: Option<f64>,
    scales: Option<[f32; 4]>,
    /// The network evaluated, kept to evaluate here if the helper is lost.
    net: MnistNet,
    test: Option<(quant_core::eval::Evaluation, bool)>,
}

struct InFlight {
    plan: Plan,
    /// This worker's part.
    local: PartGradient,
    started: f64,
}

type Deliver = Rc<dyn Fn(Msg)>;

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
    static SCHEDULED: RefCell<bool> = const { RefCell::new(false) };
    static DELIVER: RefCell<Option<Deliver>> = const { RefCell::new(None) };
}

fn deliver(msg: Msg) {
    if let Some(d) = DELIVER.with(|d| d.borrow().clone()) {
        d(msg);
    }
}

fn accept(req: Request, to: Deliver) {
    DELIVER.with(|d| *d.borrow_mut() = Some(to));
    let with_run = |id: u64, f: fn(&mut Run)| {
        RUN.with(|r| {
            if let Some(run) = r.borrow_mut().as_mut().filter(|r| r.id == id) {
                f(run)
            }
        })
    };
    match req {
        Request::Pause(id) => with_run(id, |r| r.paused = true),
        Request::Resume(id) => {
            with_run(id, |r| r.paused = false);
            schedule();
        }
        Request::Stop(id) => RUN.with(|r| {
            let mut r = r.borrow_mut();
            if r.as_ref().is_some_and(|r| r.id == id) {
                *r = None;
            }
        }),
        Request::Start(start) => {
            RUN.with(|r| *r.borrow_mut() = None);
            let ready = CONTEXT.with(|c| {
                let mut c = c.borrow_mut();
                if c.is_none() {
                    helpers::start(helpers::Replies {
                        ptq: |_, _| {},
                        gradient: helper_replied,
                        evaluation: helper_evaluated,
                        lost: helpers_lost,
                    });
                    let b = bundle::load()?;
                    *c = Some(Context {
                        net: b.net,
                        test_images: b.test.images_f32(),
                        test_labels: b.test.labels,
                        train: None,
                        fp32: None,
                    });
                }
                Ok::<_, String>(c.as_ref().is_some_and(|c| c.train.is_some()))
            });
            match ready {
                Err(error) => deliver(Msg::Failed {
                    id: start.id,
                    error,
                }),
                Ok(true) => begin(start),
                Ok(false) => download(start),
            }
        }
    }
}

fn download(start: Start) {
    let id = start.id;
    let (images, labels) = (start.images_url.clone(), start.labels_url.clone());
    train_digits::fetch(
        &images,
        &labels,
        move |loaded, total| deliver(Msg::Downloading { id, loaded, total }),
        move |train| match train {
            Ok(train) => {
                CONTEXT.with(|c| {
                    if let Some(c) = c.borrow_mut().as_mut() {
                        c.train = Some(train);
                    }
                });
                begin(start);
            }
            Err(error) => deliver(Msg::Failed { id, error }),
        },
    );
}

/// The point at the run's current step, and the weights as they are. The test evaluation goes
/// to the helper when it is free (this worker trains on meanwhile, alone); with quantized
/// activations (whose observers live here) or no helper, it runs here.
fn report_point(run: &mut Run, cx: &Context) -> Result<(), String> {
    let e = |e: quant_core::Error| e.to_string();
    let step = run.qat.steps_done();
    let bytes = weights::to_safetensors(run.qat.weights(), HashMap::new()).map_err(e)?;
    deliver(Msg::Weights {
        id: run.id,
        step,
        bytes,
    });
    let net = run.qat.quantized().map_err(e)?;
    let mut point = Awaiting {
        step,
        train_loss: run.curve.close(),
        scales: run.qat.scales(),
        net,
        test: None,
    };
    let plain = run.qat.config().activation_bits.is_none();
    let sent = plain
        && run.awaiting.is_empty()
        && helpers::ready()
            .first()
            .is_some_and(|&h| helpers::send_evaluation(h, run.id, step, &point.net));
    if !sent {
        let test = run
            .qat
            .evaluate(cx.test_images.view(), &cx.test_labels)
            .map_err(e)?;
        point.test = Some((test, false));
    }
    run.awaiting.push_back(point);
    flush(run);
    Ok(())
}

/// Sends the points whose evaluations are in, in order.
fn flush(run: &mut Run) {
    while let Some((test, by_helper)) = run.awaiting.front().and_then(|a| a.test) {
        let a = run.awaiting.pop_front().expect("checked above");
        let point = run.curve.push(a.step, a.train_loss, test, a.scales);
        deliver(Msg::Point {
            id: run.id,
            point,
            by_helper,
        });
    }
}

/// The run is finished once its last step is done and its last point is sent.
fn finish_if_done(run: &Run) {
    if run.qat.finished() && run.awaiting.is_empty() && run.in_flight.is_none() {
        deliver(Msg::Finished { id: run.id });
    }
}

/// The helper's evaluation: its point (and any computed here behind it) goes out.
fn helper_evaluated(_helper: usize, reply: helpers::EvaluationReply) {
    let Some(mut run) = RUN.with(|r| r.borrow_mut().take()) else {
        return;
    };
    if run.id != reply.id {
        return keep(run);
    }
    match reply.result {
        Ok(test) => {
            if let Some(a) = run
                .awaiting
                .iter_mut()
                .find(|a| a.step == reply.step && a.test.is_none())
            {
                a.test = Some((test, true));
            }
            flush(&mut run);
            finish_if_done(&run);
            keep(run);
            // Training goes on with the helper free again.
            schedule();
        }
        Err(error) => deliver(Msg::Failed {
            id: run.id,
            error: format!("the evaluating worker failed: {error}"),
        }),
    }
}

fn begin(start: Start) {
    let id = start.id;
    let made = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        let cx = c.as_mut().ok_or("the QAT worker lost its digits")?;
        let fp32 = match cx.fp32 {
            Some(e) => e,
            None => evaluate(&cx.net, cx.test_images.view(), &cx.test_labels)
                .map_err(|e| e.to_string())?,
        };
        cx.fp32 = Some(fp32);
        deliver(Msg::Fp32 { id, test: fp32 });
        let train = cx.train.as_ref().ok_or("no training digits")?;
        let recipe: Recipe = start
            .recipe
            .parse()
            .map_err(|e: quant_core::Error| e.to_string())?;
        let config = QatConfig {
            learning_rate: start.learning_rate,
            lsq: start.lsq,
            weight_observer: start.weight_observer,
            activation_bits: start.activation_bits,
            ..QatConfig::new(recipe, start.steps)
        };
        let qat = Qat::new(&cx.net, train, config).map_err(|e| e.to_string())?;
        let mut run = Run {
            id,
            qat,
            curve: Curve::default(),
            paused: false,
            steps: Tally::default(),
            shared: Tally::default(),
            in_flight: None,
            awaiting: Default::default(),
            last_stepped: f64::NEG_INFINITY,
        };
        report_point(&mut run, cx)?;
        Ok::<_, String>(run)
    });
    match made {
        Ok(run) => {
            RUN.with(|r| *r.borrow_mut() = Some(run));
            schedule();
        }
        Err(error) => deliver(Msg::Failed { id, error }),
    }
}

fn schedule() {
    if SCHEDULED.with(|s| s.replace(true)) {
        return;
    }
    crate::ptq_run::later(tick);
}

/// Starts a step: one part goes to a helper (when one is ready) while this worker computes the
/// other, or this worker computes both.
fn tick() {
    SCHEDULED.with(|s| *s.borrow_mut() = false);
    let Some(mut run) = RUN.with(|r| r.borrow_mut().take()) else {
        return;
    };
    if run.paused || run.qat.finished() || run.in_flight.is_some() {
        RUN.with(|r| *r.borrow_mut() = Some(run));
        return;
    }
    let started = browser::now();
    let outcome = CONTEXT.with(|c| {
        let c = c.borrow();
        let cx = c.as_ref().ok_or("the QAT worker lost its digits")?;
        let train = cx.train.as_ref().ok_or("no training digits")?;
        let e = |e: quant_core::Error| e.to_string();
        let plan = run.qat.plan().map_err(e)?;
        // A helper busy evaluating would answer the part only after: this worker takes both.
        let helper_free = run.awaiting.is_empty();
        let helper = helpers::ready().first().copied().filter(|&h| {
            helper_free
                && plan.parts.len() == 2
                && helpers::send_digits(h, train)
                && helpers::send_part(h, run.id, plan.step, &plan.fake, &plan.parts[1])
        });
        let local = run.qat.gradient(&plan, 0).map_err(e)?;
        if helper.is_some() {
            run.in_flight = Some(InFlight {
                plan,
                local,
                started,
            });
            return Ok(None);
        }
        let mut parts = vec![local];
        for p in 1..plan.parts.len() {
            parts.push(run.qat.gradient(&plan, p).map_err(e)?);
        }
        Ok::<_, String>(Some((plan, parts)))
    });
    match outcome {
        // Waiting for the helper's part.
        Ok(None) => keep(run),
        Ok(Some((plan, parts))) => finish_step(run, plan, &parts, started, 1),
        Err(error) => deliver(Msg::Failed { id: run.id, error }),
    }
}

/// Puts the run back, unless a newer request replaced it meanwhile.
fn keep(run: Run) {
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_none() {
            *r = Some(run);
        }
    });
}

/// Ends a step with every part's gradient: Adam, the step's report, the point when one is due.
fn finish_step(mut run: Run, plan: Plan, parts: &[PartGradient], started: f64, workers: usize) {
    let id = run.id;
    let outcome = CONTEXT.with(|c| {
        let c = c.borrow();
        let cx = c.as_ref().ok_or("the QAT worker lost its digits")?;
        let loss = run.qat.apply(plan, parts).map_err(|e| e.to_string())?;
        let (took, images) = (browser::now() - started, run.qat.config().batch_size);
        run.steps.add(took, images);
        if workers > 1 {
            run.shared.add(took, images);
        }
        run.curve.add_loss(loss);
        let step = run.qat.steps_done();
        let rate = run.steps.rate().unwrap_or(0.0);
        let shared_rate = run.shared.rate();
        let point_due = step.is_multiple_of(EVERY) || run.qat.finished();
        let now = browser::now();
        // Paused, the page shows the step the run holds at.
        if point_due || run.paused || now - run.last_stepped >= STEPPED_EVERY_MS {
            run.last_stepped = now;
            deliver(Msg::Stepped {
                id,
                step,
                rate,
                shared_rate,
                workers,
            });
        }
        if point_due {
            report_point(&mut run, cx)?;
        }
        Ok::<_, String>(run.qat.finished())
    });
    match outcome {
        Ok(finished) => {
            if finished {
                finish_if_done(&run);
            }
            keep(run);
            if !finished {
                schedule();
            }
        }
        Err(error) => deliver(Msg::Failed { id, error }),
    }
}

/// A helper's part: the step it belongs to ends (a part of an older run or step is dropped).
fn helper_replied(_helper: usize, reply: helpers::GradientReply) {
    let Some(mut run) = RUN.with(|r| r.borrow_mut().take()) else {
        return;
    };
    let ours = run.id == reply.id
        && run
            .in_flight
            .as_ref()
            .is_some_and(|f| f.plan.step == reply.step);
    if !ours {
        return keep(run);
    }
    let f = run.in_flight.take().expect("checked above");
    match reply.gradient {
        Ok(other) => finish_step(run, f.plan, &[f.local, other], f.started, 2),
        Err(error) => deliver(Msg::Failed {
            id: run.id,
            error: format!("a training worker failed: {error}"),
        }),
    }
}

/// The helper stopped: its part of the step in flight is computed here, and every step after.
fn helpers_lost() {
    let Some(mut run) = RUN.with(|r| r.borrow_mut().take()) else {
        return;
    };
    // Evaluations it had: here, now.
    let evaluated = CONTEXT.with(|c| {
        let c = c.borrow();
        let cx = c.as_ref().ok_or("the QAT worker lost its digits")?;
        for a in run.awaiting.iter_mut().filter(|a| a.test.is_none()) {
            let test = quant_core::eval::evaluate(&a.net, cx.test_images.view(), &cx.test_labels)
                .map_err(|e| e.to_string())?;
            a.test = Some((test, false));
        }
        Ok::<_, String>(())
    });
    if let Err(error) = evaluated {
        return deliver(Msg::Failed { id: run.id, error });
    }
    flush(&mut run);
    if run.in_flight.is_none() {
        finish_if_done(&run);
    }
    let Some(f) = run.in_flight.take() else {
        return keep(run);
    };
    match run.qat.gradient(&f.plan, 1) {
        Ok(other) => finish_step(run, f.plan, &[f.local, other], f.started, 1),
        Err(e) => deliver(Msg::Failed {
            id: run.id,
            error: e.to_string(),
        }),
    }
}

/// The worker side: called by the worker's command handler.
pub fn serve(req: Request) {
    accept(
        req,
        Rc::new(|msg: Msg| {
            let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
            let _ = match msg {
                Msg::Weights { id, step, bytes } => {
                    let o = js_sys::Object::new();
                    let a = js_sys::Uint8Array::from(&bytes[..]);
                    let _ = js_sys::Reflect::set(&o, &WEIGHTS_KEY.into(), &a);
                    let _ = js_sys::Reflect::set(&o, &ID_KEY.into(), &(id as f64).into());
                    let _ = js_sys::Reflect::set(&o, &"step".into(), &(step as f64).into());
                    scope.post_message(&o)
                }
                msg => {
                    let json = serde_json::to_string(&msg).expect("messages serialize");
                    scope.post_message(&JsValue::from_str(&json))
                }
            };
        }),
    );
}

// ---- the page side ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Status {
    Starting,
    /// Bytes loaded and expected (0 if unknown).
    Downloading(f64, f64),
    Training,
    Paused,
    Finished,
}

/// The fine-tuned weights: the file as downloaded, and the network it holds.
pub struct Trained {
    pub bytes: Vec<u8>,
    pub net: MnistNet,
    /// After how many steps (the weights come with each point of the curve).
    pub step: usize,
}

/// A run as the page sees it.
#[derive(Clone)]
pub struct RunView {
    pub id: u64,
    pub recipe: Recipe,
    pub setting: QatSetting,
    pub status: Status,
    pub step: usize,
    pub rate: Option<f64>,
    pub shared_rate: Option<f64>,
    /// Workers that computed the last step.
    pub workers: usize,
    /// Points whose test evaluation the helper worker made.
    pub evaluated_by_helper: usize,
    pub points: Vec<Point>,
    pub fp32: Option<Evaluation>,
    pub weights: Option<Arc<Trained>>,
    /// When Start was pressed (performance.now, ms), and how long until the run finished.
    pub started: f64,
    pub seconds: Option<f64>,
}

#[derive(Clone, Copy)]
pub struct QatSignals {
    pub run: RwSignal<Option<RunView>>,
    pub error: RwSignal<Option<String>>,
}

impl QatSignals {
    pub fn new() -> Self {
        QatSignals {
            run: RwSignal::new(None),
            error: RwSignal::new(None),
        }
    }
}

struct Page {
    worker: Option<Worker>,
    ready: bool,
    waiting: Vec<Request>,
    current: u64,
    signals: QatSignals,
}

thread_local! {
    static PAGE: RefCell<Option<Page>> = const { RefCell::new(None) };
}

fn received(msg: Msg) {
    let Some((current, s)) = PAGE.with(|p| p.borrow().as_ref().map(|p| (p.current, p.signals)))
    else {
        return;
    };
    let update = |id: u64, f: &dyn Fn(&mut RunView)| {
        if id == current {
            s.run.update(|r| {
                if let Some(r) = r.as_mut().filter(|r| r.id == id) {
                    f(r)
                }
            });
        }
    };
    match msg {
        Msg::Downloading { id, loaded, total } => {
            update(id, &|r| r.status = Status::Downloading(loaded, total))
        }
        Msg::Stepped {
            id,
            step,
            rate,
            shared_rate,
            workers,
        } => update(id, &|r| {
            r.step = step;
            r.rate = Some(rate);
            r.shared_rate = shared_rate;
            r.workers = workers;
            if r.status != Status::Paused {
                r.status = Status::Training;
            }
        }),
        Msg::Point {
            id,
            point,
            by_helper,
        } => update(id, &|r| {
            r.points.push(point);
            r.evaluated_by_helper += usize::from(by_helper);
            if r.status != Status::Paused {
                r.status = Status::Training;
            }
        }),
        Msg::Fp32 { id, test } => update(id, &|r| r.fp32 = Some(test)),
        Msg::Weights { id, step, bytes } => match weights::from_safetensors(&bytes) {
            Ok(net) => {
                let trained = Arc::new(Trained { bytes, net, step });
                update(id, &|r| r.weights = Some(trained.clone()))
            }
            Err(e) => s
                .error
                .set(Some(format!("the fine-tuned weights are unreadable: {e}"))),
        },
        Msg::Finished { id } => update(id, &|r| {
            r.status = Status::Finished;
            r.seconds = Some((browser::now() - r.started) / 1000.0);
        }),
        Msg::Failed { id, error } if id == current => s.error.set(Some(error)),
        Msg::Failed { .. } => {}
    }
}

/// A message from the QAT worker: JSON, the weights' bytes, or its first report (loaded).
fn from_worker(data: JsValue) {
    if let Some(text) = data.as_string() {
        if let Ok(msg) = serde_json::from_str::<Msg>(&text) {
            return received(msg);
        }
        if let Some(why) = crate::worker::failure(&text) {
            return PAGE.with(|p| {
                if let Some(p) = p.borrow().as_ref() {
                    p.signals
                        .error
                        .set(Some(format!("the QAT worker stopped: {why}")));
                }
            });
        }
        return worker_ready();
    }
    let get = |key: &str| js_sys::Reflect::get(&data, &key.into()).ok();
    let bytes = get(WEIGHTS_KEY).and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok());
    let id = get(ID_KEY).and_then(|v| v.as_f64());
    let step = get("step").and_then(|v| v.as_f64());
    if let (Some(bytes), Some(id), Some(step)) = (bytes, id, step) {
        received(Msg::Weights {
            id: id as u64,
            step: step as usize,
            bytes: bytes.to_vec(),
        });
    }
}

fn worker_ready() {
    let waiting = PAGE.with(|p| {
        let mut p = p.borrow_mut();
        let page = p.as_mut()?;
        page.ready = true;
        Some(std::mem::take(&mut page.waiting))
    });
    for req in waiting.unwrap_or_default() {
        send(req);
    }
}

/// Sends `req` to the worker (waiting until it has loaded), or runs it here without one.
fn send(req: Request) {
    let local = PAGE.with(|p| {
        let mut p = p.borrow_mut();
        let page = p.as_mut()?;
        match (&page.worker, page.ready) {
            (None, _) => Some(req),
            (Some(w), true) => {
                let json =
                    serde_json::to_string(&crate::worker::Command::Qat(req)).expect("serializes");
                if w.post_message(&JsValue::from_str(&json)).is_err() {
                    page.signals
                        .error
                        .set(Some("the QAT worker is not answering".into()));
                }
                None
            }
            (Some(_), false) => {
                page.waiting.push(req);
                None
            }
        }
    });
    if let Some(req) = local {
        accept(req, Rc::new(received));
    }
}

/// Starts a run of `recipe` with `setting` (the QAT worker starts on first use).
pub fn start(recipe: Recipe, setting: QatSetting, signals: QatSignals) {
    let id = PAGE.with(|p| {
        let mut p = p.borrow_mut();
        let page = p.get_or_insert_with(|| Page {
            worker: crate::worker::spawn_worker(from_worker),
            ready: false,
            waiting: Vec::new(),
            current: 0,
            signals,
        });
        page.current += 1;
        page.current
    });
    signals.error.set(None);
    signals.run.set(Some(RunView {
        id,
        recipe,
        setting,
        status: Status::Starting,
        step: 0,
        rate: None,
        shared_rate: None,
        workers: 1,
        evaluated_by_helper: 0,
        points: Vec::new(),
        fp32: None,
        weights: None,
        started: browser::now(),
        seconds: None,
    }));
    send(Request::Start(Start {
        id,
        recipe: recipe.to_string(),
        steps: setting.steps,
        learning_rate: setting.learning_rate(),
        lsq: setting.lsq,
        weight_observer: setting.weight_observer,
        activation_bits: setting.activation_bits,
        images_url: train_digits::url(train_digits::IMAGES),
        labels_url: train_digits::url(train_digits::LABELS),
    }));
}

fn current() -> Option<u64> {
    PAGE.with(|p| p.borrow().as_ref().map(|p| p.current))
}

pub fn pause(signals: QatSignals) {
    if let Some(id) = current() {
        send(Request::Pause(id));
        signals.run.update(|r| {
            if let Some(r) = r.as_mut().filter(|r| r.status == Status::Training) {
                r.status = Status::Paused;
            }
        });
    }
}

pub fn resume(signals: QatSignals) {
    if let Some(id) = current() {
        send(Request::Resume(id));
        signals.run.update(|r| {
            if let Some(r) = r.as_mut().filter(|r| r.status == Status::Paused) {
                r.status = Status::Training;
            }
        });
    }
}

/// Forgets the run: the worker stops, the section shows the untrained network again.
pub fn reset(signals: QatSignals) {
    if let Some(id) = current() {
        send(Request::Stop(id));
        PAGE.with(|p| {
            if let Some(p) = p.borrow_mut().as_mut() {
                p.current += 1;
            }
        });
    }
    signals.error.set(None);
    signals.run.set(None);
}
