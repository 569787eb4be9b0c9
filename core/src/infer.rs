//! The forward pass for evaluation, fused and register-blocked: the same MNISTNet as
//! [`crate::model`], computed without the training path's caches and intermediate matrices.
//!
//! Training needs every activation for the backward pass, so [`MnistNet::logits`] builds im2col
//! matrices and multiplies them with ndarray. Evaluation needs only the class scores, and the
//! browser evaluates 2,000 digits for every setting the reader picks, so here:
//! - each convolution applies bias, ReLU and max-pool to its outputs one 2×2 pooling window at a
//!   time, as they are computed: the full-resolution activations never exist;
//! - conv2 (85 % of the multiplies) uses Winograd's F(4×4, 3×3): a 4×4 output tile (four pooling
//!   windows) from a 6×6 input patch in 36 multiplies per input and output channel instead of
//!   144. The 14×14 output takes 4×4 tiles, the last row and column half used, which still does
//!   69 % of the products of F(2×2, 3×3) over 7×7 tiles (padded to 52): the forward pass in wasm
//!   went from 5,514 to 6,435 images/s (best of 20; medians 4,407 → 6,232). The test digits'
//!   accuracy and loss at every setting (`qp sweep`) are the same to the last printed digit;
//! - every matrix product runs on one micro-kernel, [`tile`] (training's too, in wasm): 4 rows ×
//!   8 output channels of `Σ x·w`, whose 32 sums stay in eight f32x4 registers (wasm SIMD128,
//!   or SSE natively);
//! - the weights are repacked (and conv2's transformed) once per network so the kernel reads them
//!   sequentially, and every buffer is allocated once and reused.
//!
//! The additions happen in a different order from [`MnistNet::logits`], and Winograd's
//! transforms round differently; the test below holds the two to 1e-5 of the largest score.

use crate::data::{PIXELS, SIDE};
use crate::gemm::{self, tile, MR, NR};
use crate::lanes::{larger, F4};
use crate::model::{MnistNet, CLASSES};
use crate::winograd;
use ndarray::ArrayView2;

const C1: usize = 32;
const C2: usize = 64;
const HIDDEN: usize = 128;
/// conv1's zero-padded input: 28×28 digit with a 1-pixel border.
const PAD1: usize = SIDE + 2; // 30
/// conv2's zero-padded input: the 14×14 pooled conv1 output with a 1-pixel border above and to
/// the left, and 3 below and to the right, so the last 4×4 tiles (which reach output 15) read
/// zeros.
const SIDE2: usize = SIDE / 2; // 14
const PAD2: usize = 4 * TILE_ROW + 2; // 18
const SIDE3: usize = SIDE / 4; // 7
const FLAT: usize = C2 * SIDE3 * SIDE3; // 3136
/// conv2's Winograd tiles per row and column: 4×4 outputs each, covering 16 ≥ 14.
const TILE_ROW: usize = SIDE2.div_ceil(4); // 4
/// conv2's 16 Winograd tiles, a multiple of [`MR`].
const TILES: usize = TILE_ROW * TILE_ROW;
/// Positions ξ of a tile in the Winograd domain: 6 × 6.
const XI: usize = 36;
/// Floats from one ξ to the next in `wino_v` and `wino_m`: the 16 tiles' channels and 16 more.
/// Without the 16, the transforms' 36 loads or stores of one tile are 2 KB or 4 KB apart, all
/// in the same few sets of the L1 cache, which evict each other: the transforms took 3× longer.
const V_STRIDE: usize = TILES * C1 + 16;
const M_STRIDE: usize = TILES * C2 + 16;
/// Images per fc1 pass: enough to reuse each fc1 weight many times while it is in cache.
const BATCH: usize = 64;

/// Weights `[out, k]` (row-major) repacked as `[out / 8][k][8]`: the kernel's `b` is their
/// transpose.
fn pack(w: &[f32], out: usize, k: usize) -> Vec<[f32; NR]> {
    let w = ArrayView2::from_shape((out, k), w).expect("out × k weights");
    gemm::pack(w.t())
}

/// conv2's weights `[64][(ky·3 + kx)·32 + ci]` transformed for Winograd F(4×4, 3×3):
/// `U = G·g·Gᵀ` with the 6 × 3 matrix
/// `G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]]`
/// (Lavin and Gray's, interpolating at 0, ±1, ±2 and ∞), packed by 8 outputs:
/// `[36 ξ][64 / 8][32 in][8 out]`.
fn winograd_weights(w: &[f32]) -> Vec<[f32; NR]> {
    // In f64, so the transformed weights are the exact ones rounded once.
    let g_rows = |a: f64, b: f64, c: f64| {
        [
            a / 4.0,
            -(a + b + c) / 6.0,
            -(a - b + c) / 6.0,
            a / 24.0 + b / 12.0 + c / 6.0,
            a / 24.0 - b / 12.0 + c / 6.0,
            c,
        ]
    };
    let mut u = vec![[0.0; NR]; (C2 / NR) * XI * C1];
    for co in 0..C2 {
        for ci in 0..C1 {
            let g = |ky: usize, kx: usize| f64::from(w[co * 9 * C1 + (ky * 3 + kx) * C1 + ci]);
            // G·g: 6 rows × 3 columns; then (G·g)·Gᵀ: 6 × 6.
            let cols: [[f64; 6]; 3] =
                std::array::from_fn(|kx| g_rows(g(0, kx), g(1, kx), g(2, kx)));
            for i in 0..6 {
                let row = g_rows(cols[0][i], cols[1][i], cols[2][i]);
                for (j, &value) in row.iter().enumerate() {
                    u[((i * 6 + j) * (C2 / NR) + co / NR) * C1 + ci][co % NR] = value as f32;
                }
            }
        }
    }
    u
}

/// `relu(max of the four window sums + bias)`: ReLU and the bias commute with the max (both are
/// monotone and the bias is shared), so this equals pool(relu(conv + bias)) exactly.
#[inline(always)]
fn pool_relu(acc: &[[f32; NR]; MR], bias: &[f32], out: &mut [f32]) {
    for h in [0, 4] {
        let sum = |r: usize| F4::load(&acc[r][h..]);
        let top = sum(0).larger(sum(1)).larger(sum(2).larger(sum(3)));
        (top + F4::load(&bias[h..]))
            .larger(F4::splat(0.0))
            .store(&mut out[h..]);
    }
}

/// A network ready for fast evaluation, with its scratch buffers.
#[derive(Clone, Debug)]
pub struct Inference {
    conv1_w: Vec<[f32; NR]>,
    conv1_b: Vec<f32>,
    /// conv2's weights in the Winograd domain, `U = G·g·Gᵀ`: `[36 ξ][64 / 8][32 in][8 out]`.
    conv2_u: Vec<[f32; NR]>,
    conv2_b: Vec<f32>,
    fc1_w: Vec<[f32; NR]>,
    fc1_b: Vec<f32>,
    fc2_w: Vec<f32>,
    fc2_b: Vec<f32>,
    /// One digit, zero-padded: `[30][30]`.
    pad1: Vec<f32>,
    /// Its 3×3 patches, by pooling window: `[196 windows][4 pixels][9]`.
    cols1: Vec<f32>,
    /// One image's pooled conv1 output, zero-padded, NHWC: `[18][18][32]`.
    pad2: Vec<f32>,
    /// Pooled conv2 outputs of a batch, flattened as fc1 reads them: `[BATCH][3136]`.
    flat: Vec<f32>,
    /// One image's conv2 input tiles in the Winograd domain, `V = Bᵀ·d·B`: `[36 ξ][16 tiles][32]`.
    wino_v: Vec<f32>,
    /// Their products with `U`, summed over input channels: `[36 ξ][16 tiles][64]`.
    wino_m: Vec<f32>,
    /// fc1 outputs of a batch: `[BATCH][128]`.
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

impl Inference {
    pub fn new(net: &MnistNet) -> Self {
        let t = net.tensors();
        Inference {
            conv1_w: pack(t[0], C1, 9),
            conv1_b: t[1].to_vec(),
            conv2_u: winograd_weights(t[2]),
            conv2_b: t[3].to_vec(),
            fc1_w: pack(t[4], HIDDEN, FLAT),
            fc1_b: t[5].to_vec(),
            fc2_w: t[6].to_vec(),
            fc2_b: t[7].to_vec(),
            pad1: vec![0.0; PAD1 * PAD1],
            cols1: vec![0.0; SIDE * SIDE * 9],
            pad2: vec![0.0; PAD2 * PAD2 * C1],
            flat: vec![0.0; BATCH * FLAT],
            hidden: vec![0.0; BATCH * HIDDEN],
            wino_v: vec![0.0; XI * V_STRIDE],
            wino_m: vec![0.0; XI * M_STRIDE],
            logits: Vec::new(),
        }
    }

    /// Class scores `[n][10]` for `images` `[n][784]` (pixels in `[0, 1]`), row-major.
    pub fn logits(&mut self, images: &[f32]) -> &[f32] {
        assert_eq!(images.len() % PIXELS, 0, "digits are 28×28");
        let n = images.len() / PIXELS;
        self.logits.resize(n * CLASSES, 0.0);
        for (b, batch) in images.chunks(BATCH * PIXELS).enumerate() {
            let m = batch.len() / PIXELS;
            for (i, image) in batch.chunks_exact(PIXELS).enumerate() {
                self.conv1(image);
                self.conv2(i);
            }
            self.fc1(m);
            self.fc2(m, b * BATCH);
        }
        &self.logits
    }

    /// What fc1 reads, `[n][3136]`: the pooled conv2 outputs of `images` (`[n][784]`). A
    /// network that differs from this one only in fc1 and fc2 computes the same features, so
    /// an evaluation of such networks (the sensitivity table's fc1 and fc2 cells) computes them
    /// once and reads them with [`Self::logits_from_features`].
    pub fn features(&mut self, images: &[f32]) -> Vec<f32> {
        assert_eq!(images.len() % PIXELS, 0, "digits are 28×28");
        let mut out = Vec::with_capacity(images.len() / PIXELS * FLAT);
        for batch in images.chunks(BATCH * PIXELS) {
            let m = batch.len() / PIXELS;
            for (i, image) in batch.chunks_exact(PIXELS).enumerate() {
                self.conv1(image);
                self.conv2(i);
            }
            out.extend_from_slice(&self.flat[..m * FLAT]);
        }
        out
    }

    /// Class scores `[n][10]` from [`Self::features`] (of a network with this one's conv1 and
    /// conv2): fc1 and fc2 alone, the same arithmetic as [`Self::logits`].
    pub fn logits_from_features(&mut self, features: &[f32]) -> &[f32] {
        assert_eq!(
            features.len() % FLAT,
            0,
            "features are 3,136 values a digit"
        );
        let n = features.len() / FLAT;
        self.logits.resize(n * CLASSES, 0.0);
        for (b, batch) in features.chunks(BATCH * FLAT).enumerate() {
            let m = batch.len() / FLAT;
            self.flat[..batch.len()].copy_from_slice(batch);
            self.fc1(m);
            self.fc2(m, b * BATCH);
        }
        &self.logits
    }

    /// fc1's outputs after its ReLU, `[n][128]`, from [`Self::features`]: what fc2 reads. A
    /// network that differs from this one in fc2 alone computes the same.
    pub fn hidden(&mut self, features: &[f32]) -> Vec<f32> {
        assert_eq!(
            features.len() % FLAT,
            0,
            "features are 3,136 values a digit"
        );
        let mut out = Vec::with_capacity(features.len() / FLAT * HIDDEN);
        for batch in features.chunks(BATCH * FLAT) {
            let m = batch.len() / FLAT;
            self.flat[..batch.len()].copy_from_slice(batch);
            self.fc1(m);
            out.extend_from_slice(&self.hidden[..m * HIDDEN]);
        }
        out
    }

    /// Class scores `[n][10]` from [`Self::hidden`] (of a network with this one's conv1, conv2
    /// and fc1): fc2 alone.
    pub fn logits_from_hidden(&mut self, hidden: &[f32]) -> &[f32] {
        assert_eq!(hidden.len() % HIDDEN, 0, "fc1 gives 128 values a digit");
        let n = hidden.len() / HIDDEN;
        self.logits.resize(n * CLASSES, 0.0);
        for (b, batch) in hidden.chunks(BATCH * HIDDEN).enumerate() {
            let m = batch.len() / HIDDEN;
            self.hidden[..batch.len()].copy_from_slice(batch);
            self.fc2(m, b * BATCH);
        }
        &self.logits
    }

    /// conv1 (1→32, 3×3, pad 1) + ReLU + 2×2 max-pool, from `image` into `pad2`'s interior.
    fn conv1(&mut self, image: &[f32]) {
        for (y, row) in image.chunks_exact(SIDE).enumerate() {
            self.pad1[(y + 1) * PAD1 + 1..][..SIDE].copy_from_slice(row);
        }
        // The 9 inputs of each output pixel side by side (im2col), ordered by pooling window so
        // one window's four pixels are consecutive rows: then each window is one k = 9 tile per
        // 8 channels, rather than three k = 3 tiles that reload their sums.
        for py in 0..SIDE2 {
            for px in 0..SIDE2 {
                for (d, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                    let (y, x) = (2 * py + dy, 2 * px + dx);
                    let row = &mut self.cols1[((py * SIDE2 + px) * 4 + d) * 9..][..9];
                    for ky in 0..3 {
                        // Element by element: a 3-float `copy_from_slice` is a `memcpy` call in
                        // wasm, 2,352 of them per digit.
                        let src = &self.pad1[(y + ky) * PAD1 + x..][..3];
                        let dst = &mut row[ky * 3..][..3];
                        (dst[0], dst[1], dst[2]) = (src[0], src[1], src[2]);
                    }
                }
            }
        }
        for (window, cols) in self.cols1.chunks_exact(4 * 9).enumerate() {
            let (py, px) = (window / SIDE2, window % SIDE2);
            let o = ((py + 1) * PAD2 + px + 1) * C1;
            for (g, w) in self.conv1_w.chunks_exact(9).enumerate() {
                let mut acc = [[0.0; NR]; MR];
                tile(&mut acc, 9, cols, (9, 1), w.as_flattened(), NR);
                let bias = &self.conv1_b[g * NR..][..NR];
                pool_relu(&acc, bias, &mut self.pad2[o + g * NR..][..NR]);
            }
        }
    }

    /// conv2 (32→64, 3×3, pad 1) + ReLU + 2×2 max-pool by Winograd F(4×4, 3×3), from `pad2`
    /// into row `i` of `flat`. Each 4×4 output tile (four pooling windows) is computed from its
    /// 6×6 input patch `d` as `Y = Aᵀ·[U ⊙ V]·A` with `V = Bᵀ·d·B`. The 36 element-wise
    /// products, summed over input channels, are 36 small matrix products (16 tiles × 32) ·
    /// (32 × 64) on the same kernel as everything else.
    fn conv2(&mut self, i: usize) {
        self.conv2_in();
        self.conv2_products();
        self.conv2_out(i);
    }

    /// `V = Bᵀ·d·B` for every tile, into `wino_v`, with
    /// `Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
    ///        [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]`,
    /// four input channels at a time.
    // Indexed loops: the transforms read as the matrices in the comments.
    #[allow(clippy::needless_range_loop)]
    fn conv2_in(&mut self) {
        // Training's 1-D transform (the same operations, so the same bits).
        let b_t = winograd::bt_1d::<F4>;
        let pad2 = &self.pad2;
        for tile in 0..TILES {
            let (ty, tx) = (tile / TILE_ROW, tile % TILE_ROW);
            for c4 in (0..C1).step_by(4) {
                let x = |r: usize, c: usize| {
                    F4::load(&pad2[((4 * ty + r) * PAD2 + 4 * tx + c) * C1 + c4..])
                };
                // t = Bᵀ·d, by columns of d.
                let t: [[F4; 6]; 6] =
                    std::array::from_fn(|c| b_t(std::array::from_fn(|r| x(r, c))));
                // V = t·B, by rows of t.
                for r in 0..6 {
                    let v = b_t(std::array::from_fn(|c| t[c][r]));
                    for (c, value) in v.into_iter().enumerate() {
                        value.store(&mut self.wino_v[(r * 6 + c) * V_STRIDE + tile * C1 + c4..]);
                    }
                }
            }
        }
    }

    /// `M_ξ = V_ξ · U_ξ` for each of the 36 positions ξ, into `wino_m`. ξ outermost: `V_ξ`
    /// (2 KB) stays in L1 while all 64 output channels are computed from it.
    fn conv2_products(&mut self) {
        for (xi, u) in self.conv2_u.chunks_exact(C2 / NR * C1).enumerate() {
            let v = &self.wino_v[xi * V_STRIDE..][..TILES * C1];
            for (g, u) in u.chunks_exact(C1).enumerate() {
                for t0 in (0..TILES).step_by(MR) {
                    let mut acc = [[0.0; NR]; MR];
                    tile(&mut acc, C1, &v[t0 * C1..], (C1, 1), u.as_flattened(), NR);
                    for (r, sums) in acc.iter().enumerate() {
                        self.wino_m[xi * M_STRIDE + (t0 + r) * C2 + g * NR..][..NR]
                            .copy_from_slice(sums);
                    }
                }
            }
        }
    }

    /// `Y = Aᵀ·M·A` for every tile, with `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0],
    /// [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]]`, then pool, bias and ReLU as conv1 into row `i`
    /// of `flat`, four output channels at a time. Outputs past the 14th row or column (the last
    /// tiles' second halves) are dropped.
    fn conv2_out(&mut self, i: usize) {
        let a_t = winograd::at_1d::<F4>;
        let flat = &mut self.flat[i * FLAT..][..FLAT];
        let zero = F4::splat(0.0);
        for tile in 0..TILES {
            let (ty, tx) = (tile / TILE_ROW, tile % TILE_ROW);
            for c4 in (0..C2).step_by(4) {
                let m = |r: usize, c: usize| {
                    F4::load(&self.wino_m[(r * 6 + c) * M_STRIDE + tile * C2 + c4..])
                };
                // s = Aᵀ·M, by columns of M; then Y = s·A, by rows of s.
                let s: [[F4; 4]; 6] =
                    std::array::from_fn(|c| a_t(std::array::from_fn(|r| m(r, c))));
                let y: [[F4; 4]; 4] =
                    std::array::from_fn(|r| a_t(std::array::from_fn(|c| s[c][r])));
                let bias = F4::load(&self.conv2_b[c4..]);
                for (wy, wx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (py, px) = (2 * ty + wy, 2 * tx + wx);
                    if py >= SIDE3 || px >= SIDE3 {
                        continue;
                    }
                    let (r, c) = (2 * wy, 2 * wx);
                    let top = y[r][c]
                        .larger(y[r][c + 1])
                        .larger(y[r + 1][c].larger(y[r + 1][c + 1]));
                    // fc1 reads its input ordered (h, w, c), as the compute layout says.
                    (top + bias)
                        .larger(zero)
                        .store(&mut flat[(py * SIDE3 + px) * C2 + c4..]);
                }
            }
        }
    }

    /// fc1 (3136→128) + ReLU for the first `m` rows of `flat`, four images at a time.
    fn fc1(&mut self, m: usize) {
        let flat = &self.flat;
        for (g, w) in self.fc1_w.chunks_exact(FLAT).enumerate() {
            let bias = &self.fc1_b[g * NR..][..NR];
            for r0 in (0..m).step_by(MR) {
                // Past the last image the kernel reads rows left from an earlier batch (`flat`
                // holds BATCH, a multiple of 4); those sums are discarded.
                let mut acc = [[0.0; NR]; MR];
                tile(
                    &mut acc,
                    FLAT,
                    &flat[r0 * FLAT..],
                    (FLAT, 1),
                    w.as_flattened(),
                    NR,
                );
                for (r, sums) in acc.iter().enumerate().take(m - r0) {
                    let h = &mut self.hidden[(r0 + r) * HIDDEN + g * NR..][..NR];
                    for j in 0..NR {
                        h[j] = larger(sums[j] + bias[j], 0.0);
                    }
                }
            }
        }
    }

    /// fc2 (128→10) for the first `m` rows of `hidden`, into `logits` from row `first`.
    fn fc2(&mut self, m: usize, first: usize) {
        for r in 0..m {
            let h = &self.hidden[r * HIDDEN..][..HIDDEN];
            let out = &mut self.logits[(first + r) * CLASSES..][..CLASSES];
            for (o, w) in self.fc2_w.chunks_exact(HIDDEN).enumerate() {
                out[o] = self.fc2_b[o] + h.iter().zip(w).map(|(a, b)| a * b).sum::<f32>();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn features_then_the_head_equal_the_whole_forward_bit_for_bit() {
        use crate::recipe::Recipe;
        let net = crate::model::MnistNet::init(3);
        // A network that differs in fc1 only: the FP32 network's features, its own head.
        let other: Recipe = "bits=8&dtype=fp32&fc1.dtype=int&fc1.bits=2"
            .parse()
            .unwrap();
        let q = net.fake_quantized(&other).unwrap();
        let mut rng = crate::rng::Rng::new(5);
        let images: Vec<f32> = (0..150 * PIXELS).map(|_| rng.next_f32()).collect();
        let whole = Inference::new(&q).logits(&images).to_vec();
        let features = Inference::new(&net).features(&images);
        let head = Inference::new(&q).logits_from_features(&features).to_vec();
        assert_eq!(whole, head);
        // And one that differs in fc2 only, from FP32's fc1 outputs.
        let last: Recipe = "bits=8&dtype=fp32&fc2.dtype=int&fc2.bits=2"
            .parse()
            .unwrap();
        let q = net.fake_quantized(&last).unwrap();
        let whole = Inference::new(&q).logits(&images).to_vec();
        let hidden = Inference::new(&net).hidden(&features);
        let head = Inference::new(&q).logits_from_hidden(&hidden).to_vec();
        assert_eq!(whole, head);
    }
    use super::*;
    use crate::rng::Rng;
    use ndarray::Array2;

    #[test]
    fn matches_the_training_forward_pass() {
        let net = MnistNet::init(5);
        let mut rng = Rng::new(6);
        // 70 images: one full batch of 64 and a partial one of 6 (not a multiple of 4).
        let n = 70;
        let images = Array2::from_shape_fn((n, PIXELS), |_| rng.uniform(0.0, 1.0));
        let reference = net.logits(images.view());
        let mut inf = Inference::new(&net);
        let fast = inf.logits(images.as_slice().unwrap()).to_vec();
        assert_eq!(fast.len(), n * CLASSES);
        let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.01, "the logits are not all zero");
        for (a, b) in fast.iter().zip(reference.iter()) {
            assert!((a - b).abs() <= 1e-5 * scale.max(1.0), "{a} vs {b}");
        }
        // Reusing the buffers for fewer images gives the same scores.
        let again = inf
            .logits(&images.as_slice().unwrap()[..3 * PIXELS])
            .to_vec();
        assert_eq!(again, fast[..3 * CLASSES]);
    }
}
