//! The essay's MNISTNet, forward and backward, on ndarray:
//!
//! conv1 Conv2d(1→32, 3×3, pad 1) → ReLU → MaxPool 2 → conv2 Conv2d(32→64, 3×3, pad 1) → ReLU →
//! MaxPool 2 → flatten (64·7·7) → fc1 Linear(3136→128) → ReLU → fc2 Linear(128→10).
//!
//! Activations are kept channels-last (NHWC) so that im2col copies contiguous runs of channels;
//! each convolution is one large matrix multiply on its im2col rows through ndarray's `dot`
//! (matrixmultiply), except conv2 in the browser, which runs by Winograd's F(4×4, 3×3) forward
//! and backward, with 3× fewer multiplies ([`Conv2`], [`crate::winograd`]), and every product
//! there on [`crate::gemm`]'s kernel.
//! The weights are therefore held in a compute layout: a conv weight is `[out, ky·kx·in]` and
//! fc1's inputs are ordered (h, w, c). [`crate::weights`] converts to and from PyTorch's
//! state_dict layout. Quantization works in PyTorch's layout (see [`crate::quantizer`]).

use crate::data::{PIXELS, SIDE};
use crate::gemm::product;
use crate::lanes::{larger, F4};
use crate::rng::Rng;
use crate::winograd;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

pub const CLASSES: usize = 10;
const C1: usize = 32;
const C2: usize = 64;
const SIDE2: usize = SIDE / 2; // 14
const SIDE3: usize = SIDE / 4; // 7
const FLAT: usize = C2 * SIDE3 * SIDE3; // 3136
const HIDDEN: usize = 128;

/// A layer with weights, in the order data flows through the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Conv1,
    Conv2,
    Fc1,
    Fc2,
}

impl Layer {
    pub const ALL: [Layer; 4] = [Layer::Conv1, Layer::Conv2, Layer::Fc1, Layer::Fc2];

    /// The name in PyTorch's state_dict, without `.weight`.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Conv1 => "conv1",
            Layer::Conv2 => "conv2",
            Layer::Fc1 => "fc1",
            Layer::Fc2 => "fc2",
        }
    }

    /// The weight's shape as PyTorch stores it.
    pub fn weight_shape(self) -> &'static [usize] {
        match self {
            Layer::Conv1 => &[C1, 1, 3, 3],
            Layer::Conv2 => &[C2, C1, 3, 3],
            Layer::Fc1 => &[HIDDEN, FLAT],
            Layer::Fc2 => &[CLASSES, HIDDEN],
        }
    }

    pub fn bias_len(self) -> usize {
        self.weight_shape()[0]
    }

    /// Weights plus biases.
    pub fn param_count(self) -> usize {
        self.weight_shape().iter().product::<usize>() + self.bias_len()
    }
}

impl std::str::FromStr for Layer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Layer::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown layer {s:?}: use conv1, conv2, fc1 or fc2"))
    }
}

/// A network's identity, from a hash of its weights ([`MnistNet::id`]); shown as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelId(pub [u8; 8]);

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// MNISTNet's parameters in compute layout. The same struct holds gradients and optimizer moments.
#[derive(Clone, Debug, PartialEq)]
pub struct MnistNet {
    /// `[32, 9]`: (out channel, ky·kx)
    pub conv1_w: Array2<f32>,
    pub conv1_b: Array1<f32>,
    /// `[64, 288]`: (out channel, (ky·3 + kx)·32 + in channel)
    pub conv2_w: Array2<f32>,
    pub conv2_b: Array1<f32>,
    /// `[128, 3136]`: inputs ordered (h·7 + w)·64 + c
    pub fc1_w: Array2<f32>,
    pub fc1_b: Array1<f32>,
    /// `[10, 128]`
    pub fc2_w: Array2<f32>,
    pub fc2_b: Array1<f32>,
}

/// What the forward pass keeps for the backward pass.
struct Cache {
    cols1: Array2<f32>,
    /// The ReLUs' outputs as the next layer reads them (after activation fake quant, if any).
    a1: Array2<f32>,
    pool1_idx: Vec<u32>,
    conv2: Conv2Cache,
    a2: Array2<f32>,
    pool2_idx: Vec<u32>,
    p2: Array2<f32>,
    h1: Array2<f32>,
    logits: Array2<f32>,
    /// With activation fake quant: the ReLUs' own outputs (conv1, conv2, fc1), which their
    /// backward needs, and each quantized site's STE mask (conv1, conv2, fc1, fc2).
    quantized: Option<QuantizedSites>,
}

/// How training computes conv2, forward and backward (evaluation has its own, [`crate::infer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conv2 {
    /// im2col rows times the weight: three products of 6,272 × 288 × 64 for 32 digits.
    Im2col,
    /// Winograd's F(4×4, 3×3): 36 products of 512 × 32 × 64 each, and the transforms.
    Winograd,
}

impl Conv2 {
    /// Winograd in the browser, where its fewer multiplies pay: by F(2×2, 3×3) QAT in two
    /// workers went from 1,430–1,550 to 2,040 img/s. im2col natively, where matrixmultiply's
    /// AVX-512 kernels make the large products cheap and Winograd's many small ones use its
    /// threads less well: `qp bench`'s training (2 GEMM threads) ran at 4,050 img/s by im2col
    /// and 3,350 by F(2×2), and `qp qat` the same within noise (5,700–6,200 img/s).
    pub(crate) const HERE: Conv2 = if cfg!(target_arch = "wasm32") {
        Conv2::Winograd
    } else {
        Conv2::Im2col
    };
}

/// What conv2's backward needs of its forward.
enum Conv2Cache {
    /// The im2col rows of its input.
    Cols(Array2<f32>),
    /// Its input patches and kernels in the Winograd domain.
    Winograd {
        patches: Vec<f32>,
        kernels: Vec<f32>,
    },
}

/// The ReLUs' own outputs (conv1, conv2, fc1) and the sites' STE masks (conv1, conv2, fc1, fc2).
type QuantizedSites = ([Array2<f32>; 3], [Vec<f32>; 4]);

/// Activation fake quantization, applied by [`MnistNet::loss_and_grad_quantized`] and
/// [`MnistNet::logits_quantized`] at the sites PyTorch's eager QAT quantizes: the input (site 0),
/// the fused conv1+ReLU, conv2+ReLU and fc1+ReLU outputs (1–3), and fc2's scores (4). It fake
/// quantizes `values` in place and returns the STE's mask (1 where the value was inside the grid,
/// 0 where the clamp cut it).
pub type ActivationQuant<'a> = dyn FnMut(usize, &mut [f32]) -> Vec<f32> + 'a;

impl MnistNet {
    pub fn zeros() -> Self {
        MnistNet {
            conv1_w: Array2::zeros((C1, 9)),
            conv1_b: Array1::zeros(C1),
            conv2_w: Array2::zeros((C2, 9 * C1)),
            conv2_b: Array1::zeros(C2),
            fc1_w: Array2::zeros((HIDDEN, FLAT)),
            fc1_b: Array1::zeros(HIDDEN),
            fc2_w: Array2::zeros((CLASSES, HIDDEN)),
            fc2_b: Array1::zeros(CLASSES),
        }
    }

    /// PyTorch's default initialisation for Conv2d and Linear: weights and biases uniform in
    /// `±1/√fan_in` (kaiming_uniform with a = √5 reduces to this bound).
    pub fn init(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut net = MnistNet::zeros();
        let fan_ins = [9, 9, 9 * C1, 9 * C1, FLAT, FLAT, HIDDEN, HIDDEN];
        for (t, fan_in) in net.tensors_mut().into_iter().zip(fan_ins) {
            let bound = 1.0 / (fan_in as f32).sqrt();
            t.iter_mut().for_each(|v| *v = rng.uniform(-bound, bound));
        }
        net
    }

    /// Every tensor as a flat slice: conv1 w, b, conv2 w, b, fc1 w, b, fc2 w, b.
    pub fn tensors(&self) -> [&[f32]; 8] {
        [
            slice(&self.conv1_w),
            self.conv1_b.as_slice().expect("contiguous"),
            slice(&self.conv2_w),
            self.conv2_b.as_slice().expect("contiguous"),
            slice(&self.fc1_w),
            self.fc1_b.as_slice().expect("contiguous"),
            slice(&self.fc2_w),
            self.fc2_b.as_slice().expect("contiguous"),
        ]
    }

    pub fn tensors_mut(&mut self) -> [&mut [f32]; 8] {
        [
            self.conv1_w.as_slice_mut().expect("contiguous"),
            self.conv1_b.as_slice_mut().expect("contiguous"),
            self.conv2_w.as_slice_mut().expect("contiguous"),
            self.conv2_b.as_slice_mut().expect("contiguous"),
            self.fc1_w.as_slice_mut().expect("contiguous"),
            self.fc1_b.as_slice_mut().expect("contiguous"),
            self.fc2_w.as_slice_mut().expect("contiguous"),
            self.fc2_b.as_slice_mut().expect("contiguous"),
        ]
    }

    /// A layer's weights (compute layout; per-tensor statistics do not depend on the order).
    pub fn weight(&self, layer: Layer) -> &[f32] {
        self.tensors()[2 * layer as usize]
    }

    pub fn weight_mut(&mut self, layer: Layer) -> &mut [f32] {
        self.tensors_mut()
            .into_iter()
            .nth(2 * layer as usize)
            .expect("4 layers")
    }

    /// The network's identity: a 64-bit FNV-1a hash of every weight's and bias's f32 bits, in
    /// PyTorch's layout and state_dict order. Results are keyed by it, so a fine-tuned or opened
    /// network never mixes with the bundled one. (Not a cryptographic hash: it names a network,
    /// it does not authenticate one; SHA-256 cost ~17 ms of each worker's start in wasm.)
    pub fn id(&self) -> ModelId {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut add = |v: f32| {
            h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
        };
        for layer in Layer::ALL {
            crate::weights::torch_weight(self, layer)
                .into_iter()
                .for_each(&mut add);
            self.tensors()[2 * layer as usize + 1]
                .iter()
                .copied()
                .for_each(&mut add);
        }
        ModelId(h.to_be_bytes())
    }

    pub fn param_count(&self) -> usize {
        self.tensors().iter().map(|t| t.len()).sum()
    }

    /// Class scores for a batch of digits, `images` `[n, 784]` with pixels in `[0, 1]`.
    pub fn logits(&self, images: ArrayView2<f32>) -> Array2<f32> {
        self.forward(images).logits
    }

    fn forward(&self, images: ArrayView2<f32>) -> Cache {
        self.forward_with(images, None, Conv2::HERE)
    }

    /// The forward pass, with activation fake quantization at each site when `act` is given.
    fn forward_with(
        &self,
        images: ArrayView2<f32>,
        mut act: Option<&mut ActivationQuant>,
        conv2: Conv2,
    ) -> Cache {
        assert_eq!(images.ncols(), PIXELS, "digits are 28×28");
        let n = images.nrows();
        let images = images.as_standard_layout();
        let mut input = images.as_slice().expect("standard layout").to_vec();
        if let Some(q) = act.as_mut() {
            q(0, &mut input);
        }
        // Fake-quantizes a ReLU's output in place, keeping the ReLU's own output and the mask.
        let mut site = |i: usize, a: &mut Array2<f32>, kept: &mut Vec<(Array2<f32>, Vec<f32>)>| {
            if let Some(q) = act.as_mut() {
                let relu = a.clone();
                let mask = q(i, a.as_slice_mut().expect("contiguous"));
                kept.push((relu, mask));
            }
        };
        let mut kept = Vec::new();

        let cols1 = im2col3x3(&input, n, SIDE, 1);
        let mut a1 = dense_relu(&cols1, &self.conv1_w, &self.conv1_b);
        site(1, &mut a1, &mut kept);
        let (p1, pool1_idx) = maxpool2(slice(&a1), n, SIDE, C1);

        let (mut a2, conv2) = match conv2 {
            Conv2::Im2col => {
                let cols2 = im2col3x3(&p1, n, SIDE2, C1);
                let a2 = dense_relu(&cols2, &self.conv2_w, &self.conv2_b);
                (a2, Conv2Cache::Cols(cols2))
            }
            Conv2::Winograd => {
                let patches = winograd::patches(&p1, n, C1);
                let kernels = winograd::kernels(self.conv2_w.view(), C1);
                let tiles = winograd::tiles(n);
                let m2 = winograd::products(&patches, (tiles, C1, false), &kernels, (C2, false));
                let conv2_b = self.conv2_b.as_slice().expect("contiguous");
                let a2 = winograd::outputs_relu(&m2, n, conv2_b);
                (a2, Conv2Cache::Winograd { patches, kernels })
            }
        };
        site(2, &mut a2, &mut kept);
        let (p2, pool2_idx) = maxpool2(slice(&a2), n, SIDE2, C2);
        let p2 = Array2::from_shape_vec((n, FLAT), p2).expect("n·3136 values");

        let mut h1 = dense_relu(&p2, &self.fc1_w, &self.fc1_b);
        site(3, &mut h1, &mut kept);
        let mut logits = product(h1.view(), self.fc2_w.t()) + &self.fc2_b;
        let quantized = act.map(|q| {
            let m4 = q(4, logits.as_slice_mut().expect("contiguous"));
            let mut k = kept.into_iter();
            let mut next = || k.next().expect("three ReLU sites");
            let ((r1, m1), (r2, m2), (r3, m3)) = (next(), next(), next());
            ([r1, r2, r3], [m1, m2, m3, m4])
        });
        Cache {
            cols1,
            a1,
            pool1_idx,
            conv2,
            a2,
            pool2_idx,
            p2,
            h1,
            logits,
            quantized,
        }
    }

    /// Class scores with activation fake quantization (`act` should not observe: an evaluation).
    pub fn logits_quantized(
        &self,
        images: ArrayView2<f32>,
        act: &mut ActivationQuant,
    ) -> Array2<f32> {
        self.forward_with(images, Some(act), Conv2::HERE).logits
    }

    /// Mean cross-entropy loss over the batch and its gradient with respect to every parameter.
    pub fn loss_and_grad(&self, images: ArrayView2<f32>, labels: &[u8]) -> (f32, MnistNet) {
        self.backward(images, labels, None, Conv2::HERE)
    }

    /// [`Self::loss_and_grad`] with the activations fake-quantized by `act`: each site's
    /// gradient passes its STE mask, then the ReLU's own backward (on the ReLU's output before
    /// the fake quant, as PyTorch's fused ConvReLU then FakeQuantize differentiate).
    pub fn loss_and_grad_quantized(
        &self,
        images: ArrayView2<f32>,
        labels: &[u8],
        act: &mut ActivationQuant,
    ) -> (f32, MnistNet) {
        self.backward(images, labels, Some(act), Conv2::HERE)
    }

    fn backward(
        &self,
        images: ArrayView2<f32>,
        labels: &[u8],
        act: Option<&mut ActivationQuant>,
        conv2: Conv2,
    ) -> (f32, MnistNet) {
        let n = images.nrows();
        let c = self.forward_with(images, act, conv2);
        let (loss, mut dlogits) = softmax_cross_entropy(&c.logits, labels);
        let (relu1, relu2, relu3) = match &c.quantized {
            Some((r, _)) => (&r[0], &r[1], &r[2]),
            None => (&c.a1, &c.a2, &c.h1),
        };
        let mask = |g: &mut Array2<f32>, site: usize| {
            if let Some((_, masks)) = &c.quantized {
                g.iter_mut().zip(&masks[site]).for_each(|(g, m)| *g *= m);
            }
        };
        mask(&mut dlogits, 3);

        let fc2_w = product(dlogits.t(), c.h1.view());
        let fc2_b = dlogits.sum_axis(Axis(0));
        let mut dh1 = product(dlogits.view(), self.fc2_w.view());
        mask(&mut dh1, 2);
        relu_backward(&mut dh1, relu3);

        let fc1_w = product(dh1.t(), c.p2.view());
        let fc1_b = dh1.sum_axis(Axis(0));
        let dp2 = product(dh1.view(), self.fc1_w.view());

        let mut da2 = Array2::zeros((n * SIDE2 * SIDE2, C2));
        unpool(
            slice(&dp2),
            &c.pool2_idx,
            da2.as_slice_mut().expect("contiguous"),
        );
        mask(&mut da2, 1);
        relu_backward(&mut da2, relu2);
        let conv2_b = da2.sum_axis(Axis(0));
        let (conv2_w, dp1) = match &c.conv2 {
            Conv2Cache::Cols(cols2) => {
                let dcols2 = da2.dot(&self.conv2_w);
                (da2.t().dot(cols2), col2im3x3(&dcols2, n, SIDE2, C1))
            }
            Conv2Cache::Winograd { patches, kernels } => {
                let tiles = winograd::tiles(n);
                let dm2 = winograd::outputs_adjoint(slice(&da2), n, C2);
                let du2 = winograd::products(patches, (C1, tiles, true), &dm2, (C2, false));
                let dpatches2 = winograd::products(&dm2, (tiles, C2, false), kernels, (C1, true));
                (
                    winograd::kernels_adjoint(&du2, C1, C2),
                    winograd::patches_adjoint(&dpatches2, n, C1),
                )
            }
        };

        let mut da1 = Array2::zeros((n * SIDE * SIDE, C1));
        unpool(&dp1, &c.pool1_idx, da1.as_slice_mut().expect("contiguous"));
        mask(&mut da1, 0);
        relu_backward(&mut da1, relu1);
        let conv1_w = product(da1.t(), c.cols1.view());
        let conv1_b = da1.sum_axis(Axis(0));

        let grads = MnistNet {
            conv1_w,
            conv1_b,
            conv2_w,
            conv2_b,
            fc1_w,
            fc1_b,
            fc2_w,
            fc2_b,
        };
        (loss, grads)
    }
}

fn slice(a: &Array2<f32>) -> &[f32] {
    a.as_slice().expect("standard layout")
}

/// `relu(x · wᵀ + b)`: a convolution (on im2col rows) or a fully connected layer.
fn dense_relu(x: &Array2<f32>, w: &Array2<f32>, b: &Array1<f32>) -> Array2<f32> {
    let mut y = product(x.view(), w.t());
    // In lanes of four: ndarray's broadcast `+=` and `mapv_inplace(max)` took 1.5 ms of conv1's
    // 2.2 in wasm (32 digits), twice its matrix product; `f32::max`'s NaN rule has no wasm
    // instruction, so LLVM leaves it scalar. ReLU as `pmax` lets a NaN through, as PyTorch's does.
    let b = b.as_slice().expect("contiguous");
    let zero = F4::splat(0.0);
    for row in y
        .as_slice_mut()
        .expect("standard layout")
        .chunks_exact_mut(b.len())
    {
        let (lanes, tail) = row.split_at_mut(row.len() / 4 * 4);
        for (v, b) in lanes.chunks_exact_mut(4).zip(b.chunks_exact(4)) {
            (F4::load(v) + F4::load(b)).larger(zero).store(v);
        }
        let b = &b[lanes.len()..];
        for (v, b) in tail.iter_mut().zip(b) {
            *v = larger(*v + b, 0.0);
        }
    }
    y
}

/// The gradient passes through a ReLU only where its output was positive.
fn relu_backward(grad: &mut Array2<f32>, output: &Array2<f32>) {
    assert_eq!(grad.dim(), output.dim());
    // On slices, as a select: ndarray's zip_mut_with took 5 % of a QAT step, unvectorized.
    let grad = grad.as_slice_mut().expect("standard layout");
    for (g, &o) in grad.iter_mut().zip(slice(output)) {
        *g = if o <= 0.0 { 0.0 } else { *g };
    }
}

/// Rows of 3×3 patches (zero padding 1) of an NHWC tensor `[n, side, side, c]`:
/// `[n·side·side, 9·c]`, columns ordered (ky, kx, c) so each patch row copies runs of c channels.
fn im2col3x3(input: &[f32], n: usize, side: usize, c: usize) -> Array2<f32> {
    let k = 9 * c;
    let mut cols = vec![0.0f32; n * side * side * k];
    for (r, row) in cols.chunks_exact_mut(k).enumerate() {
        let (b, y, x) = (r / (side * side), (r / side) % side, r % side);
        for ky in 0..3 {
            let iy = (y + ky).wrapping_sub(1);
            if iy >= side {
                continue;
            }
            for kx in 0..3 {
                let ix = (x + kx).wrapping_sub(1);
                if ix >= side {
                    continue;
                }
                let src = ((b * side + iy) * side + ix) * c;
                row[(ky * 3 + kx) * c..][..c].copy_from_slice(&input[src..src + c]);
            }
        }
    }
    Array2::from_shape_vec((n * side * side, k), cols).expect("sized above")
}

/// The adjoint of [`im2col3x3`]: sums each patch row's gradient back onto the NHWC input.
fn col2im3x3(cols: &Array2<f32>, n: usize, side: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n * side * side * c];
    for (r, row) in cols.outer_iter().enumerate() {
        let row = row.to_slice().expect("standard layout");
        let (b, y, x) = (r / (side * side), (r / side) % side, r % side);
        for ky in 0..3 {
            let iy = (y + ky).wrapping_sub(1);
            if iy >= side {
                continue;
            }
            for kx in 0..3 {
                let ix = (x + kx).wrapping_sub(1);
                if ix >= side {
                    continue;
                }
                let dst = ((b * side + iy) * side + ix) * c;
                for (o, g) in out[dst..dst + c].iter_mut().zip(&row[(ky * 3 + kx) * c..]) {
                    *o += g;
                }
            }
        }
    }
    out
}

/// 2×2 max pooling, stride 2, of NHWC `[n, side, side, c]`; also returns, for each output, the
/// flat index of the input that won (the first one on ties, as PyTorch).
pub(crate) fn maxpool2(input: &[f32], n: usize, side: usize, c: usize) -> (Vec<f32>, Vec<u32>) {
    let half = side / 2;
    let mut out = vec![0.0f32; n * half * half * c];
    let mut idx = vec![0u32; out.len()];
    // Each output pixel's c channels at once, from its four corners' runs of c channels: the
    // comparisons are selects, which the compiler turns into vector code.
    let pixels = out.chunks_exact_mut(c).zip(idx.chunks_exact_mut(c));
    for (p, (out, idx)) in pixels.enumerate() {
        let (b, y, x) = (p / (half * half), (p / half) % half, p % half);
        let top = ((b * side + 2 * y) * side + 2 * x) * c;
        let corners = [top, top + c, top + side * c, top + side * c + c];
        let run = |k: usize| &input[corners[k]..corners[k] + c];
        let (c0, c1, c2, c3) = (run(0), run(1), run(2), run(3));
        for ch in 0..c {
            let (mut best, mut at) = (c0[ch], corners[0]);
            for (v, corner) in [
                (c1[ch], corners[1]),
                (c2[ch], corners[2]),
                (c3[ch], corners[3]),
            ] {
                if v > best {
                    (best, at) = (v, corner);
                }
            }
            out[ch] = best;
            idx[ch] = (at + ch) as u32;
        }
    }
    (out, idx)
}

/// The adjoint of [`maxpool2`]: each output's gradient goes to the input that won.
fn unpool(grad: &[f32], idx: &[u32], input_grad: &mut [f32]) {
    for (&g, &i) in grad.iter().zip(idx) {
        input_grad[i as usize] += g;
    }
}

/// `Σᵢ −log softmax(logitsᵢ)[labelᵢ]`, by log-sum-exp in f64:
/// `−log pᵢ = log Σⱼ exp(zⱼ − m) − (z_label − m)` with `m = maxⱼ zⱼ`, so a large gap between
/// logits gives a large finite loss, never `+∞` (in f32, `p` underflows to 0 and `log 0 = −∞`).
pub fn cross_entropy_sum(logits: ArrayView2<f32>, labels: &[u8]) -> f64 {
    logits
        .outer_iter()
        .zip(labels)
        .map(|(row, &label)| {
            let m = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let sum: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
            sum.ln() - (f64::from(row[label as usize]) - m)
        })
        .sum()
}

/// Mean cross-entropy of softmax(logits) against `labels`, and its gradient `(p − onehot) / n`.
/// An empty batch has no mean: it gives loss 0 and an empty gradient (evaluation refuses it
/// earlier, see [`crate::eval::evaluate`]).
pub fn softmax_cross_entropy(logits: &Array2<f32>, labels: &[u8]) -> (f32, Array2<f32>) {
    let n = logits.nrows();
    if n == 0 {
        return (0.0, logits.clone());
    }
    let loss = cross_entropy_sum(logits.view(), labels) / n as f64;
    let mut grad = logits.clone();
    for (mut row, &label) in grad.outer_iter_mut().zip(labels) {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = row.sum();
        row.mapv_inplace(|v| v / sum);
        row[label as usize] -= 1.0;
    }
    grad /= n as f32;
    (loss as f32, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(n: usize, seed: u64) -> Array2<f32> {
        let mut rng = Rng::new(seed);
        Array2::from_shape_fn((n, PIXELS), |_| rng.next_f32())
    }

    /// The activation sites' plumbing: a fake quant that changes nothing and clips nothing gives
    /// exactly the plain gradients; one that clips fc2's every score stops every gradient (the
    /// STE's mask is applied before anything flows back); one that clips conv1's outputs stops
    /// conv1's gradient only.
    #[test]
    fn activation_masks_gate_the_gradient_where_they_clip() {
        let net = MnistNet::init(5);
        let x = digits(6, 1);
        let labels = [0, 1, 2, 3, 4, 5];
        let plain = net.loss_and_grad(x.view(), &labels);
        let mut sites = Vec::new();
        let same = net.loss_and_grad_quantized(x.view(), &labels, &mut |site, v| {
            sites.push(site);
            vec![1.0; v.len()]
        });
        assert_eq!(sites, [0, 1, 2, 3, 4]);
        assert_eq!(same, plain);
        let (_, stopped) = net.loss_and_grad_quantized(x.view(), &labels, &mut |site, v| {
            vec![if site == 4 { 0.0 } else { 1.0 }; v.len()]
        });
        assert!(stopped
            .tensors()
            .iter()
            .all(|t| t.iter().all(|&g| g == 0.0)));
        let (_, conv1_cut) = net.loss_and_grad_quantized(x.view(), &labels, &mut |site, v| {
            vec![if site == 1 { 0.0 } else { 1.0 }; v.len()]
        });
        assert!(conv1_cut.conv1_w.iter().all(|&g| g == 0.0));
        assert_eq!(conv1_cut.fc2_w, plain.1.fc2_w);
    }

    #[test]
    fn shapes_and_parameter_count_match_the_essay() {
        let net = MnistNet::init(0);
        assert_eq!(net.param_count(), 421_642);
        let total: usize = Layer::ALL.iter().map(|l| l.param_count()).sum();
        assert_eq!(total, 421_642);
        assert_eq!(Layer::Fc1.param_count(), 401_536);
        assert_eq!(net.logits(digits(3, 1).view()).dim(), (3, 10));
    }

    #[test]
    fn im2col_patch_matches_direct_indexing() {
        // [1, 4, 4, 2] input with distinct values; check the patch at (y=0, x=1) by hand.
        let input: Vec<f32> = (0..32).map(|v| v as f32).collect();
        let cols = im2col3x3(&input, 1, 4, 2);
        let row = cols.row(1);
        // ky = 0 is padding; (ky=1, kx=0) is pixel (0, 0): channels 0, 1.
        assert_eq!(&row.to_vec()[..6], &[0.0; 6]);
        assert_eq!((row[6], row[7]), (0.0, 1.0));
        // (ky=2, kx=2) is pixel (1, 2): index (1·4 + 2)·2 = 12.
        assert_eq!((row[16], row[17]), (12.0, 13.0));
    }

    #[test]
    fn maxpool_picks_the_largest_of_each_window() {
        let input = [
            1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 9.0, 8.0, 7.0, 6.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0,
        ];
        let (out, idx) = maxpool2(&input, 1, 4, 1);
        assert_eq!(out, vec![5.0, 9.0, 7.0, 3.0]);
        assert_eq!(idx, vec![1, 6, 8, 14]);
    }

    /// Central finite differences of the loss against the analytic gradient, for a sample of
    /// parameters in every tensor. Perturbations are small enough that ReLU and max-pool
    /// switching is rare; a tolerance covers f32 rounding in the loss.
    #[test]
    fn gradient_check() {
        // Both ways of computing conv2 (the browser's Winograd, im2col natively).
        for conv2 in [Conv2::Im2col, Conv2::Winograd] {
            gradient_check_by(conv2);
        }
    }

    fn gradient_check_by(conv2: Conv2) {
        let net = MnistNet::init(42);
        let x = digits(2, 9);
        let labels = [3u8, 7];
        let (_, grads) = net.backward(x.view(), &labels, None, conv2);
        let eps = 1e-3f32;
        let mut rng = Rng::new(5);
        let mut checked = 0;
        for t in 0..8 {
            let len = net.tensors()[t].len();
            // The largest gradient entries carry the signal; add some random ones too.
            let g = grads.tensors()[t];
            let mut picks: Vec<usize> = (0..len).collect();
            picks.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
            picks.truncate(4);
            picks.extend((0..3).map(|_| rng.below(len)));
            for i in picks {
                let loss_at = |delta: f32| {
                    let mut p = net.clone();
                    p.tensors_mut()[t][i] += delta;
                    let logits = p.forward_with(x.view(), None, conv2).logits;
                    softmax_cross_entropy(&logits, &labels).0
                };
                let numeric = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
                let analytic = g[i];
                let tol = 2e-3 + 2e-2 * analytic.abs().max(numeric.abs());
                assert!(
                    (numeric - analytic).abs() <= tol,
                    "{conv2:?}: tensor {t} index {i}: numeric {numeric} vs analytic {analytic}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 56);
    }

    #[test]
    fn winograd_and_im2col_train_alike() {
        // The same loss and gradients to rounding: the two differ only in the order of sums.
        let net = MnistNet::init(3);
        let x = digits(8, 4);
        let labels = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let (l1, g1) = net.backward(x.view(), &labels, None, Conv2::Im2col);
        let (l2, g2) = net.backward(x.view(), &labels, None, Conv2::Winograd);
        assert!((l1 - l2).abs() <= 1e-5 * l1.abs(), "loss {l1} vs {l2}");
        for (t, (a, b)) in g1.tensors().iter().zip(g2.tensors()).enumerate() {
            let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(b.iter())
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-4 * scale,
                "tensor {t}: {worst} apart, largest {scale}"
            );
        }
    }

    #[test]
    fn fake_quantized_weights_sit_on_the_grid() {
        use crate::quant::{Bits, QParams, Scheme};
        let net = MnistNet::init(1);
        let bits = Bits::new(3).unwrap();
        let q = net
            .fake_quantized(&crate::recipe::Recipe::per_tensor(bits, Scheme::Asymmetric))
            .unwrap();
        for layer in Layer::ALL {
            let qp = QParams::calibrate(net.weight(layer), bits, Scheme::Asymmetric).unwrap();
            let levels: Vec<f32> = qp.levels().collect();
            assert!(q.weight(layer).iter().all(|w| levels.contains(w)));
        }
        assert_eq!(q.conv1_b, net.conv1_b, "biases stay f32");
    }

    #[test]
    fn a_network_is_named_by_its_weights() {
        let net = MnistNet::init(1);
        assert_eq!(net.id(), net.clone().id());
        assert_ne!(net.id(), MnistNet::init(2).id());
        let mut tuned = net.clone();
        tuned.fc2_b[3] += 1e-7;
        assert_ne!(
            net.id(),
            tuned.id(),
            "one bias moved by an ulp or so is another network"
        );
        assert_eq!(net.id().to_string().len(), 16);
    }

    #[test]
    fn cross_entropy_of_a_large_logit_gap_is_large_and_finite() {
        // In f32, softmax gives p = exp(−200) = 0 for the label and log 0 = −∞.
        let logits =
            Array2::from_shape_vec((2, 3), vec![200.0f32, 0.0, 0.0, 1.0, 2.0, 3.0]).unwrap();
        let sum = cross_entropy_sum(logits.view(), &[1, 2]);
        let second = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln() - 3.0;
        assert!((sum - (200.0 + second)).abs() < 1e-9, "{sum}");
        let (loss, grad) = softmax_cross_entropy(&logits, &[1, 2]);
        assert!(loss.is_finite() && grad.iter().all(|g| g.is_finite()));
        let (empty, _) = softmax_cross_entropy(&Array2::zeros((0, 3)), &[]);
        assert_eq!(empty, 0.0, "no NaN for an empty batch");
    }
}
