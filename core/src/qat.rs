//! Quantization-aware training, the essay's third method ("tell the baker upfront"): fine-tune
//! the trained weights with the recipe's fake quantization in the forward pass, so the network
//! learns weights that survive it.
//!
//! Each step, for a batch of training digits:
//! - every layer's quantizer is calibrated on its *current* FP32 weights (what the essay's code
//!   does: the recipe's range rule, e.g. min–max, recomputed per step), and the forward pass runs
//!   on `ŵ = s·(clamp(z + round(w/s), qmin, qmax) − z)` (biases stay FP32);
//! - the straight-through estimator, as PyTorch defines it (`fake_quantize_per_tensor_affine`'s
//!   backward): `∂L/∂w = ∂L/∂ŵ · 1[qmin ≤ z + round(w/s) ≤ qmax]`, the mask taken before the
//!   clamp — round has no useful derivative, so the gradient passes through it unchanged, and
//!   stops only where the clamp cut the weight off;
//! - Adam (PyTorch's defaults) updates the FP32 weights, which the next step quantizes again.
//!
//! Deterministic from the seed: the batches are a seeded shuffle of the training digits.

use crate::data::{Digits, PIXELS};
use crate::error::{Error, Result};
use crate::eval::{evaluate, evaluate_scores, Evaluation};
use crate::model::{Layer, MnistNet};
use crate::observer::affine_qparams;
use crate::quant::observe_range;
use crate::quant::QParams;
use crate::quantizer::TensorQuant;
use crate::recipe::{Granularity, RangeMethod, Recipe, Rounding};
use crate::rng::Rng;
use crate::train::Adam;
use crate::weights::{compute_weight, torch_weight};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// How a QAT run is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct QatConfig {
    pub recipe: Recipe,
    pub steps: usize,
    /// Adam's learning rate, constant over the run.
    pub learning_rate: f32,
    pub batch_size: usize,
    pub seed: u64,
    /// Learn each layer's scale (LSQ) instead of recomputing it from the weights each step.
    pub lsq: bool,
    pub weight_observer: WeightObserver,
    /// Fake-quantize the activations too, at this many bits (None: FP32 activations).
    pub activation_bits: Option<u8>,
}

impl QatConfig {
    /// The essay's fine-tuning: Adam at 1e-4, batches of 64.
    pub fn new(recipe: Recipe, steps: usize) -> Self {
        QatConfig {
            recipe,
            steps,
            learning_rate: 1e-4,
            batch_size: 64,
            seed: 2024,
            lsq: false,
            weight_observer: WeightObserver::Current,
            activation_bits: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::Qat(format!(
                "learning rate {} (it must be a positive number)",
                self.learning_rate
            )));
        }
        if self.batch_size == 0 {
            return Err(Error::Qat("batch size 0".into()));
        }
        if let Some(b) = self.activation_bits {
            if !(2..=8).contains(&b) {
                return Err(Error::Qat(format!("{b}-bit activations (2 to 8 here)")));
            }
        }
        // LSQ learns, and the moving average averages, an integer grid's range: a number format
        // of its own (NF4, FP8, …) has none. Plain QAT trains through any format's rounding.
        if self.lsq || self.weight_observer == WeightObserver::MovingAverage {
            if let Some(layer) = Layer::ALL
                .into_iter()
                .find(|&l| !self.recipe.layer(l).is_int())
            {
                return Err(Error::Qat(format!(
                    "LSQ and the moving-average observer work on the integer grid's scale; {} is {}, which sets its own",
                    layer.name(),
                    self.recipe.layer(layer).format.label()
                )));
            }
        }
        if self.weight_observer == WeightObserver::MovingAverage {
            if self.lsq {
                return Err(Error::Qat(
                    "LSQ learns the scale: a moving-average observer has nothing to choose".into(),
                ));
            }
            if let Some(layer) = Layer::ALL
                .into_iter()
                .find(|&l| self.recipe.layer(l).range != RangeMethod::MinMax)
            {
                return Err(Error::Qat(format!(
                    "a moving average averages min and max; {}'s range is {}",
                    layer.name(),
                    self.recipe.layer(layer).range
                )));
            }
        }
        if self.lsq {
            for layer in Layer::ALL {
                let r = self.recipe.layer(layer);
                if r.granularity != Granularity::PerTensor || r.rounding != Rounding::HalfEven {
                    return Err(Error::Qat(format!(
                        "LSQ learns one scale per tensor, rounded half to even; {} is {} with {} rounding",
                        layer.name(),
                        match r.granularity {
                            Granularity::PerTensor => "per tensor".to_string(),
                            g => format!("per {g}"),
                        },
                        r.rounding
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The learning rates the app offers (Adam's, constant): the essay's 1e-4 and a decade around it.
pub const LEARNING_RATES: [f32; 5] = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3];
/// The longest run a URL may ask for (500 steps already recover 2 bits).
pub const MAX_STEPS: usize = 5000;

/// The app's QAT choices as its URL holds them (`qat.steps`, `qat.lr`); the recipe is the
/// reader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QatSetting {
    pub steps: usize,
    /// Index into [`LEARNING_RATES`].
    pub lr: usize,
    /// Learn the scales (LSQ).
    pub lsq: bool,
    pub weight_observer: WeightObserver,
    pub activation_bits: Option<u8>,
}

impl Default for QatSetting {
    /// The essay's fine-tuning, 500 steps at 1e-4.
    fn default() -> Self {
        QatSetting {
            steps: 500,
            lr: 2,
            lsq: false,
            weight_observer: WeightObserver::Current,
            activation_bits: None,
        }
    }
}

impl QatSetting {
    pub fn learning_rate(&self) -> f32 {
        LEARNING_RATES[self.lr.min(LEARNING_RATES.len() - 1)]
    }

    /// The index of `text` (e.g. `1e-4`, `0.0001`) among [`LEARNING_RATES`].
    pub fn parse_lr(text: &str) -> Option<usize> {
        let v: f32 = text.trim().parse().ok()?;
        LEARNING_RATES
            .iter()
            .position(|&r| (r - v).abs() <= r * 1e-3)
    }

    /// `1e-4` and so on, as the URL and the picker write it.
    pub fn lr_name(lr: usize) -> String {
        format!("{:e}", LEARNING_RATES[lr.min(LEARNING_RATES.len() - 1)])
    }

    pub fn config(&self, recipe: Recipe) -> QatConfig {
        QatConfig {
            learning_rate: self.learning_rate(),
            lsq: self.lsq,
            weight_observer: self.weight_observer,
            activation_bits: self.activation_bits,
            ..QatConfig::new(recipe, self.steps)
        }
    }
}

/// How each step finds the weights' qparams (LSQ aside).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightObserver {
    /// The recipe's range rule on the current weights, every step: what the essay's code does.
    #[default]
    Current,
    /// Each block's min and max averaged over the steps, as PyTorch's `FakeQuantize` with a
    /// `MovingAverageMinMaxObserver` does (its default for QAT):
    /// `min ← min + 0.01·(batch_min − min)`, the first step setting it; the qparams from the
    /// averaged range by `_calculate_qparams`, as for min–max. (PyTorch's fused QAT op chooses
    /// its qparams with FBGEMM's rule instead, slightly different: see reference.md §2.)
    MovingAverage,
}

/// A moving-average min–max observer's state for one block: `None` until it has seen a tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MovingRange(pub Option<(f32, f32)>);

impl MovingRange {
    /// Takes one observation's `[min, max]` ([`crate::observer::moving_average`]).
    pub fn observe(&mut self, range: (f32, f32)) -> (f32, f32) {
        let next = crate::observer::moving_average(self.0, range);
        self.0 = Some(next);
        next
    }
}

/// A layer's weight fake-quantized under its recipe, and the STE's mask, both in the network's
/// compute layout. With `averages` (a moving-average observer's ranges, one per block), the
/// blocks' qparams come from those, moved towards this step's ranges when `observe` is set.
fn fake_quantize(
    net: &MnistNet,
    layer: Layer,
    recipe: &Recipe,
    averages: Option<(&mut Vec<MovingRange>, bool)>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let r = recipe.layer(layer);
    // Per tensor or per channel on the integer grid, with a range from the values as a set
    // (min–max, percentile) and a rounding that does not depend on a weight's index, each
    // weight's ŵ depends only on its own value and its row's: the compute layout (whose rows are
    // the output channels too) gives the same values without permuting fc1's 401,536 weights
    // three times a step. Groups, stochastic coins, MSE's summed error and the formats' blocks
    // depend on the order: those go through PyTorch's layout.
    let layout_free = r.is_int()
        && matches!(
            r.granularity,
            Granularity::PerTensor | Granularity::PerChannel
        )
        && !matches!(r.rounding, Rounding::Stochastic(_))
        && r.range != RangeMethod::Mse;
    let w = if layout_free {
        net.weight(layer).to_vec()
    } else {
        torch_weight(net, layer)
    };
    let rows = layer.weight_shape()[0];
    let compute_shape = [rows, w.len() / rows];
    let shape: &[usize] = if layout_free {
        &compute_shape
    } else {
        layer.weight_shape()
    };
    let mut quant = TensorQuant::calibrate(&w, shape, r, layer as u32)?;
    if let Some((averages, observe)) = averages {
        averages.resize(quant.blocks.len(), MovingRange::default());
        for (avg, b) in averages.iter_mut().zip(quant.blocks.iter_mut()) {
            let (lo, hi) = match avg.0 {
                Some(range) if !observe => range,
                _ => avg.observe((b.alpha, b.beta)),
            };
            (b.lo, b.hi) = (lo, hi);
            b.qparams = QParams::from_range(lo, hi, r.bits, r.scheme)?;
        }
    }
    let (fake, mask) = quant.fake_quant_with_mask(&w);
    if layout_free {
        return Ok((fake, mask));
    }
    Ok((compute_weight(layer, &fake), compute_weight(layer, &mask)))
}

/// Activation fake quantization while training, as PyTorch's eager QAT does it: a FakeQuantize
/// over a MovingAverageMinMaxObserver at each of the five sites (the input, the three fused
/// conv/linear+ReLU outputs, fc2's scores), quint8 affine over `0..2ᵇ − 1`. In a training step
/// each site first observes the batch, then fake-quantizes it with the qparams of the moved
/// range; an evaluation only fake-quantizes.
#[derive(Clone, Debug)]
struct ActivationSites {
    qmax: i32,
    ranges: [MovingRange; 5],
    /// The first value that could not be observed (NaN or infinite), as an error.
    error: Option<Error>,
}

impl ActivationSites {
    fn new(bits: u8) -> Self {
        ActivationSites {
            qmax: (1 << bits) - 1,
            ranges: [MovingRange::default(); 5],
            error: None,
        }
    }

    fn quantize(&mut self, site: usize, values: &mut [f32], observe: bool) -> Vec<f32> {
        let range = match self.ranges[site].0 {
            Some(r) if !observe => r,
            _ => match observe_range(values) {
                Ok(r) => self.ranges[site].observe(r),
                Err(e) => {
                    self.error.get_or_insert(e);
                    return vec![1.0; values.len()];
                }
            },
        };
        let qp = affine_qparams(range.0, range.1, 0, self.qmax);
        values
            .iter_mut()
            .map(|v| {
                let (fake, clipped) = qp.fake_quant_clips(*v);
                *v = fake;
                if clipped {
                    0.0
                } else {
                    1.0
                }
            })
            .collect()
    }

    fn check(&mut self) -> Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }
}

/// One QAT run, stepped by the caller (a worker reports between steps).
pub struct Qat {
    config: QatConfig,
    /// The FP32 ("shadow") weights being trained.
    net: MnistNet,
    adam: Adam,
    rng: Rng,
    train: Digits,
    order: Vec<usize>,
    cursor: usize,
    step: usize,
    /// With LSQ: each layer's quantizer, its scale learned.
    lsq: Option<Lsq>,
    /// With a moving-average observer: each layer's averaged range per block (empty until the
    /// first step).
    averages: Option<[Vec<MovingRange>; 4]>,
    /// With activation fake quant: each site's observer.
    activations: Option<ActivationSites>,
}

/// LSQ's state: each layer's qparams (the scale trained, the zero point as first calibrated) and
/// Adam's moments for the four scales.
struct Lsq {
    qparams: [QParams; 4],
    m: [f32; 4],
    v: [f32; 4],
}

impl Lsq {
    /// The scales start where the recipe's calibration puts them on the given weights.
    fn new(net: &MnistNet, recipe: &Recipe) -> Result<Self> {
        let mut qparams = Vec::with_capacity(4);
        for layer in Layer::ALL {
            let q = TensorQuant::calibrate(
                &torch_weight(net, layer),
                layer.weight_shape(),
                recipe.layer(layer),
                layer as u32,
            )?;
            qparams.push(q.blocks[0].qparams);
        }
        Ok(Lsq {
            qparams: qparams.try_into().expect("four layers"),
            m: [0.0; 4],
            v: [0.0; 4],
        })
    }

    /// `ŵ` of every weight under the learned scales (biases stay FP32).
    fn fake(&self, net: &MnistNet) -> MnistNet {
        let mut fake = net.clone();
        for (layer, qp) in Layer::ALL.into_iter().zip(&self.qparams) {
            fake.weight_mut(layer)
                .iter_mut()
                .for_each(|w| *w = qp.fake_quant_clips(*w).0);
        }
        fake
    }

    /// Turns the gradients at `ŵ` into the weights' (the STE) and steps the scales: each
    /// scale's gradient summed over its tensor and multiplied by LSQ's gradient scale
    /// `g = 1/√(numel·qmax)` (torch.ao's `_LearnableFakeQuantize` with grad scaling), then Adam,
    /// and the scale kept at least f32 ε as torch.ao clamps it.
    fn backward(&mut self, net: &MnistNet, grads: &mut MnistNet, step: i32, lr: f32) {
        let mut dscale = [0.0f32; 4];
        for (l, layer) in Layer::ALL.into_iter().enumerate() {
            let qp = self.qparams[l];
            let mut sum = 0.0f64;
            for (g, &w) in grads.weight_mut(layer).iter_mut().zip(net.weight(layer)) {
                let (dw, ds) = qp.lsq_gradients(w, *g);
                *g = dw;
                sum += f64::from(ds);
            }
            let numel = net.weight(layer).len() as f32;
            let factor = 1.0 / (numel * qp.qmax.max(1) as f32).sqrt();
            dscale[l] = sum as f32 * factor;
        }
        let mut scales = self.qparams.map(|q| q.scale);
        Adam::update(step, lr, &mut scales, &dscale, &mut self.m, &mut self.v);
        for (q, s) in self.qparams.iter_mut().zip(scales) {
            q.scale = s.max(f32::EPSILON);
        }
    }
}

impl Qat {
    pub fn new(net: &MnistNet, train: &Digits, config: QatConfig) -> Result<Self> {
        config.validate()?;
        if train.is_empty() {
            return Err(Error::Qat("no training digits".into()));
        }
        let mut rng = Rng::new(config.seed);
        let mut order: Vec<usize> = (0..train.len()).collect();
        rng.shuffle(&mut order);
        let averages =
            (config.weight_observer == WeightObserver::MovingAverage).then(Default::default);
        let lsq = if config.lsq {
            Some(Lsq::new(net, &config.recipe)?)
        } else {
            None
        };
        let mut activations = config.activation_bits.map(ActivationSites::new);
        if let Some(a) = activations.as_mut() {
            // The observers first see the first batch through the network as it starts, so the
            // "before" point has activation qparams. The first step sees the same digits at the
            // same weights, which leaves the average where this put it: as if it had come first.
            let first: Vec<u32> = order
                .iter()
                .take(config.batch_size)
                .map(|&i| i as u32)
                .collect();
            let fake = match &lsq {
                Some(l) => l.fake(net),
                None => net.fake_quantized(&config.recipe)?,
            };
            let x = batch_images(train, &first)?;
            fake.logits_quantized(x.view(), &mut |site, v| a.quantize(site, v, true));
            a.check()?;
        }
        Ok(Qat {
            config,
            net: net.clone(),
            adam: Adam::new(),
            rng,
            train: train.clone(),
            order,
            cursor: 0,
            step: 0,
            lsq,
            averages,
            activations,
        })
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }

    pub fn finished(&self) -> bool {
        self.step >= self.config.steps
    }

    /// The FP32 weights as trained so far.
    pub fn weights(&self) -> &MnistNet {
        &self.net
    }

    /// The network as the recipe quantizes it now (what QAT is judged by): with LSQ, under the
    /// learned scales.
    pub fn quantized(&self) -> Result<MnistNet> {
        if let Some(lsq) = &self.lsq {
            return Ok(lsq.fake(&self.net));
        }
        // As `plan` fake-quantizes (so the browser's step-0 point, the essay's 32.6 %, checks
        // the four-lane path wasm runs), under the averaged ranges without moving them: an
        // evaluation is no training step.
        let mut fake = self.net.clone();
        for layer in Layer::ALL {
            let mut averages = self.averages.as_ref().map(|a| a[layer as usize].clone());
            let averages = averages.as_mut().map(|a| (a, false));
            let (w, _) = fake_quantize(&self.net, layer, &self.config.recipe, averages)?;
            fake.weight_mut(layer).copy_from_slice(&w);
        }
        Ok(fake)
    }

    /// With LSQ, each layer's scale now.
    pub fn scales(&self) -> Option<[f32; 4]> {
        self.lsq.as_ref().map(|l| l.qparams.map(|q| q.scale))
    }

    pub fn config(&self) -> &QatConfig {
        &self.config
    }

    /// The fake-quantized network's accuracy and loss on `images` now (with quantized
    /// activations, through the training forward pass, the observers left as they are).
    pub fn evaluate(&self, images: ArrayView2<f32>, labels: &[u8]) -> Result<Evaluation> {
        let net = self.quantized()?;
        let Some(sites) = &self.activations else {
            return evaluate(&net, images, labels);
        };
        let mut sites = sites.clone();
        let (e, _) = evaluate_scores(images, labels, |chunk| {
            let x = ArrayView2::from_shape((chunk.len() / PIXELS, PIXELS), chunk)
                .expect("rows of 784 pixels");
            net.logits_quantized(x, &mut |site, v| sites.quantize(site, v, false))
                .into_raw_vec_and_offset()
                .0
        })?;
        sites.check()?;
        Ok(e)
    }

    /// One step; returns the batch's mean cross-entropy at the fake-quantized weights.
    pub fn step(&mut self) -> Result<f32> {
        let plan = self.plan()?;
        let parts = (0..plan.parts.len())
            .map(|part| self.gradient(&plan, part))
            .collect::<Result<Vec<_>>>()?;
        self.apply(plan, &parts)
    }

    /// A step's first half: the next batch, split into [`PARTS`], and every weight
    /// fake-quantized under the recipe (with the STE's masks, kept for [`Self::apply`]).
    pub fn plan(&mut self) -> Result<Plan> {
        let n = self.config.batch_size.min(self.order.len());
        if self.cursor + n > self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.cursor = 0;
        }
        let batch = &self.order[self.cursor..self.cursor + n];
        self.cursor += n;
        // Activation observers see each batch whole, once, as PyTorch's do: one part, here.
        let parts = if self.activations.is_some() { 1 } else { PARTS };
        let size = n.div_ceil(parts).max(1);
        let parts = batch
            .chunks(size)
            .map(|c| c.iter().map(|&i| i as u32).collect())
            .collect();
        let mut masks = Vec::with_capacity(4);
        let fake = match &self.lsq {
            // LSQ's gradients need the FP32 weights, not a mask (Lsq::backward).
            Some(lsq) => lsq.fake(&self.net),
            None => {
                let mut fake = self.net.clone();
                for layer in Layer::ALL {
                    let averages = self
                        .averages
                        .as_mut()
                        .map(|a| (&mut a[layer as usize], true));
                    let (w, mask) = fake_quantize(&self.net, layer, &self.config.recipe, averages)?;
                    fake.weight_mut(layer).copy_from_slice(&w);
                    masks.push(mask);
                }
                fake
            }
        };
        Ok(Plan {
            step: self.step,
            fake,
            masks,
            parts,
        })
    }

    /// One part of a planned step's gradient, here (a helper computes the others elsewhere).
    pub fn gradient(&mut self, plan: &Plan, part: usize) -> Result<PartGradient> {
        let digits = plan
            .parts
            .get(part)
            .ok_or_else(|| Error::Qat(format!("no part {part} in this step")))?;
        let Some(sites) = self.activations.as_mut() else {
            return part_gradient(&plan.fake, &self.train, digits);
        };
        let x = batch_images(&self.train, digits)?;
        let y: Vec<u8> = digits
            .iter()
            .map(|&i| self.train.labels[i as usize])
            .collect();
        let (loss, grads) = plan
            .fake
            .loss_and_grad_quantized(x.view(), &y, &mut |site, v| sites.quantize(site, v, true));
        sites.check()?;
        Ok(PartGradient {
            digits: digits.len(),
            loss,
            grads,
        })
    }

    /// A step's second half: the parts' gradients, in order, weighted by their digits into the
    /// batch's mean; the STE's mask; Adam. Returns the batch's mean loss.
    pub fn apply(&mut self, plan: Plan, parts: &[PartGradient]) -> Result<f32> {
        if parts.len() != plan.parts.len()
            || parts
                .iter()
                .zip(&plan.parts)
                .any(|(g, p)| g.digits != p.len())
        {
            return Err(Error::Qat(format!(
                "step {}: the gradients do not match the batch",
                self.step + 1
            )));
        }
        let (loss, mut grads) = combine(parts);
        if !loss.is_finite() {
            return Err(Error::Qat(format!(
                "the loss became {loss} at step {}",
                self.step + 1
            )));
        }
        let lr = self.config.learning_rate;
        match &mut self.lsq {
            Some(lsq) => lsq.backward(&self.net, &mut grads, self.step as i32 + 1, lr),
            None => {
                for (layer, mask) in Layer::ALL.into_iter().zip(&plan.masks) {
                    grads
                        .weight_mut(layer)
                        .iter_mut()
                        .zip(mask)
                        .for_each(|(g, m)| *g *= m);
                }
            }
        }
        self.adam
            .step(&mut self.net, &grads, self.config.learning_rate);
        self.step += 1;
        Ok(loss)
    }
}

/// The batch's mean loss and gradient from its parts' means: each weighted by its share of the
/// batch's digits, added in the parts' order.
fn combine(parts: &[PartGradient]) -> (f32, MnistNet) {
    let total: usize = parts.iter().map(|g| g.digits).sum();
    let mut grads = MnistNet::zeros();
    let mut loss = 0.0f32;
    for part in parts {
        let w = part.digits as f32 / total.max(1) as f32;
        loss += w * part.loss;
        for (g, p) in grads.tensors_mut().into_iter().zip(part.grads.tensors()) {
            g.iter_mut().zip(p).for_each(|(g, p)| *g += w * p);
        }
    }
    (loss, grads)
}

/// The training digits `part` indexes, as [`Digits::images_f32`] scales them.
fn batch_images(train: &Digits, part: &[u32]) -> Result<Array2<f32>> {
    if let Some(&i) = part.iter().find(|&&i| i as usize >= train.len()) {
        return Err(Error::Qat(format!(
            "training digit {i} asked of {}",
            train.len()
        )));
    }
    let mut x = Array2::<f32>::zeros((part.len(), PIXELS));
    for (mut row, &i) in x.outer_iter_mut().zip(part) {
        let pixels = train.images.row(i as usize);
        row.iter_mut()
            .zip(pixels)
            .for_each(|(x, &p)| *x = f32::from(p) / 255.0);
    }
    Ok(x)
}

/// How many parts a batch is split into, whatever the number of workers: a worker computes one
/// part's gradient, and one worker alone computes both, so the run's bits do not depend on how
/// many workers the reader's browser has.
pub const PARTS: usize = 2;

/// One step's work, planned: the fake-quantized network every part's gradient is taken at, and
/// the training digits of each part.
pub struct Plan {
    /// Steps done before this one.
    pub step: usize,
    pub fake: MnistNet,
    masks: Vec<Vec<f32>>,
    pub parts: Vec<Vec<u32>>,
}

/// One part's mean loss and gradient (at the fake-quantized weights), over `digits` digits.
pub struct PartGradient {
    pub digits: usize,
    pub loss: f32,
    pub grads: MnistNet,
}

/// The gradient of one part of a batch, the training digits `part` indexes.
pub fn part_gradient(fake: &MnistNet, train: &Digits, part: &[u32]) -> Result<PartGradient> {
    let x = batch_images(train, part)?;
    let y: Vec<u8> = part.iter().map(|&i| train.labels[i as usize]).collect();
    let (loss, grads) = fake.loss_and_grad(x.view(), &y);
    Ok(PartGradient {
        digits: part.len(),
        loss,
        grads,
    })
}

/// One point of the QAT curve: after `step` steps, the fake-quantized network on the test
/// digits, and the mean training loss of the steps since the previous point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub step: usize,
    /// None at step 0 (no step has run yet).
    pub train_loss: Option<f64>,
    pub test: Evaluation,
    /// With LSQ, each layer's learned scale (conv1, conv2, fc1, fc2).
    pub scales: Option<[f32; 4]>,
}

/// The curve as a run goes: the steps' losses since the last point, and the points so far.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    pub points: Vec<Point>,
    loss_sum: f64,
    losses: usize,
}

impl Curve {
    /// A step's training loss (the batch's mean, at the fake-quantized weights).
    pub fn add_loss(&mut self, loss: f32) {
        self.loss_sum += f64::from(loss);
        self.losses += 1;
    }

    /// Closes a point at `step`: the mean of the losses since the last one, beside `test`.
    pub fn point(&mut self, step: usize, test: Evaluation, scales: Option<[f32; 4]>) -> Point {
        let train_loss = self.close();
        self.push(step, train_loss, test, scales)
    }

    /// The mean of the losses since the last point, and a fresh start: for a point whose test
    /// evaluation comes later (from another worker), then [`Self::push`].
    pub fn close(&mut self) -> Option<f64> {
        let train_loss = (self.losses > 0).then(|| self.loss_sum / self.losses as f64);
        (self.loss_sum, self.losses) = (0.0, 0);
        train_loss
    }

    /// Adds a point (after the previous ones).
    pub fn push(
        &mut self,
        step: usize,
        train_loss: Option<f64>,
        test: Evaluation,
        scales: Option<[f32; 4]>,
    ) -> Point {
        let p = Point {
            step,
            train_loss,
            test,
            scales,
        };
        self.points.push(p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QParams;
    use crate::quantizer::LayerQuant;

    fn test_digits() -> Digits {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../static/");
        let read = |f: &str| std::fs::read(format!("{dir}{f}")).unwrap();
        Digits::from_idx(
            &read("mnist-test-images.idx3-ubyte"),
            &read("mnist-test-labels.idx1-ubyte"),
        )
        .unwrap()
    }

    #[test]
    fn the_compute_layout_shortcut_quantizes_as_pytorch_s_layout_does() {
        // Each layer fake-quantized in PyTorch's layout and moved back, against fake_quantize
        // (which skips the layout where the result cannot depend on it).
        let net = MnistNet::init(9);
        for text in [
            "bits=2",
            "bits=3&scheme=asym&granularity=channel",
            "bits=4&range=percentile:99.9",
            "bits=4&granularity=group:8",
            "bits=3&rounding=stochastic:5",
            "bits=4&range=mse",
        ] {
            let recipe: Recipe = text.parse().unwrap();
            for layer in Layer::ALL {
                let q = LayerQuant::new(&net, layer, recipe.layer(layer)).unwrap();
                let (fake, mask) = q.quant.fake_quant_with_mask(&q.weight);
                let got = fake_quantize(&net, layer, &recipe, None).unwrap();
                assert_eq!(got.0, compute_weight(layer, &fake), "{text} {layer:?}");
                assert_eq!(got.1, compute_weight(layer, &mask), "{text} {layer:?}");
            }
        }
    }

    /// Uneven parts (40 and 24 digits) combine into the whole batch's mean loss and gradient:
    /// the weighting by digits is what makes the split invisible.
    #[test]
    fn parts_combine_into_the_whole_batch() {
        let digits = test_digits();
        let net = MnistNet::init(7);
        let all: Vec<u32> = (0..64).collect();
        let whole = part_gradient(&net, &digits, &all).unwrap();
        let parts = [
            part_gradient(&net, &digits, &all[..40]).unwrap(),
            part_gradient(&net, &digits, &all[40..]).unwrap(),
        ];
        let (loss, grads) = combine(&parts);
        assert!(
            (loss - whole.loss).abs() <= 1e-5 * whole.loss.abs(),
            "{loss} vs {}",
            whole.loss
        );
        for (a, b) in grads.tensors().into_iter().zip(whole.grads.tensors()) {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= 1e-4 * scale,
                "{worst} against a largest gradient of {scale}"
            );
        }
        // A digit outside the split is refused, not indexed.
        assert!(part_gradient(&net, &digits, &[2000]).is_err());
    }

    #[test]
    fn lsq_refuses_what_it_cannot_learn() {
        let digits = test_digits();
        let recipe: Recipe = "bits=2&scheme=sym&granularity=channel".parse().unwrap();
        let config = QatConfig {
            lsq: true,
            ..QatConfig::new(recipe, 1)
        };
        let err = Qat::new(&MnistNet::init(1), &digits, config).err().unwrap();
        assert!(err.to_string().contains("one scale per tensor"), "{err}");
        // A format with its own scales has nothing for LSQ to learn.
        let recipe: Recipe = "bits=2&scheme=sym&fc1.dtype=nf4".parse().unwrap();
        let config = QatConfig {
            lsq: true,
            ..QatConfig::new(recipe, 1)
        };
        let err = Qat::new(&MnistNet::init(1), &digits, config).err().unwrap();
        assert!(err.to_string().contains("fc1 is NF4"), "{err}");
        // Per tensor it learns: the scales move from the calibrated ones in one step.
        let recipe: Recipe = "bits=2&scheme=sym".parse().unwrap();
        let config = QatConfig {
            lsq: true,
            ..QatConfig::new(recipe, 1)
        };
        let mut qat = Qat::new(&MnistNet::init(1), &digits, config).unwrap();
        let before = qat.scales().unwrap();
        qat.step().unwrap();
        let after = qat.scales().unwrap();
        assert!(
            before.iter().zip(after).all(|(a, b)| a != &b),
            "{before:?} {after:?}"
        );
    }

    /// Gradients that do not match the plan (a part missing, or of other digits) are refused
    /// before they reach Adam: the weights stay as they were.
    #[test]
    fn gradients_that_do_not_match_the_plan_are_refused() {
        let digits = test_digits();
        let net = MnistNet::init(3);
        let recipe: Recipe = "bits=2&scheme=sym".parse().unwrap();
        let mut qat = Qat::new(&net, &digits, QatConfig::new(recipe, 2)).unwrap();
        let plan = qat.plan().unwrap();
        let one = part_gradient(&plan.fake, &digits, &plan.parts[0]).unwrap();
        let short = part_gradient(&plan.fake, &digits, &plan.parts[1][..3]).unwrap();
        assert!(qat.apply(plan, &[one, short]).is_err());
        assert_eq!(qat.weights(), &net);
        assert_eq!(qat.steps_done(), 0);
    }

    /// The STE by hand: scale 0.5, zero point 0, codes −2..1 (2 bits, symmetric).
    #[test]
    fn the_ste_passes_gradients_inside_the_grid_and_stops_them_outside() {
        let qp = QParams {
            scale: 0.5,
            zero_point: 0,
            qmin: -2,
            qmax: 1,
        };
        // Inside; on the boundary (w/s rounds to qmax = 1 exactly, and to qmin = −2); just past
        // the top (0.76/0.5 = 1.52 rounds to 2 > qmax); far below; and 0.74 (1.48 rounds to 1,
        // inside although above the top level 0.5 — the mask is taken on the rounded code).
        let cases = [
            (0.2, 0.0, 1.0),
            (0.5, 0.5, 1.0),
            (-1.0, -1.0, 1.0),
            (0.74, 0.5, 1.0),
            (0.76, 0.5, 0.0),
            (-3.0, -1.0, 0.0),
        ];
        for (w, fake, mask) in cases {
            let (f, clipped) = qp.fake_quant_clips(w);
            assert_eq!(
                (f, if clipped { 0.0 } else { 1.0 }),
                (fake, mask),
                "w = {w}"
            );
        }
    }
}
