//! Loss and accuracy of a network on labelled digits, in chunks so a caller (the web app) can
//! report progress and stop between them.

use crate::model::{softmax_cross_entropy, MnistNet};
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Digits per forward pass: large enough for efficient GEMMs, small enough for the cache.
pub const CHUNK: usize = 250;

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

/// Running totals over chunks of digits.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalTally {
    loss_sum: f64,
    correct: usize,
    count: usize,
}

impl EvalTally {
    /// Runs `images` `[n, 784]` through `net` and adds the outcome.
    pub fn add(&mut self, net: &MnistNet, images: ArrayView2<f32>, labels: &[u8]) {
        let logits = net.logits(images);
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
        .fold((0, f32::NEG_INFINITY), |best, (i, &s)| if s > best.1 { (i, s) } else { best })
        .0
}

/// Loss and accuracy of `net` on all of `images` / `labels`.
pub fn evaluate(net: &MnistNet, images: ArrayView2<f32>, labels: &[u8]) -> Evaluation {
    let mut tally = EvalTally::default();
    for (chunk, labels) in images.axis_chunks_iter(Axis(0), CHUNK).zip(labels.chunks(CHUNK)) {
        tally.add(net, chunk, labels);
    }
    tally.evaluation()
}
