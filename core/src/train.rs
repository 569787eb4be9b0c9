//! Training MNISTNet: Adam on mini-batches of cross-entropy, with 1–2 pixel random shifts as
//! augmentation (we have 8,000 training digits, not 60,000), deterministic from a seed.

use crate::data::{Digits, PIXELS, SIDE};
use crate::eval::{evaluate, Evaluation};
use crate::lanes::F4;
use crate::model::MnistNet;
use crate::rng::Rng;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's peak learning rate; it follows a cosine decay to zero over the run.
    pub learning_rate: f32,
    pub seed: u64,
    /// Each training digit is shifted by up to this many pixels in x and y.
    pub max_shift: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 15,
            batch_size: 64,
            learning_rate: 2e-3,
            seed: 2024,
            max_shift: 2,
        }
    }
}

/// What one epoch achieved.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub test: Evaluation,
}

/// Adam (Kingma & Ba), with PyTorch's defaults: β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
pub struct Adam {
    step: i32,
    m: MnistNet,
    v: MnistNet,
}

impl Adam {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    pub fn new() -> Self {
        Adam {
            step: 0,
            m: MnistNet::zeros(),
            v: MnistNet::zeros(),
        }
    }

    pub fn step(&mut self, net: &mut MnistNet, grads: &MnistNet, lr: f32) {
        self.step += 1;
        let params = net.tensors_mut();
        let ms = self.m.tensors_mut();
        let vs = self.v.tensors_mut();
        for (((p, g), m), v) in params.into_iter().zip(grads.tensors()).zip(ms).zip(vs) {
            Self::update(self.step, lr, p, g, m, v);
        }
    }

    /// One Adam update of parameters `p` with gradients `g` and moments `m`, `v`, at step `step`
    /// (from 1): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ − lr·m̂/(√v̂ + ε)` with bias
    /// correction. Also what QAT's learned scales (LSQ) take, beside the weights.
    pub fn update(step: i32, lr: f32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let c1 = 1.0 - Self::BETA1.powi(step);
        let c2 = 1.0 - Self::BETA2.powi(step);
        assert!(g.len() == p.len() && m.len() == p.len() && v.len() == p.len());
        // Four at a time: in wasm, where plain loops stay scalar, Adam over 420,000 weights was
        // ~0.3 ms of a QAT step. Each lane's operations are the scalar formula's, in its order.
        let [b1, b2, one_b1, one_b2, c1, c2, lr, eps] = [
            Self::BETA1,
            Self::BETA2,
            1.0 - Self::BETA1,
            1.0 - Self::BETA2,
            c1,
            c2,
            lr,
            Self::EPS,
        ]
        .map(F4::splat);
        let four = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            let g = F4::load(g);
            let mi = b1 * F4::load(m) + one_b1 * g;
            let vi = b2 * F4::load(v) + one_b2 * g * g;
            mi.store(m);
            vi.store(v);
            (F4::load(p) - lr * (mi / c1) / ((vi / c2).sqrt() + eps)).store(p);
        };
        let lanes = p.len() / 4 * 4;
        for i in (0..lanes).step_by(4) {
            four(&mut p[i..], &g[i..], &mut m[i..], &mut v[i..]);
        }
        // The last few in zero-padded lanes (zeros give p = 0 there, and are dropped).
        let tail = p.len() - lanes;
        let mut t = [[0.0f32; 4]; 4];
        for (t, s) in t
            .iter_mut()
            .zip([&p[lanes..], &g[lanes..], &m[lanes..], &v[lanes..]])
        {
            t[..tail].copy_from_slice(s);
        }
        let [mut tp, tg, mut tm, mut tv] = t;
        four(&mut tp, &tg, &mut tm, &mut tv);
        p[lanes..].copy_from_slice(&tp[..tail]);
        m[lanes..].copy_from_slice(&tm[..tail]);
        v[lanes..].copy_from_slice(&tv[..tail]);
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new()
    }
}

/// Copies `src` (28×28, pixels in [0, 1]) into `dst` moved by `(dx, dy)`, filling with zeros.
fn shifted(src: &[f32], dst: &mut [f32], dx: isize, dy: isize) {
    dst.fill(0.0);
    let side = SIDE as isize;
    for y in 0..side {
        let sy = y - dy;
        if !(0..side).contains(&sy) {
            continue;
        }
        for x in 0..side {
            let sx = x - dx;
            if (0..side).contains(&sx) {
                dst[(y * side + x) as usize] = src[(sy * side + sx) as usize];
            }
        }
    }
}

/// Trains a fresh network on `train`, evaluating on `test` after every epoch.
pub fn train(
    train: &Digits,
    test: &Digits,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochReport),
) -> MnistNet {
    let mut rng = Rng::new(cfg.seed);
    let mut net = MnistNet::init(rng.next_u64());
    let mut adam = Adam::new();
    let images = train.images_f32();
    let test_images = test.images_f32();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
    let total_steps = (cfg.epochs * steps_per_epoch) as f32;
    let shift = cfg.max_shift as isize;
    let mut step = 0;
    for epoch in 1..=cfg.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0f64;
        for batch in order.chunks(cfg.batch_size) {
            let mut x = Array2::<f32>::zeros((batch.len(), PIXELS));
            let mut labels = Vec::with_capacity(batch.len());
            for (mut row, &i) in x.outer_iter_mut().zip(batch) {
                let dx = rng.below(2 * cfg.max_shift + 1) as isize - shift;
                let dy = rng.below(2 * cfg.max_shift + 1) as isize - shift;
                let src = images.row(i);
                shifted(
                    src.as_slice().expect("row-major"),
                    row.as_slice_mut().expect("row-major"),
                    dx,
                    dy,
                );
                labels.push(train.labels[i]);
            }
            let (loss, grads) = net.loss_and_grad(x.view(), &labels);
            let lr = cfg.learning_rate
                * 0.5
                * (1.0 + (std::f32::consts::PI * step as f32 / total_steps).cos());
            adam.step(&mut net, &grads, lr);
            loss_sum += f64::from(loss) * batch.len() as f64;
            step += 1;
        }
        on_epoch(&EpochReport {
            epoch,
            train_loss: loss_sum / train.len() as f64,
            // An empty test split (refused by the CLI before training) reports zeros.
            test: evaluate(&net, test_images.view(), &test.labels).unwrap_or_default(),
        });
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_pixels_and_fills_zeros() {
        let mut src = vec![0.0f32; PIXELS];
        src[5 * SIDE + 5] = 1.0;
        let mut dst = vec![9.0f32; PIXELS];
        shifted(&src, &mut dst, 2, -1);
        assert_eq!(dst[4 * SIDE + 7], 1.0);
        assert_eq!(dst.iter().sum::<f32>(), 1.0);
    }

    #[test]
    fn a_few_adam_steps_reduce_the_loss() {
        let mut rng = Rng::new(1);
        let x = Array2::from_shape_fn((16, PIXELS), |_| rng.next_f32());
        let labels: Vec<u8> = (0..16).map(|i| (i % 10) as u8).collect();
        let mut net = MnistNet::init(0);
        let mut adam = Adam::new();
        let (first, _) = net.loss_and_grad(x.view(), &labels);
        for _ in 0..20 {
            let (_, g) = net.loss_and_grad(x.view(), &labels);
            adam.step(&mut net, &g, 1e-3);
        }
        let (last, _) = net.loss_and_grad(x.view(), &labels);
        assert!(last < first * 0.5, "loss {first} → {last}");
    }
}
