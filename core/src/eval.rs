//! Loss and accuracy of a network on labelled digits, in chunks so a caller (the web app) can
//! report progress and stop between them.

use crate::data::Digits;
use crate::infer::Inference;
use crate::model::{cross_entropy_sum, MnistNet, CLASSES};
use crate::quant::{Bits, Scheme};
use crate::recipe::{Recipe, Rounding};
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Digits per forward pass: large enough for efficient GEMMs, small enough for the cache.
pub const CHUNK: usize = 128;

/// Loss and accuracy over a set of digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Percentage of digits classified correctly, 0 to 100.
    pub accuracy: f64,
    pub correct: usize,
    pub count: usize,
}

/// Running totals over chunks of digits. Tallies of disjoint sets of digits add up (the web
/// app's workers each evaluate blocks of digits and the page sums them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalTally {
    loss_sum: f64,
    correct: usize,
    count: usize,
}

impl EvalTally {
    /// Runs `images` `[n, 784]` through the network and adds the outcome.
    pub fn add(&mut self, net: &mut Inference, images: ArrayView2<f32>, labels: &[u8]) {
        if labels.is_empty() {
            return;
        }
        let images = images.as_standard_layout();
        let scores = net.logits(images.as_slice().expect("standard layout"));
        let logits = ArrayView2::from_shape((labels.len(), CLASSES), scores)
            .expect("one row of scores per label");
        self.add_scores(logits, labels);
    }

    /// Adds the outcome of class scores `[n, 10]` computed elsewhere (the PTQ paths).
    pub fn add_scores(&mut self, logits: ArrayView2<f32>, labels: &[u8]) {
        self.loss_sum += cross_entropy_sum(logits, labels);
        self.correct += logits
            .axis_iter(Axis(0))
            .zip(labels)
            .filter(|(row, &label)| argmax(row.as_slice().expect("row-major")) == label as usize)
            .count();
        self.count += labels.len();
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Adds another tally over different digits.
    pub fn merge(&mut self, other: &EvalTally) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.count += other.count;
    }

    pub fn evaluation(&self) -> Evaluation {
        let n = self.count.max(1) as f64;
        Evaluation {
            loss: self.loss_sum / n,
            accuracy: 100.0 * self.correct as f64 / n,
            correct: self.correct,
            count: self.count,
        }
    }
}

/// The predicted class: the first index of the largest score.
pub fn argmax(scores: &[f32]) -> usize {
    scores
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &s)| {
            if s > best.1 {
                (i, s)
            } else {
                best
            }
        })
        .0
}

/// Loss and accuracy of `net` on all of `images` / `labels`; no digits is an error (a mean over
/// nothing is not a number).
pub fn evaluate(
    net: &MnistNet,
    images: ArrayView2<f32>,
    labels: &[u8],
) -> crate::Result<Evaluation> {
    Ok(evaluate_each(net, images, labels)?.0)
}

/// [`evaluate`], and every digit's predicted class (the first index of its largest score).
pub fn evaluate_each(
    net: &MnistNet,
    images: ArrayView2<f32>,
    labels: &[u8],
) -> crate::Result<(Evaluation, Vec<u8>)> {
    let mut net = Inference::new(net);
    evaluate_scores(images, labels, |chunk| net.logits(chunk).to_vec())
}

/// [`evaluate_each`] for any forward pass: `scores` maps a chunk of images (row-major
/// `[k, 784]`) to their class scores (`[k, 10]`). QAT's network with quantized activations is
/// evaluated through this.
pub fn evaluate_scores(
    images: ArrayView2<f32>,
    labels: &[u8],
    mut scores: impl FnMut(&[f32]) -> Vec<f32>,
) -> crate::Result<(Evaluation, Vec<u8>)> {
    if labels.is_empty() || images.nrows() != labels.len() {
        return Err(crate::Error::Data(format!(
            "{} images and {} labels: nothing to evaluate",
            images.nrows(),
            labels.len()
        )));
    }
    let mut tally = EvalTally::default();
    let mut predicted = Vec::with_capacity(labels.len());
    for (chunk, labels) in images
        .axis_chunks_iter(Axis(0), CHUNK)
        .zip(labels.chunks(CHUNK))
    {
        let chunk = chunk.as_standard_layout();
        let scores = scores(chunk.as_slice().expect("standard layout"));
        let logits = ArrayView2::from_shape((labels.len(), CLASSES), &scores[..])
            .expect("one row of scores per label");
        tally.loss_sum += cross_entropy_sum(logits, labels);
        for (row, &label) in scores.chunks(CLASSES).zip(labels) {
            let p = argmax(row);
            tally.correct += usize::from(p == label as usize);
            predicted.push(p as u8);
        }
        tally.count += labels.len();
    }
    Ok((tally.evaluation(), predicted))
}

/// Which network an evaluation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Precision {
    Fp32,
    Quantized(Recipe),
}

impl Precision {
    pub fn network(self, fp32: &MnistNet) -> crate::Result<MnistNet> {
        match self {
            Precision::Fp32 => Ok(fp32.clone()),
            Precision::Quantized(recipe) => fp32.fake_quantized(&recipe),
        }
    }

    /// The essay's per-tensor setting.
    pub fn per_tensor(bits: Bits, scheme: Scheme) -> Self {
        Precision::Quantized(Recipe::per_tensor(bits, scheme))
    }
}

/// One setting's evaluation so far.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub precision: Precision,
    /// Over the digits evaluated so far (`evaluation.count` of them).
    pub evaluation: Evaluation,
    pub done: bool,
}

/// The settings whose accuracy curve the reader sees beside `recipe`: the same knobs at every
/// bit width and under both schemes, from 8 bits down, then 16.
pub fn curve_family(recipe: Recipe) -> Vec<Precision> {
    let mut out = Vec::new();
    for bits in Bits::ALL.into_iter().rev().skip(1).chain([Bits::ALL[7]]) {
        for scheme in Scheme::ALL {
            // The integer grid's curve: a format of its own has no bits to step along.
            out.push(Precision::Quantized(recipe.with_default(|d| {
                d.bits = bits;
                d.scheme = scheme;
                d.format = crate::formats::Format::Int;
            })));
        }
    }
    out
}

/// The order to evaluate in while the reader looks at `priority`: that setting, FP32 (the
/// reference row), then the settings one step away along each axis of the recipe (a bit more, a
/// bit fewer, the other scheme, the next granularity, the default rounding and range), where
/// the reader's next move most likely goes, then the rest of its [`curve_family`]. A bounded
/// list: what the reader has not asked for is never evaluated. Settings may repeat; callers skip
/// what is done.
pub fn evaluation_order(priority: Precision) -> Vec<Precision> {
    let recipe = match priority {
        Precision::Fp32 => Recipe::default(),
        Precision::Quantized(r) => r,
    };
    let mut order = vec![priority, Precision::Fp32];
    if let Precision::Quantized(r) = priority {
        order.extend(r.neighbours().into_iter().map(Precision::Quantized));
    }
    order.extend(curve_family(recipe));
    order
}

/// The recipe under every rounding mode, for the rounding comparison's accuracy column. Not part
/// of [`evaluation_order`]: the page asks for them once the reader pauses
/// ([`Scheduler::extend_order`]), so the workers are not kept busy on them while the reader
/// moves (on two cores that slowed every move's frame about 2×).
pub fn rounding_variants(recipe: Recipe) -> Vec<Precision> {
    Rounding::modes_beside(recipe.default.rounding)
        .into_iter()
        .map(|rounding| Precision::Quantized(recipe.with_default(|d| d.rounding = rounding)))
        .collect()
}

/// The main thread as one more evaluator of the one [`Scheduler`]: when the web app's workers
/// cannot run, the page takes blocks from it itself, a slice at a time (`src/eval_loop.rs`), in
/// the same order, with the same tallies, the same bounds and the same failures as the workers
/// would have.
pub struct EvalQueue {
    fp32: MnistNet,
    digits: Digits,
    scheduler: Scheduler,
    /// Blocks handed to this evaluator and not yet evaluated.
    queue: std::collections::VecDeque<Block>,
    network: Option<(Precision, Inference)>,
}

impl EvalQueue {
    /// Evaluates `digits` on `fp32` and its quantized copies, FP32 first until told otherwise.
    pub fn new(fp32: MnistNet, digits: &Digits) -> Self {
        EvalQueue {
            fp32,
            scheduler: Scheduler::new(digits.len(), 1, Precision::Fp32),
            digits: digits.clone(),
            queue: Default::default(),
            network: None,
        }
    }

    /// The setting to advance first from now on.
    pub fn prioritize(&mut self, p: Precision) {
        if !self.scheduler.prioritize(p).is_empty() {
            self.queue.clear();
        }
    }

    /// Where every setting stands: what is known so far and whether it is complete.
    pub fn snapshot(&self) -> Vec<Progress> {
        self.scheduler.snapshot()
    }

    /// Every setting that could not be evaluated, and why.
    pub fn failures(&self) -> Vec<(Precision, String)> {
        self.scheduler.failures()
    }

    pub fn is_done(&self, p: Precision) -> bool {
        self.scheduler.is_done(p)
    }

    /// Evaluates `extra` too, after everything in the order, until the next move.
    pub fn extend_order(&mut self, extra: &[Precision]) {
        self.scheduler.extend_order(extra);
    }

    pub fn extend_order_soon(&mut self, extra: &[Precision]) {
        self.scheduler.extend_order_soon(extra);
    }

    /// Evaluates the next block (25 digits) of the next setting; returns that setting, or
    /// `None` when everything in the evaluation order is done. A setting whose network cannot be
    /// built is recorded as failed, and the queue moves on.
    pub fn step(&mut self) -> Option<Precision> {
        if self.queue.is_empty() {
            self.queue.extend(self.scheduler.top_up(0));
        }
        let block = self.queue.pop_front()?;
        let p = block.precision;
        if self.network.as_ref().map(|(q, _)| *q) != Some(p) {
            match p.network(&self.fp32) {
                Ok(net) => self.network = Some((p, Inference::new(&net))),
                Err(e) => {
                    self.scheduler.fail(0, p, e.to_string());
                    self.queue.retain(|b| b.precision != p);
                    return Some(p);
                }
            }
        }
        let net = &mut self.network.as_mut().expect("set above").1;
        let tally = Scheduler::evaluate(net, &self.digits, block.index);
        self.scheduler.record(0, block, tally);
        Some(p)
    }
}

/// `order` without repeats, first occurrence kept.
fn distinct(order: Vec<Precision>) -> Vec<Precision> {
    let mut seen = std::collections::HashSet::new();
    order.into_iter().filter(|p| seen.insert(*p)).collect()
}

/// Every setting's progress, FP32 first, then by bits and scheme.
fn progress_list(
    tallies: impl Iterator<Item = (Precision, EvalTally)>,
    total: usize,
) -> Vec<Progress> {
    let mut out: Vec<Progress> = tallies
        .map(|(precision, tally)| Progress {
            precision,
            evaluation: tally.evaluation(),
            done: tally.count() >= total,
        })
        .collect();
    // By the recipe's default bits and scheme (not by its text: that was a string per entry,
    // per publication, ten times a second).
    out.sort_by_key(|p| match p.precision {
        Precision::Fp32 => (0, 0, 0),
        Precision::Quantized(r) => (1, r.default.bits.get(), r.default.scheme as u32),
    });
    out
}

/// Digits per block, the unit of work the page hands a worker: 5–8 ms of evaluation, so a
/// worker reaches a new setting within that, and the first estimate after a move comes quickly.
pub const BLOCK_DIGITS: usize = 25;
/// Blocks a worker holds at most, the one it is evaluating included: enough that it never waits
/// for the page between blocks while the page draws a move (a move's first frame can take
/// 40 ms on a slow machine, ~5 blocks there).
const HOLD: usize = 10;
/// A worker is topped up once it holds this many blocks or fewer: one message per few reports,
/// not one per block (each is a main-thread task on the page).
const REFILL_AT: usize = 5;

/// How many settings' results the scheduler keeps before it forgets those far from the reader.
pub const KEPT_SETTINGS: usize = 256;

/// One unit of work: the digits of block `index` (see [`Scheduler::digits`]) for `precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Block {
    pub precision: Precision,
    pub index: usize,
}

/// Hands out blocks of digits to several evaluators (the web app's workers) and adds up the
/// tallies they send back, in [`evaluation_order`]: the reader's setting first. Work is
/// handed out a few blocks at a time as each worker reports, so a faster worker simply takes
/// more blocks and both finish together. A result counts once: a block evaluated twice (handed
/// out again after a move dropped it, while the old holder was already computing it) adds
/// nothing the second time, so the totals are always over distinct digits.
#[derive(Clone, Debug)]
pub struct Scheduler {
    total: usize,
    priority: Precision,
    /// `evaluation_order(priority)`, built once per move: every worker report consults it.
    order: Vec<Precision>,
    results: HashMap<Precision, Vec<Option<EvalTally>>>,
    /// How many of each setting's blocks have a result, so finished settings are skipped at once.
    finished: HashMap<Precision, usize>,
    /// Per worker, the blocks handed out and not yet reported, oldest first.
    assigned: Vec<Vec<Block>>,
    /// Workers that stopped: they are handed nothing more.
    retired: Vec<bool>,
    /// Settings whose network could not be built, with why: the setting's own error, shown to
    /// the reader; no more of its blocks are handed out, and the worker carries on.
    failed: HashMap<Precision, String>,
    /// While set, only the reader's own setting is handed out (see [`Self::hold_background`]).
    background_held: bool,
}

impl Scheduler {
    /// `total` digits shared among `workers`, `priority` first.
    pub fn new(total: usize, workers: usize, priority: Precision) -> Self {
        Scheduler {
            total,
            priority,
            order: distinct(evaluation_order(priority)),
            results: HashMap::new(),
            finished: HashMap::new(),
            assigned: vec![Vec::new(); workers],
            retired: vec![false; workers],
            failed: HashMap::new(),
            background_held: false,
        }
    }

    /// The setting handed out first.
    pub fn priority(&self) -> Precision {
        self.priority
    }

    pub fn blocks(&self) -> usize {
        self.total.div_ceil(BLOCK_DIGITS)
    }

    /// The digits of block `index`.
    pub fn digits(total: usize, index: usize) -> std::ops::Range<usize> {
        (index * BLOCK_DIGITS).min(total)..((index + 1) * BLOCK_DIGITS).min(total)
    }

    /// What a worker does with a block: evaluates `net` on the digits of block `index`.
    pub fn evaluate(net: &mut Inference, digits: &Digits, index: usize) -> EvalTally {
        let rows = Scheduler::digits(digits.len(), index);
        let mut tally = EvalTally::default();
        tally.add(
            net,
            digits.images_f32_rows(rows.clone()).view(),
            &digits.labels[rows],
        );
        tally
    }

    /// The reader moved to `p`. Returns the workers whose queues were forgotten here (those that
    /// held blocks): the caller tells each to drop its queue, then hands out new blocks with
    /// [`Self::top_up`]. Nothing changes when `p` already comes first.
    pub fn prioritize(&mut self, p: Precision) -> Vec<usize> {
        if p == self.priority {
            return Vec::new();
        }
        self.priority = p;
        self.order = distinct(evaluation_order(p));
        // Bounded: past KEPT_SETTINGS, what the new order does not name is forgotten (a reader
        // exploring every knob would otherwise grow the page without limit; ~2 KB a setting).
        if self.results.len() > KEPT_SETTINGS {
            let order = &self.order;
            self.results.retain(|p, _| order.contains(p));
            self.finished.retain(|p, _| order.contains(p));
        }
        let held = (0..self.assigned.len())
            .filter(|&w| !self.assigned[w].is_empty())
            .collect();
        self.assigned.iter_mut().for_each(Vec::clear);
        held
    }

    /// Worker `worker` evaluated `block`; keeps its tally unless that block already has one.
    pub fn record(&mut self, worker: usize, block: Block, tally: EvalTally) {
        if let Some(queue) = self.assigned.get_mut(worker) {
            queue.retain(|b| *b != block);
        }
        let blocks = self.blocks();
        if block.index < blocks {
            let slots = self
                .results
                .entry(block.precision)
                .or_insert_with(|| vec![None; blocks]);
            if slots[block.index].is_none() {
                slots[block.index] = Some(tally);
                *self.finished.entry(block.precision).or_default() += 1;
            }
        }
    }

    /// Worker `worker` stopped (it crashed, say): the blocks it held go back to the others
    /// through [`Self::top_up`], and it is handed nothing more. Returns how many workers are
    /// still in service.
    pub fn retire(&mut self, worker: usize) -> usize {
        if let Some(queue) = self.assigned.get_mut(worker) {
            queue.clear();
            self.retired[worker] = true;
        }
        self.retired.iter().filter(|&&r| !r).count()
    }

    /// New blocks for `worker` once it holds [`REFILL_AT`] or fewer, up to [`HOLD`]; empty
    /// when it holds enough, all is evaluated, or the worker is retired. Of each setting a worker
    /// holds no more than its share of what is left (at least 2), so near a setting's end the
    /// workers finish it together instead of one waiting on the other's long queue.
    pub fn top_up(&mut self, worker: usize) -> Vec<Block> {
        let mut handed = Vec::new();
        if self.retired.get(worker).copied().unwrap_or(true)
            || self.assigned[worker].len() > REFILL_AT
        {
            return handed;
        }
        let live = self.retired.iter().filter(|&&r| !r).count().max(1);
        while self.assigned[worker].len() < HOLD {
            let Some(block) = self.next_free() else { break };
            let p = block.precision;
            let left = self.blocks() - self.finished.get(&p).copied().unwrap_or(0);
            let held = self.assigned[worker]
                .iter()
                .filter(|b| b.precision == p)
                .count();
            if held >= left.div_ceil(live).max(2) {
                break;
            }
            self.assigned[worker].push(block);
            handed.push(block);
        }
        handed
    }

    /// Setting `p` cannot be evaluated (worker `worker` could not build its network): records
    /// why, forgets the blocks of it anyone holds, and hands out none of it again.
    pub fn fail(&mut self, worker: usize, p: Precision, error: String) {
        if let Some(queue) = self.assigned.get_mut(worker) {
            queue.retain(|b| b.precision != p);
        }
        self.failed.entry(p).or_insert(error);
    }

    /// Why `p` could not be evaluated, if it could not.
    pub fn failure(&self, p: Precision) -> Option<&str> {
        self.failed.get(&p).map(String::as_str)
    }

    /// Every setting that could not be evaluated, and why.
    pub fn failures(&self) -> Vec<(Precision, String)> {
        self.failed.iter().map(|(&p, e)| (p, e.clone())).collect()
    }

    /// Evaluates `extra` too, after everything in the order, until the next move.
    pub fn extend_order(&mut self, extra: &[Precision]) {
        for p in extra {
            if !self.order.contains(p) {
                self.order.push(*p);
            }
        }
    }

    /// Evaluates `extra` next: right after the reader's setting and FP32, before the neighbours
    /// and curves (what a panel on screen shows first, such as the sensitivity table).
    pub fn extend_order_soon(&mut self, extra: &[Precision]) {
        self.order.retain(|p| !extra.contains(p));
        let at = self.order.len().min(2);
        self.order.splice(at..at, extra.iter().copied());
        self.order = distinct(std::mem::take(&mut self.order));
    }

    /// Hands out only the reader's setting while `held`, the rest of the order again when not.
    /// The page holds the background while the reader is moving: on two cores, two workers
    /// busy with settings nobody is looking at took the CPU the page needed to draw each move
    /// (its frame ran ~2x longer), and the reader's own setting was never waiting on them.
    pub fn hold_background(&mut self, held: bool) {
        self.background_held = held;
    }

    /// Whether worker `worker` holds blocks it has not reported.
    pub fn holds(&self, worker: usize) -> bool {
        self.assigned.get(worker).is_some_and(|q| !q.is_empty())
    }

    /// The first block, in priority order, with no result that no worker holds.
    fn next_free(&self) -> Option<Block> {
        let blocks = self.blocks();
        // The order starts with the priority.
        let order = match self.background_held {
            true => &self.order[..1],
            false => &self.order[..],
        };
        for &precision in order {
            if self.failed.contains_key(&precision)
                || self.finished.get(&precision).copied().unwrap_or(0) >= blocks
            {
                continue;
            }
            let slots = self.results.get(&precision);
            let free = (0..blocks).find(|&index| {
                let block = Block { precision, index };
                slots.is_none_or(|r| r[index].is_none())
                    && !self.assigned.iter().any(|q| q.contains(&block))
            });
            if let Some(index) = free {
                return Some(Block { precision, index });
            }
        }
        None
    }

    fn tally(&self, p: Precision) -> Option<EvalTally> {
        let mut sum = EvalTally::default();
        self.results
            .get(&p)?
            .iter()
            .flatten()
            .for_each(|t| sum.merge(t));
        Some(sum)
    }

    /// Whether all the digits of `p` are evaluated.
    pub fn is_done(&self, p: Precision) -> bool {
        self.tally(p).is_some_and(|t| t.count() >= self.total)
    }

    /// Every setting with at least one block evaluated.
    pub fn snapshot(&self) -> Vec<Progress> {
        progress_list(
            self.results
                .keys()
                .filter_map(|&p| Some((p, self.tally(p)?))),
            self.total,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PIXELS;
    use crate::rng::Rng;
    use ndarray::Array2;

    fn digits(n: usize) -> Digits {
        let mut rng = Rng::new(11);
        Digits {
            images: Array2::from_shape_fn((n, PIXELS), |_| (rng.next_u64() % 256) as u8),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn the_main_thread_queue_takes_the_scheduler_s_blocks_and_matches_a_full_evaluation() {
        let net = MnistNet::init(8);
        // 60 digits: blocks of 25, 25 and 10.
        let d = digits(60);
        let mut q = EvalQueue::new(net.clone(), &d);
        assert_eq!(q.step(), Some(Precision::Fp32));
        let four = Precision::per_tensor(Bits::new(4).unwrap(), Scheme::Symmetric);
        q.prioritize(four);
        assert_eq!(q.step(), Some(four), "a move is served at the next step");
        let count = |q: &EvalQueue, p| {
            q.snapshot()
                .iter()
                .find(|x| x.precision == p)
                .map_or(0, |x| x.evaluation.count)
        };
        assert_eq!(count(&q, four), BLOCK_DIGITS);
        assert_eq!(
            count(&q, Precision::Fp32),
            BLOCK_DIGITS,
            "partial tally kept"
        );
        let mut steps = 2;
        while q.step().is_some() {
            steps += 1;
        }
        // FP32, 4-bit symmetric's curve family (16) and its neighbour per channel: 18 settings
        // × 3 blocks, each evaluated once.
        assert_eq!(steps, 18 * 3);
        let snap = q.snapshot();
        assert_eq!(snap.len(), 18);
        assert_eq!(snap[0].precision, Precision::Fp32);
        assert!(snap.iter().all(|p| p.done && p.evaluation.count == 60));
        let images = d.images_f32();
        for p in [Precision::Fp32, four] {
            let full = evaluate(&p.network(&net).unwrap(), images.view(), &d.labels).unwrap();
            let got = snap.iter().find(|x| x.precision == p).unwrap().evaluation;
            assert_eq!(got.correct, full.correct);
            assert!((got.loss - full.loss).abs() < 1e-5);
        }
    }

    /// Evaluates `block` as a worker does.
    fn run(net: &MnistNet, d: &Digits, block: Block) -> EvalTally {
        let mut inf = Inference::new(&block.precision.network(net).unwrap());
        Scheduler::evaluate(&mut inf, d, block.index)
    }

    #[test]
    fn results_are_bounded_and_the_reader_s_neighbourhood_is_kept() {
        let done = EvalTally {
            loss_sum: 0.0,
            correct: 0,
            count: BLOCK_DIGITS,
        };
        let mut s = Scheduler::new(BLOCK_DIGITS, 1, Precision::Fp32);
        // 420 settings visited, each evaluated: the results stay bounded, and the reader's own
        // setting is always kept.
        for bits in 2..=8 {
            for k in 1..=60u32 {
                let text = format!("bits={bits}&range=clip:0.{k:03}");
                let p = Precision::Quantized(text.parse().unwrap());
                s.prioritize(p);
                s.record(
                    0,
                    Block {
                        precision: p,
                        index: 0,
                    },
                    done,
                );
                assert!(s.results.len() <= KEPT_SETTINGS + 1, "{}", s.results.len());
                assert!(s.is_done(p));
            }
        }
    }

    #[test]
    fn a_held_background_hands_out_only_the_reader_s_setting_until_released() {
        let four = Precision::per_tensor(Bits::new(4).unwrap(), Scheme::Asymmetric);
        // 60 digits: three blocks per setting.
        let mut s = Scheduler::new(60, 2, Precision::Fp32);
        s.prioritize(four);
        s.hold_background(true);
        let handed: Vec<Block> = s.top_up(0).into_iter().chain(s.top_up(1)).collect();
        assert_eq!(
            handed.len(),
            3,
            "the reader's three blocks, nothing after them"
        );
        assert!(handed.iter().all(|b| b.precision == four));
        assert!(s.top_up(1).is_empty(), "nothing else while held");
        s.hold_background(false);
        let rest = s.top_up(1);
        assert!(!rest.is_empty());
        assert_eq!(
            rest[0].precision,
            Precision::Fp32,
            "then the order as before"
        );
    }

    #[test]
    fn the_scheduler_hands_out_each_block_once_priority_first_and_adds_up() {
        let net = MnistNet::init(8);
        // 60 digits: two full blocks of 25 and one of 10.
        let d = digits(60);
        let four = Precision::per_tensor(Bits::new(4).unwrap(), Scheme::Asymmetric);
        let mut s = Scheduler::new(60, 2, four);
        assert_eq!(s.blocks(), 3);
        assert_eq!(Scheduler::digits(60, 2), 50..60);
        let a = s.top_up(0);
        let b = s.top_up(1);
        // The reader's three blocks first, shared (at most two each: a worker holds no more than
        // its share of what is left of a setting), then the background from FP32, none handed
        // out twice.
        let block = |precision, index| Block { precision, index };
        let fp32 = |index| block(Precision::Fp32, index);
        assert_eq!(a, vec![block(four, 0), block(four, 1)]);
        assert_eq!(b, vec![block(four, 2), fp32(0), fp32(1)]);
        assert!(s.top_up(0).len() <= HOLD - 2);
        assert!(s.snapshot().is_empty());
        let c = s.top_up(1);
        assert!(c.is_empty() || c[0].precision != Precision::Fp32);

        // Worker 0 reports one block: it is topped up with the next free one, and the estimate
        // covers 25 digits.
        let held = s.assigned[0].len();
        s.record(0, a[0], run(&net, &d, a[0]));
        assert_eq!(s.assigned[0].len(), held - 1);
        let snap = s.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].evaluation.count, 25);
        assert!(!snap[0].done);

        // Evaluate everything, worker 1 reporting each block twice: the second report is ignored.
        let mut reports = 0;
        loop {
            let held: Vec<(usize, Block)> = (0..2)
                .flat_map(|w| s.assigned[w].iter().map(move |&b| (w, b)))
                .collect();
            if held.is_empty() {
                break;
            }
            for (w, block) in held {
                let tally = run(&net, &d, block);
                s.record(w, block, tally);
                if w == 1 {
                    s.record(w, block, tally);
                }
                reports += 1;
            }
            s.top_up(0);
            s.top_up(1);
        }
        assert_eq!(reports, 18 * 3 - 1, "every block of every setting once");
        let snap = s.snapshot();
        assert_eq!(snap.len(), 18);
        assert!(snap.iter().all(|p| p.done && p.evaluation.count == 60));
        let images = d.images_f32();
        for p in [Precision::Fp32, four] {
            let full = evaluate(&p.network(&net).unwrap(), images.view(), &d.labels).unwrap();
            let got = snap.iter().find(|s| s.precision == p).unwrap().evaluation;
            assert_eq!(got.correct, full.correct);
            assert!((got.loss - full.loss).abs() < 1e-5);
        }
        assert!(s.top_up(0).is_empty(), "nothing left");
    }

    #[test]
    fn after_the_reader_s_setting_come_fp32_and_its_neighbours_then_the_rest() {
        let q = |text: &str| Precision::Quantized(text.parse().unwrap());
        let distinct = |p| {
            let mut seen = Vec::new();
            for x in evaluation_order(p) {
                if !seen.contains(&x) {
                    seen.push(x);
                }
            }
            seen
        };
        let order = distinct(q("bits=3&scheme=sym"));
        assert_eq!(order.len(), 18, "the curve family, FP32 and per channel");
        assert_eq!(
            order[..6],
            [
                q("bits=3&scheme=sym"),
                Precision::Fp32,
                q("bits=2&scheme=sym"),
                q("bits=4&scheme=sym"),
                q("bits=3&scheme=asym"),
                q("bits=3&scheme=sym&granularity=channel"),
            ]
        );
        assert_eq!(
            order[6..8],
            [q("bits=8&scheme=sym"), q("bits=8&scheme=asym")],
            "then from 8 bits down"
        );
        // At the ends of the slider there is one neighbour in bits.
        assert_eq!(
            distinct(q("bits=2&scheme=asym"))[2..4],
            [q("bits=3&scheme=asym"), q("bits=2&scheme=sym")]
        );
        // Every knob's way back to the default is a neighbour, and the family keeps the knobs.
        let odd = distinct(q(
            "bits=4&scheme=asym&granularity=group:8&rounding=floor&range=mse",
        ));
        assert!(odd.contains(&q(
            "bits=4&scheme=asym&granularity=channel&rounding=floor&range=mse"
        )));
        assert!(odd.contains(&q(
            "bits=4&scheme=asym&granularity=group:16&rounding=floor&range=mse"
        )));
        assert!(odd.contains(&q("bits=4&scheme=asym&granularity=group:8&range=mse")));
        assert!(odd.contains(&q("bits=4&scheme=asym&granularity=group:8&rounding=floor")));
        assert!(odd.contains(&q(
            "bits=16&scheme=sym&granularity=group:8&rounding=floor&range=mse"
        )));
        assert_eq!(odd.len(), 1 + 16 + 4);
        assert_eq!(distinct(Precision::Fp32).len(), 17);
    }

    #[test]
    fn a_retired_worker_s_blocks_go_to_the_others_and_it_gets_no_more() {
        let two = Precision::per_tensor(Bits::new(2).unwrap(), Scheme::Symmetric);
        let mut s = Scheduler::new(200, 2, two);
        let a = s.top_up(0);
        let b = s.top_up(1);
        assert!(
            b[..4].iter().all(|b| b.precision == two),
            "worker 1 holds half the reader's blocks"
        );
        assert_eq!(s.retire(1), 1, "one worker left");
        assert!(s.top_up(1).is_empty(), "a retired worker is handed nothing");
        let done = EvalTally {
            loss_sum: 0.0,
            correct: 0,
            count: BLOCK_DIGITS,
        };
        // A late report from the retired worker still counts; it is not handed more for it.
        s.record(1, b[0], done);
        assert!(s.top_up(1).is_empty());
        // Worker 0 alone evaluates everything, including the blocks worker 1 held.
        let mut queue = a;
        while let Some(block) = queue.pop() {
            s.record(0, block, done);
            queue.extend(s.top_up(0));
        }
        assert!(s.is_done(two) && s.is_done(Precision::Fp32));
        assert_eq!(s.snapshot().len(), 18);
        assert!(s.snapshot().iter().all(|p| p.done));
        assert_eq!(s.retire(0), 0, "none left");
    }

    #[test]
    fn a_move_drops_the_queues_and_hands_out_the_new_setting_first() {
        let two = Precision::per_tensor(Bits::new(2).unwrap(), Scheme::Symmetric);
        let mut s = Scheduler::new(2000, 2, Precision::Fp32);
        let old = s.top_up(0);
        assert!(old.iter().all(|b| b.precision == Precision::Fp32));
        assert!(
            s.prioritize(Precision::Fp32).is_empty(),
            "the same setting changes nothing"
        );
        assert_eq!(s.prioritize(two), vec![0], "only worker 0 held blocks");
        let new = s.top_up(0);
        assert_eq!(new.len(), HOLD);
        assert!(new.iter().all(|b| b.precision == two));
        assert_eq!(new[0].index, 0);
        // Finished settings are skipped: once 2-bit has every block, worker 0 gets FP32's.
        let full = EvalTally {
            loss_sum: 0.0,
            correct: 0,
            count: BLOCK_DIGITS,
        };
        for index in 0..s.blocks() {
            s.record(
                0,
                Block {
                    precision: two,
                    index,
                },
                full,
            );
        }
        assert!(s.is_done(two));
        assert_eq!(s.top_up(0)[0], old[0]);
        // Back to FP32: worker 0's queue is dropped, and its blocks go to worker 1 first.
        assert_eq!(s.prioritize(Precision::Fp32), vec![0]);
        assert_eq!(s.top_up(1)[..2], old[..2]);
        // A block worker 0 was already computing when its queue was dropped still counts.
        s.record(0, old[2], full);
        let fp32 = s
            .snapshot()
            .into_iter()
            .find(|p| p.precision == Precision::Fp32);
        assert_eq!(fp32.unwrap().evaluation.count, BLOCK_DIGITS);
    }

    #[test]
    fn a_recipe_that_fails_is_its_own_error_and_the_worker_carries_on() {
        let bad = Precision::per_tensor(Bits::new(2).unwrap(), Scheme::Symmetric);
        let mut s = Scheduler::new(100, 1, bad);
        let held = s.top_up(0);
        assert!(held[..4].iter().all(|b| b.precision == bad));
        s.fail(0, bad, "weights hold NaN".into());
        assert_eq!(s.failure(bad), Some("weights hold NaN"));
        // The same worker keeps the next settings' blocks, and is never handed the failed one
        // again.
        assert!(s.holds(0), "the worker is not retired");
        assert!(s.assigned[0].iter().all(|b| b.precision != bad));
        assert_eq!(s.assigned[0][0].precision, Precision::Fp32);
        let done = EvalTally {
            loss_sum: 0.0,
            correct: 0,
            count: BLOCK_DIGITS,
        };
        for b in s.assigned[0].clone() {
            s.record(0, b, done);
        }
        let next = s.top_up(0);
        assert!(!next.is_empty());
        assert!(next.iter().all(|b| b.precision != bad));
    }

    #[test]
    fn extra_settings_come_after_the_order_and_go_with_the_next_move() {
        let three = Precision::per_tensor(Bits::new(3).unwrap(), Scheme::Symmetric);
        let mut s = Scheduler::new(BLOCK_DIGITS, 1, three);
        let extra = rounding_variants(match three {
            Precision::Quantized(r) => r,
            Precision::Fp32 => unreachable!(),
        });
        assert_eq!(extra.len(), 4);
        assert_eq!(extra[0], three, "half to even is the recipe itself");
        s.extend_order(&extra);
        let done = EvalTally {
            loss_sum: 0.0,
            correct: 0,
            count: BLOCK_DIGITS,
        };
        while !s.top_up(0).is_empty() {
            for b in s.assigned[0].clone() {
                s.record(0, b, done);
            }
        }
        // Everything in the order, then the three other roundings, each once.
        assert_eq!(s.snapshot().len(), 18 + 3);
        assert!(extra.iter().all(|&p| s.is_done(p)));
        // The next move forgets them.
        let four = Precision::per_tensor(Bits::new(4).unwrap(), Scheme::Symmetric);
        s.prioritize(four);
        assert!(!s.order.contains(&extra[1]));
    }

    #[test]
    fn a_fast_forward_evaluation_matches_the_training_forward_pass() {
        let net = MnistNet::init(8);
        let d = digits(40);
        let images = d.images_f32();
        let fast = evaluate(&net, images.view(), &d.labels).unwrap();
        let logits = net.logits(images.view());
        let correct = logits
            .outer_iter()
            .zip(&d.labels)
            .filter(|(r, &l)| argmax(r.as_slice().unwrap()) == l as usize)
            .count();
        assert_eq!(fast.correct, correct);
    }
}
