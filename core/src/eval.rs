//! Loss and accuracy of a network on labelled digits, in chunks so a caller (the web app) can
//! report progress and stop between them.

use crate::data::Digits;
use crate::infer::Inference;
use crate::model::{softmax_cross_entropy, MnistNet, CLASSES};
use crate::quant::{Bits, Scheme};
use ndarray::{Array2, ArrayView2, Axis};
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
/// app's workers each evaluate a shard and the page sums them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalTally {
    loss_sum: f64,
    correct: usize,
    count: usize,
}

impl EvalTally {
    /// Runs `images` `[n, 784]` through the network and adds the outcome.
    pub fn add(&mut self, net: &mut Inference, images: ArrayView2<f32>, labels: &[u8]) {
        let images = images.as_standard_layout();
        let scores = net.logits(images.as_slice().expect("standard layout"));
        let logits = Array2::from_shape_vec((labels.len(), CLASSES), scores.to_vec())
            .expect("one row of scores per label");
        let (loss, _) = softmax_cross_entropy(&logits, labels);
        self.loss_sum += f64::from(loss) * labels.len() as f64;
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

/// Loss and accuracy of `net` on all of `images` / `labels`.
pub fn evaluate(net: &MnistNet, images: ArrayView2<f32>, labels: &[u8]) -> Evaluation {
    let mut tally = EvalTally::default();
    let mut net = Inference::new(net);
    for (chunk, labels) in images
        .axis_chunks_iter(Axis(0), CHUNK)
        .zip(labels.chunks(CHUNK))
    {
        tally.add(&mut net, chunk, labels);
    }
    tally.evaluation()
}

/// Which network an evaluation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Precision {
    Fp32,
    Quantized(Bits, Scheme),
}

impl Precision {
    pub fn network(self, fp32: &MnistNet) -> crate::Result<MnistNet> {
        match self {
            Precision::Fp32 => Ok(fp32.clone()),
            Precision::Quantized(bits, scheme) => fp32.fake_quantized(bits, scheme),
        }
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

/// Evaluates every setting on the test digits a chunk at a time, always advancing the setting
/// the reader is looking at first, then filling in the rest in the background. Partial tallies
/// are kept, so a setting the reader leaves and comes back to resumes where it stopped, and the
/// digits are in shuffled order, so a partial tally is a fair running estimate.
pub struct EvalQueue {
    fp32: MnistNet,
    images: Array2<f32>,
    labels: Vec<u8>,
    tallies: HashMap<Precision, EvalTally>,
    priority: Precision,
    background: Vec<Precision>,
    network: Option<(Precision, Inference)>,
}

impl EvalQueue {
    pub fn new(fp32: MnistNet, digits: &Digits) -> Self {
        // FP32 first (the reference every comparison needs), then from 8 bits down, then 16.
        let mut background = vec![Precision::Fp32];
        for bits in Bits::ALL.into_iter().rev().skip(1).chain([Bits::ALL[7]]) {
            for scheme in Scheme::ALL {
                background.push(Precision::Quantized(bits, scheme));
            }
        }
        EvalQueue {
            fp32,
            images: digits.images_f32(),
            labels: digits.labels.clone(),
            tallies: HashMap::new(),
            priority: Precision::Fp32,
            background,
            network: None,
        }
    }

    /// The setting to advance first from now on.
    pub fn prioritize(&mut self, p: Precision) {
        self.priority = p;
    }

    pub fn total(&self) -> usize {
        self.labels.len()
    }

    /// What is known so far for `p` (a partial tally while it is being evaluated).
    pub fn tally(&self, p: Precision) -> Option<&EvalTally> {
        self.tallies.get(&p)
    }

    pub fn is_done(&self, p: Precision) -> bool {
        self.tally(p).is_some_and(|t| t.count() >= self.total())
    }

    /// Where every setting stands: what is known so far and whether it is complete.
    pub fn snapshot(&self) -> Vec<Progress> {
        progress_list(self.tallies.iter().map(|(&p, t)| (p, *t)), self.total())
    }

    /// The setting the next step would advance, or `None` when everything is evaluated.
    pub fn next(&self) -> Option<Precision> {
        std::iter::once(self.priority)
            .chain(self.background.iter().copied())
            .find(|&p| !self.is_done(p))
    }

    /// Evaluates up to `max_digits` more digits of the next setting; returns that setting.
    pub fn step(&mut self, max_digits: usize) -> crate::Result<Option<Precision>> {
        let Some(p) = self.next() else {
            return Ok(None);
        };
        if self.network.as_ref().map(|(q, _)| *q) != Some(p) {
            self.network = Some((p, Inference::new(&p.network(&self.fp32)?)));
        }
        let net = &mut self.network.as_mut().expect("set above").1;
        let tally = self.tallies.entry(p).or_default();
        let start = tally.count();
        let end = (start + max_digits.max(1)).min(self.labels.len());
        tally.add(
            net,
            self.images.slice(ndarray::s![start..end, ..]),
            &self.labels[start..end],
        );
        Ok(Some(p))
    }
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
    out.sort_by_key(|p| match p.precision {
        Precision::Fp32 => (0, 0, 0),
        Precision::Quantized(b, s) => (1, b.get(), s as u32),
    });
    out
}

/// The digits of shard `shard` out of `shards`: contiguous, in order, sizes differing by at most
/// one. The digits are shuffled, so every shard (and every prefix of one) is a fair sample.
pub fn shard_range(total: usize, shard: usize, shards: usize) -> std::ops::Range<usize> {
    let shards = shards.max(1);
    (shard * total / shards)..((shard + 1) * total / shards)
}

/// The sum of several shards' tallies, each shard evaluated separately (by a web worker with its
/// own [`EvalQueue`]) and reported as its latest running tally.
#[derive(Clone, Debug)]
pub struct ShardedTallies {
    total: usize,
    shards: usize,
    tallies: HashMap<Precision, Vec<EvalTally>>,
}

impl ShardedTallies {
    /// `total` digits split into `shards` shards by [`shard_range`].
    pub fn new(total: usize, shards: usize) -> Self {
        ShardedTallies {
            total,
            shards: shards.max(1),
            tallies: HashMap::new(),
        }
    }

    /// Shard `shard` has evaluated `tally` so far for `p` (it replaces that shard's last report).
    pub fn update(&mut self, shard: usize, p: Precision, tally: EvalTally) {
        if shard < self.shards {
            self.tallies
                .entry(p)
                .or_insert_with(|| vec![EvalTally::default(); self.shards])[shard] = tally;
        }
    }

    /// Whether every shard has evaluated all its digits for `p`.
    pub fn is_done(&self, p: Precision) -> bool {
        self.tallies
            .get(&p)
            .is_some_and(|t| t.iter().map(EvalTally::count).sum::<usize>() >= self.total)
    }

    pub fn snapshot(&self) -> Vec<Progress> {
        let summed = self.tallies.iter().map(|(&p, shards)| {
            let mut sum = EvalTally::default();
            shards.iter().for_each(|t| sum.merge(t));
            (p, sum)
        });
        progress_list(summed, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PIXELS;
    use crate::rng::Rng;

    fn digits(n: usize) -> Digits {
        let mut rng = Rng::new(11);
        Digits {
            images: Array2::from_shape_fn((n, PIXELS), |_| (rng.next_u64() % 256) as u8),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn queue_serves_the_priority_first_and_matches_a_full_evaluation() {
        let net = MnistNet::init(8);
        let d = digits(30);
        let mut q = EvalQueue::new(net.clone(), &d);
        assert_eq!(q.step(7).unwrap(), Some(Precision::Fp32));
        let four = Precision::Quantized(Bits::new(4).unwrap(), Scheme::Symmetric);
        q.prioritize(four);
        assert_eq!(q.step(7).unwrap(), Some(four));
        assert_eq!(q.tally(four).unwrap().count(), 7);
        assert_eq!(
            q.tally(Precision::Fp32).unwrap().count(),
            7,
            "partial tally kept"
        );
        let mut steps = 0;
        while q.step(7).unwrap().is_some() {
            steps += 1;
        }
        // 17 settings × ⌈30/7⌉ = 5 chunks, less the two taken above.
        assert_eq!(steps, 17 * 5 - 2);
        let snap = q.snapshot();
        assert_eq!(snap.len(), 17);
        assert_eq!(snap[0].precision, Precision::Fp32);
        assert!(snap.iter().all(|p| p.done && p.evaluation.count == 30));
        let images = d.images_f32();
        for p in [Precision::Fp32, four] {
            let full = evaluate(&p.network(&net).unwrap(), images.view(), &d.labels);
            let got = q.tally(p).unwrap().evaluation();
            assert_eq!(got.correct, full.correct);
            assert!((got.loss - full.loss).abs() < 1e-5);
        }
    }

    #[test]
    fn shards_cover_the_digits_once_and_their_tallies_add_up() {
        for (total, shards) in [(2000, 2), (2000, 3), (7, 4), (3, 5)] {
            let ranges: Vec<_> = (0..shards).map(|s| shard_range(total, s, shards)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[shards - 1].end, total);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        }
        let net = MnistNet::init(8);
        let d = digits(30);
        let four = Precision::Quantized(Bits::new(4).unwrap(), Scheme::Asymmetric);
        let mut sharded = ShardedTallies::new(30, 3);
        for shard in 0..3 {
            assert!(!sharded.is_done(four), "not before every shard reported");
            let r = shard_range(30, shard, 3);
            let indices: Vec<usize> = r.collect();
            let mut q = EvalQueue::new(net.clone(), &d.select(&indices));
            q.prioritize(four);
            while q.next() == Some(four) {
                q.step(4).unwrap();
                // A later report from the same shard replaces the earlier one.
                sharded.update(shard, four, *q.tally(four).unwrap());
            }
        }
        let snap = sharded.snapshot();
        assert!(sharded.is_done(four));
        assert!(!sharded.is_done(Precision::Fp32));
        assert_eq!(snap.len(), 1);
        assert!(snap[0].done);
        let full = evaluate(
            &four.network(&net).unwrap(),
            d.images_f32().view(),
            &d.labels,
        );
        assert_eq!(snap[0].evaluation.correct, full.correct);
        assert_eq!(snap[0].evaluation.count, 30);
        assert!((snap[0].evaluation.loss - full.loss).abs() < 1e-5);
        // Reports for a shard that does not exist are ignored.
        sharded.update(7, four, EvalTally::default());
        assert_eq!(sharded.snapshot()[0].evaluation.count, 30);
    }

    #[test]
    fn a_fast_forward_evaluation_matches_the_training_forward_pass() {
        let net = MnistNet::init(8);
        let d = digits(40);
        let images = d.images_f32();
        let fast = evaluate(&net, images.view(), &d.labels);
        let logits = net.logits(images.view());
        let correct = logits
            .outer_iter()
            .zip(&d.labels)
            .filter(|(r, &l)| argmax(r.as_slice().unwrap()) == l as usize)
            .count();
        assert_eq!(fast.correct, correct);
    }
}
