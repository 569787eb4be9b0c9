//! True integer inference of a converted MNISTNet: u8 activations × i8 weights → i32 sums,
//! requantized to u8, max-pooled on the codes, dequantized only at the end — the arithmetic of
//! PyTorch's two engines, each bit for bit (core/tests/ptq.rs holds us to PyTorch's `int_repr()`).
//!
//! For output channel j of a layer with input (s_in, z_in), weights s_w[j] (zero point 0) and
//! output (s_out, z_out), the sum is exact in integers, `acc = Σ (x_q − z_in)·w_q`, then:
//! - QNNPACK: `b_q = round(b · (1/(s_w·s_in)))` (i32), `M = (s_w·s_in)·(1/s_out)` (f32),
//!   `q = round(f32(acc + b_q) · M) + z_out`;
//! - FBGEMM: `a = s_in·s_w`, `M = a / s_out`, `q = round((f32(acc) + b/a) · M) + z_out`, the bias
//!   kept in f32;
//!
//! every product and quotient rounded to f32, `round` half to even, then clamped to [0, 255]
//! ([z_out, 255] with the fused ReLU). (FBGEMM on AVX2 also sums u8·s8 pairs in int16 with
//! saturation; on our model and test digits that never changes PyTorch's result — the goldens
//! script checks it — so we compute the exact sums.)
//!
//! How it is fast, with every sum still exact:
//! - The sums run on i16 operands (`x_q − z_in` fits, and so do i8 weights) in i32: in wasm
//!   `i32x4.dot_i16x8_s`, eight products and four additions per instruction (`pmaddwd`
//!   natively). One micro-kernel, [`tile`], computes 4 rows × 8 output channels: a pair of
//!   inputs of a row, broadcast, against the same pair of 4 channels' weights, so each lane
//!   holds one channel's sum and no horizontal additions are needed.
//! - conv2 (85 % of the products) runs Winograd's F(2×2, 3×3) in integers. Its input transform
//!   has coefficients 0 and ±1, and its weight transform halves: with the weights transformed
//!   by 2G instead of G, every transformed value is an integer (|v| ≤ 4·255, |u| ≤ 9·128, both
//!   i16), the products and the output transform sum in i32 without overflow, and the result is
//!   exactly 4× the direct convolution's sum, which a shift by 2 undoes. 16 products per 2×2
//!   outputs instead of 36: the same integers, 2.25× fewer multiplies. Each 2×2 tile is one
//!   max-pool window.
//! - Requantization is monotonic in `acc` (M > 0), so the max-pool takes the largest of four
//!   sums and requantizes it once; only [`IntNet::codes`], which returns the pre-pool codes too,
//!   requantizes all four. It runs on four lanes, rounding with f32's own half-to-even.

use crate::error::{Error, Result};
use crate::model::Layer;
use crate::ptq::{Preset, QuantWeights};
use crate::quant::{round_half_even, QParams};
use lanes::V;
use ndarray::Array2;

const SIDE: usize = crate::data::SIDE;
const SIDE2: usize = SIDE / 2;
const SIDE3: usize = SIDE / 4;
const C1: usize = 32;
const C2: usize = 64;
/// Rows (pixels, tiles or digits) per register tile.
const MR: usize = 4;
/// Output channels per register tile: two i32x4 vectors.
const NR: usize = 8;
/// conv1's inputs per output: 9 taps and a zero, five pairs.
const K1: usize = 10;
/// conv1's zero-padded input side.
const PAD1: usize = SIDE + 2;
/// conv2's zero-padded input side.
const PAD2: usize = SIDE2 + 2;
/// conv2's Winograd tiles: 7 × 7 of 2×2 outputs, rounded up to whole register tiles.
const TILES: usize = SIDE3 * SIDE3;
const TILES_P: usize = TILES.div_ceil(MR) * MR;
/// Positions ξ of a tile in the Winograd domain: 4 × 4.
const XI: usize = 16;

/// A layer's weights for [`tile`]: for each block of 8 output channels and each pair of inputs
/// (2p, 2p + 1), the 16 values `w[c][2p], w[c][2p + 1]` for c = 0..8 of the block (zeros pad the
/// last block and an odd last pair).
#[derive(Clone, Debug)]
struct Packed {
    pairs: usize,
    data: Vec<i16>,
}

impl Packed {
    fn new(out: usize, k: usize, w: impl Fn(usize, usize) -> i16) -> Self {
        let pairs = k.div_ceil(2);
        let mut data = vec![0i16; out.div_ceil(NR) * pairs * 2 * NR];
        for j in 0..out {
            for i in 0..k {
                data[((j / NR) * pairs + i / 2) * 2 * NR + (j % NR) * 2 + i % 2] = w(j, i);
            }
        }
        Packed { pairs, data }
    }

    fn block(&self, b: usize) -> &[i16] {
        &self.data[b * self.pairs * 2 * NR..][..self.pairs * 2 * NR]
    }

    fn blocks(&self) -> usize {
        self.data.len() / (self.pairs * 2 * NR)
    }
}

/// One layer's requantization, per output channel (padded to whole blocks of 8): `q =
/// round((f32(acc + bias_q) + bias_f) · multiplier) + zp_out`, clamped to [lo, 255]. QNNPACK's
/// bias is `bias_q` with `bias_f = 0` (adding +0.0 changes no value), FBGEMM's the reverse.
#[derive(Clone, Debug)]
struct Requant {
    bias_q: Vec<i32>,
    bias_f: Vec<f32>,
    multiplier: Vec<f32>,
    zp_out: i32,
    /// 0, or zp_out with the fused ReLU.
    lo: u8,
}

impl Requant {
    /// The 8 codes of block `b` from its sums.
    #[inline(always)]
    fn codes(&self, b: usize, acc: [V; 2]) -> [u8; NR] {
        let at = b * NR;
        lanes::requant(
            acc,
            &self.bias_q[at..at + NR],
            &self.bias_f[at..at + NR],
            &self.multiplier[at..at + NR],
            self.zp_out,
            self.lo,
        )
    }
}

/// A quantized layer: its packed weights (conv2: one set per Winograd position ξ), input zero
/// point and requantization.
#[derive(Clone, Debug)]
struct IntLayer {
    w: Vec<Packed>,
    zp_in: i32,
    rq: Requant,
}

/// The converted network.
#[derive(Clone, Debug)]
pub struct IntNet {
    preset: Preset,
    input: QParams,
    output: QParams,
    layers: [IntLayer; 4],
}

/// Every site's integer output for a batch of digits, in compute layout (pixel-major, channels
/// inner): the input codes, conv1 and conv2 after their fused ReLU (before the pool), fc1, fc2.
#[derive(Clone, Debug, Default)]
pub struct Codes {
    pub sites: [Vec<u8>; 5],
}

/// Winograd F(2×2, 3×3)'s weight transform, doubled so that it is integer: 2G.
const G2: [[i32; 3]; 4] = [[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]];

impl IntNet {
    /// Converts: `weights` from [`crate::ptq::quantize_all`] at 8 bits, `act` the five sites'
    /// quint8 qparams.
    pub fn new(
        net: &crate::model::MnistNet,
        weights: &[QuantWeights],
        act: &[QParams; 5],
        preset: Preset,
    ) -> Result<Self> {
        if act.iter().any(|q| q.qmin < 0 || q.qmax > 255)
            || weights.iter().any(|w| w.qparams[0].qmin < -128)
        {
            return Err(Error::Ptq(
                "the integer engine runs quint8 activations and qint8 weights only".into(),
            ));
        }
        let layers = std::array::from_fn(|i| {
            let layer = Layer::ALL[i];
            let q = &weights[i];
            let code = |j: usize, k: usize| i16::from(q.codes[j * q.cols + k]);
            let w = if layer == Layer::Conv2 {
                // u' = 2G · g · (2G)ᵀ for each output j, input channel c and ξ = (a, b).
                (0..XI)
                    .map(|xi| {
                        let (a, b) = (xi / 4, xi % 4);
                        Packed::new(q.rows, C1, |j, c| {
                            let mut u = 0;
                            for (ky, ga) in G2[a].iter().enumerate() {
                                for (kx, gb) in G2[b].iter().enumerate() {
                                    u += ga * gb * i32::from(code(j, (ky * 3 + kx) * C1 + c));
                                }
                            }
                            u as i16
                        })
                    })
                    .collect()
            } else {
                vec![Packed::new(q.rows, q.cols, code)]
            };
            let (s_in, s_out) = (act[i].scale, act[i + 1].scale);
            let bias = crate::ptq::bias(net, layer);
            let padded = q.rows.div_ceil(NR) * NR;
            let mut rq = Requant {
                bias_q: vec![0; padded],
                bias_f: vec![0.0; padded],
                multiplier: vec![0.0; padded],
                zp_out: act[i + 1].zero_point,
                lo: if layer == Layer::Fc2 {
                    0
                } else {
                    act[i + 1].zero_point.clamp(0, 255) as u8
                },
            };
            for j in 0..q.rows {
                let (s_w, b) = (q.channel(j).scale, bias[j]);
                match preset {
                    Preset::Qnnpack => {
                        let sw_in = s_w * s_in;
                        rq.bias_q[j] = (b * (1.0 / sw_in)).round_ties_even() as i32;
                        rq.multiplier[j] = sw_in * (1.0 / s_out);
                    }
                    Preset::X86 => {
                        let atw = s_in * s_w;
                        rq.bias_f[j] = b / atw;
                        rq.multiplier[j] = atw / s_out;
                    }
                }
            }
            IntLayer {
                w,
                zp_in: act[i].zero_point,
                rq,
            }
        });
        Ok(IntNet {
            preset,
            input: act[0],
            output: act[4],
            layers,
        })
    }

    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// Class scores for `images` `[n, 784]` (pixels in [0, 1]): fc2's codes dequantized,
    /// `s·(q − z)`.
    pub fn logits(&self, images: &[f32]) -> Array2<f32> {
        self.scores(&self.run(images, false))
    }

    /// fc2's codes dequantized (DeQuantStub): `s·(q − z)` in f32.
    pub fn scores(&self, codes: &Codes) -> Array2<f32> {
        let out = &codes.sites[4];
        Array2::from_shape_fn((out.len() / 10, 10), |(i, j)| {
            self.output.dequantize(i32::from(out[i * 10 + j]))
        })
    }

    /// Every site's codes (for the tests and `qp ptq --emit-codes`).
    pub fn codes(&self, images: &[f32]) -> Codes {
        self.run(images, true)
    }

    fn run(&self, images: &[f32], keep: bool) -> Codes {
        let n = images.len() / crate::data::PIXELS;
        let [l1, l2, l3, l4] = &self.layers;
        let mut codes = Codes::default();
        let mut q0 = vec![0u8; SIDE * SIDE];
        let mut pad1 = vec![0i16; PAD1 * PAD1];
        let mut rows1 = vec![0i16; SIDE * SIDE * K1];
        let mut a1 = vec![0u8; if keep { SIDE * SIDE * C1 } else { 0 }];
        let mut p1 = vec![0u8; SIDE2 * SIDE2 * C1];
        let mut pad2 = vec![0i16; PAD2 * PAD2 * C1];
        let mut v2 = vec![0i16; XI * TILES_P * C1];
        let mut m2 = vec![0i32; XI * MR * C2];
        let mut a2 = vec![0u8; if keep { SIDE2 * SIDE2 * C2 } else { 0 }];
        let mut p2 = vec![0u8; TILES * C2];
        // fc1's inputs for the whole batch: its weights are then read once per 4 digits.
        let fc1_k = l3.w[0].pairs * 2;
        let mut x3 = vec![0i16; n.max(1) * fc1_k];
        let inv_scale = 1.0f32 / self.input.scale;
        for (d, image) in images.chunks_exact(crate::data::PIXELS).enumerate() {
            // QuantStub: clamp(z + round(x · (1/s)), 0, 255).
            for (q, &x) in q0.iter_mut().zip(image) {
                let v = self.input.zero_point + round_half_even(x * inv_scale) as i32;
                *q = v.clamp(0, 255) as u8;
            }
            conv1(
                l1,
                &q0,
                &mut pad1,
                &mut rows1,
                keep.then_some(&mut a1[..]),
                &mut p1,
            );
            conv2(
                l2,
                &p1,
                &mut pad2,
                &mut v2,
                &mut m2,
                keep.then_some(&mut a2[..]),
                &mut p2,
            );
            centre(&p2, l3.zp_in, &mut x3[d * fc1_k..]);
            if keep {
                codes.sites[0].extend_from_slice(&q0);
                codes.sites[1].extend_from_slice(&a1);
                codes.sites[2].extend_from_slice(&a2);
            }
        }
        let h = dense(l3, &x3, n, 128);
        let fc2_k = l4.w[0].pairs * 2;
        let mut x4 = vec![0i16; n.max(1) * fc2_k];
        for (d, row) in h.chunks_exact(128).enumerate() {
            centre(row, l4.zp_in, &mut x4[d * fc2_k..]);
        }
        codes.sites[4] = dense(l4, &x4, n, 10);
        if keep {
            codes.sites[3] = h;
        }
        codes
    }
}

/// conv1 + ReLU + pool for one digit. Its im2col rows are ordered by pooling window (the four
/// pixels of a window are one register tile's rows): `p1` gets each window's largest sum,
/// requantized; `a1`, when asked, every pixel's code.
fn conv1(
    l: &IntLayer,
    q0: &[u8],
    pad1: &mut [i16],
    rows: &mut [i16],
    mut a1: Option<&mut [u8]>,
    p1: &mut [u8],
) {
    for (y, row) in q0.chunks_exact(SIDE).enumerate() {
        centre(row, l.zp_in, &mut pad1[(y + 1) * PAD1 + 1..]);
    }
    for win in 0..SIDE2 * SIDE2 {
        for r in 0..MR {
            let (y, x) = pixel(win, r);
            let row = &mut rows[(win * MR + r) * K1..][..K1];
            for ky in 0..3 {
                for kx in 0..3 {
                    row[ky * 3 + kx] = pad1[(y + ky) * PAD1 + x + kx];
                }
            }
        }
    }
    for win in 0..SIDE2 * SIDE2 {
        let x: [&[i16]; MR] = std::array::from_fn(|r| &rows[(win * MR + r) * K1..][..K1]);
        for b in 0..C1 / NR {
            let acc = tile(x, l.w[0].block(b));
            let out = &mut p1[win * C1 + b * NR..][..NR];
            pool(&l.rq, b, acc, out, a1.as_deref_mut(), |r| {
                let (y, x) = pixel(win, r);
                (y * SIDE + x) * C1 + b * NR
            });
        }
    }
}

/// A layer's input codes centred on its zero point, `x_q − z_in` (fits i16), into the start of
/// `dst`.
fn centre(codes: &[u8], zp: i32, dst: &mut [i16]) {
    for (d, &c) in dst.iter_mut().zip(codes) {
        *d = (i32::from(c) - zp) as i16;
    }
}

/// The pixel (y, x) of row `r` of pooling window `win` on a 14 × 14 grid of windows.
fn pixel(win: usize, r: usize) -> (usize, usize) {
    (2 * (win / SIDE2) + r / 2, 2 * (win % SIDE2) + r % 2)
}

/// Max-pools one window's four rows of sums (8 channels of block `b`) into `out`'s 8 codes:
/// requantizes the largest sum, or, with `keep`, all four (stored at `at(r)` in it) and takes the
/// largest code — the same codes, as requantization is monotonic.
#[inline(always)]
fn pool(
    rq: &Requant,
    b: usize,
    acc: [[V; 2]; MR],
    out: &mut [u8],
    keep: Option<&mut [u8]>,
    at: impl Fn(usize) -> usize,
) {
    match keep {
        None => {
            let m = [0, 1].map(|h| {
                lanes::max32(
                    lanes::max32(acc[0][h], acc[1][h]),
                    lanes::max32(acc[2][h], acc[3][h]),
                )
            });
            out.copy_from_slice(&rq.codes(b, m));
        }
        Some(all) => {
            out.fill(0);
            for (r, a) in acc.iter().enumerate() {
                let c = rq.codes(b, *a);
                all[at(r)..][..NR].copy_from_slice(&c);
                for (o, v) in out.iter_mut().zip(c) {
                    *o = (*o).max(v);
                }
            }
        }
    }
}

/// conv2 + ReLU + pool for one digit, by integer Winograd F(2×2, 3×3) (see the module's
/// comment): input transform `V = Bᵀ d B` of each 4×4 patch, 16 matrix products (tiles × 32
/// channels by 32 × 64), output transform `Y = Aᵀ M A / 4`, one 2×2 pooling window per tile.
// The transforms index 4×4 arrays by row and column, as the formulas do.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn conv2(
    l: &IntLayer,
    p1: &[u8],
    pad2: &mut [i16],
    v2: &mut [i16],
    m2: &mut [i32],
    mut a2: Option<&mut [u8]>,
    p2: &mut [u8],
) {
    for (y, row) in p1.chunks_exact(SIDE2 * C1).enumerate() {
        centre(row, l.zp_in, &mut pad2[((y + 1) * PAD2 + 1) * C1..]);
    }
    for t in 0..TILES {
        let (ty, tx) = (t / SIDE3, t % SIDE3);
        for cv in (0..C1).step_by(8) {
            // SAFETY: every patch position lies in pad2 (2·6 + 3 < 16) and every ξ row in v2.
            unsafe {
                let d: [[V; 4]; 4] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| {
                        lanes::load(
                            pad2.as_ptr()
                                .add(((2 * ty + i) * PAD2 + 2 * tx + j) * C1 + cv),
                        )
                    })
                });
                // Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]], on rows then
                // columns.
                let rows = std::array::from_fn::<[V; 4], 4, _>(|j| {
                    bt([d[0][j], d[1][j], d[2][j], d[3][j]])
                });
                for i in 0..4 {
                    let v = bt([rows[0][i], rows[1][i], rows[2][i], rows[3][i]]);
                    for (j, &vj) in v.iter().enumerate() {
                        lanes::store(
                            v2.as_mut_ptr().add(((i * 4 + j) * TILES_P + t) * C1 + cv),
                            vj,
                        );
                    }
                }
            }
        }
    }
    for g in 0..TILES_P / MR {
        for xi in 0..XI {
            let x: [&[i16]; MR] =
                std::array::from_fn(|r| &v2[(xi * TILES_P + g * MR + r) * C1..][..C1]);
            for b in 0..C2 / NR {
                let acc = tile(x, l.w[xi].block(b));
                for (r, a) in acc.iter().enumerate() {
                    let at = (xi * MR + r) * C2 + b * NR;
                    // SAFETY: at + 8 ≤ m2.len().
                    unsafe {
                        lanes::store32(m2.as_mut_ptr().add(at), a[0]);
                        lanes::store32(m2.as_mut_ptr().add(at + 4), a[1]);
                    }
                }
            }
        }
        for r in 0..MR {
            let t = g * MR + r;
            if t >= TILES {
                break;
            }
            let (ty, tx) = (t / SIDE3, t % SIDE3);
            for b in 0..C2 / NR {
                // y[pos][h]: the window's four outputs (row-major 2×2), 8 channels as two halves.
                let mut y = [[lanes::zero(); 2]; MR];
                for h in 0..2 {
                    // SAFETY: every (ξ, r, channel) lies in m2.
                    let m: [[V; 4]; 4] = std::array::from_fn(|i| {
                        std::array::from_fn(|j| unsafe {
                            lanes::load32(
                                m2.as_ptr()
                                    .add(((i * 4 + j) * MR + r) * C2 + b * NR + 4 * h),
                            )
                        })
                    });
                    // Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]], on rows then columns, then / 4.
                    let cols = std::array::from_fn::<[V; 2], 4, _>(|j| {
                        at([m[0][j], m[1][j], m[2][j], m[3][j]])
                    });
                    for i in 0..2 {
                        let o = at([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]);
                        y[i * 2][h] = lanes::shr2(o[0]);
                        y[i * 2 + 1][h] = lanes::shr2(o[1]);
                    }
                }
                let out = &mut p2[t * C2 + b * NR..][..NR];
                pool(&l.rq, b, y, out, a2.as_deref_mut(), |pos| {
                    ((2 * ty + pos / 2) * SIDE2 + 2 * tx + pos % 2) * C2 + b * NR
                });
            }
        }
    }
}

/// Bᵀ·d for one column of a 4×4 patch (i16 lanes).
#[inline(always)]
fn bt(d: [V; 4]) -> [V; 4] {
    [
        lanes::sub16(d[0], d[2]),
        lanes::add16(d[1], d[2]),
        lanes::sub16(d[2], d[1]),
        lanes::sub16(d[1], d[3]),
    ]
}

/// Aᵀ·m for one column of a tile's 4×4 products (i32 lanes).
#[inline(always)]
fn at(m: [V; 4]) -> [V; 2] {
    [
        lanes::add32(lanes::add32(m[0], m[1]), m[2]),
        lanes::sub32(lanes::sub32(m[1], m[2]), m[3]),
    ]
}

/// A fully connected layer over `n` digits' centred inputs `x` `[n, kp]` → `[n, out]` codes.
fn dense(l: &IntLayer, x: &[i16], n: usize, out: usize) -> Vec<u8> {
    let w = &l.w[0];
    let kp = w.pairs * 2;
    let mut codes = vec![0u8; n * out];
    let row = |r: usize| &x[r.min(n.max(1) - 1) * kp..][..kp];
    for r0 in (0..n).step_by(MR) {
        let rows: [&[i16]; MR] = std::array::from_fn(|r| row(r0 + r));
        for b in 0..w.blocks() {
            let acc = tile(rows, w.block(b));
            for (r, a) in acc.iter().enumerate().take(n - r0) {
                let c = l.rq.codes(b, *a);
                let j0 = b * NR;
                let width = NR.min(out - j0);
                codes[(r0 + r) * out + j0..][..width].copy_from_slice(&c[..width]);
            }
        }
    }
    codes
}

/// 4 rows × 8 output channels of exact sums `Σ x·w` (wrapping, like PyTorch's i32 accumulators,
/// if they ever overflowed): each step broadcasts one pair of a row's inputs and multiplies it
/// with the same pair of 4 channels' weights, adding neighbours (`i32x4.dot_i16x8_s` in wasm,
/// `pmaddwd` natively). `w` is one block of a [`Packed`].
#[inline(always)]
fn tile(x: [&[i16]; MR], w: &[i16]) -> [[V; 2]; MR] {
    let pairs = w.len() / (2 * NR);
    assert!(x.iter().all(|r| r.len() >= 2 * pairs));
    let mut acc = [[lanes::zero(); 2]; MR];
    for p in 0..pairs {
        // SAFETY: p·16 + 16 ≤ w.len() and 2p + 2 ≤ each row's length (asserted above).
        unsafe {
            let w0 = lanes::load(w.as_ptr().add(p * 2 * NR));
            let w1 = lanes::load(w.as_ptr().add(p * 2 * NR + 8));
            for r in 0..MR {
                let xv = lanes::splat_pair(x[r].as_ptr().add(2 * p));
                acc[r][0] = lanes::madd(acc[r][0], xv, w0);
                acc[r][1] = lanes::madd(acc[r][1], xv, w1);
            }
        }
    }
    acc
}

/// `round(v)` half to even, as f32's own addition rounds: `(v + 1.5·2²³) − 1.5·2²³` is exact
/// while |v| ≤ 2²²; beyond that the code is clamped to [0, 255] anyway, so v is clamped first.
/// `v + 1.5·2²³` then lies in [2²³, 2²⁴], where one unit of the float is one unit of its bits:
/// the integer `bits(v + 1.5·2²³) − bits(1.5·2²³)` is the rounded v (what wasm computes, in
/// place of a float subtraction and V8's eight-instruction saturating conversion).
const MAGIC: f32 = 12_582_912.0;
const LIMIT: f32 = 4_194_304.0;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use super::{LIMIT, MAGIC, NR};
    use core::arch::wasm32::*;
    /// Four i32 or eight i16 lanes.
    pub type V = v128;
    #[inline(always)]
    pub fn zero() -> V {
        i32x4_splat(0)
    }
    /// # Safety
    /// `p` must point at 8 readable i16.
    #[inline(always)]
    pub unsafe fn load(p: *const i16) -> V {
        v128_load(p as *const v128)
    }
    /// # Safety
    /// `p` must point at 8 writable i16.
    #[inline(always)]
    pub unsafe fn store(p: *mut i16, v: V) {
        v128_store(p as *mut v128, v)
    }
    /// # Safety
    /// `p` must point at 4 readable i32.
    #[inline(always)]
    pub unsafe fn load32(p: *const i32) -> V {
        v128_load(p as *const v128)
    }
    /// # Safety
    /// `p` must point at 4 writable i32.
    #[inline(always)]
    pub unsafe fn store32(p: *mut i32, v: V) {
        v128_store(p as *mut v128, v)
    }
    /// The pair `p[0], p[1]` in every 32-bit lane.
    /// # Safety
    /// `p` must point at 2 readable i16.
    #[inline(always)]
    pub unsafe fn splat_pair(p: *const i16) -> V {
        v128_load32_splat(p as *const u32)
    }
    #[inline(always)]
    pub fn madd(acc: V, x: V, w: V) -> V {
        i32x4_add(acc, i32x4_dot_i16x8(x, w))
    }
    #[inline(always)]
    pub fn add16(a: V, b: V) -> V {
        i16x8_add(a, b)
    }
    #[inline(always)]
    pub fn sub16(a: V, b: V) -> V {
        i16x8_sub(a, b)
    }
    #[inline(always)]
    pub fn add32(a: V, b: V) -> V {
        i32x4_add(a, b)
    }
    #[inline(always)]
    pub fn sub32(a: V, b: V) -> V {
        i32x4_sub(a, b)
    }
    #[inline(always)]
    pub fn shr2(a: V) -> V {
        i32x4_shr(a, 2)
    }
    #[inline(always)]
    pub fn max32(a: V, b: V) -> V {
        i32x4_max(a, b)
    }
    #[inline(always)]
    pub fn requant(
        acc: [V; 2],
        bias_q: &[i32],
        bias_f: &[f32],
        mult: &[f32],
        zp: i32,
        lo: u8,
    ) -> [u8; NR] {
        assert!(bias_q.len() >= NR && bias_f.len() >= NR && mult.len() >= NR);
        let q = [0, 1].map(|h| {
            // SAFETY: 4h + 4 ≤ NR ≤ each slice's length (asserted above).
            let (bq, bf, m) = unsafe {
                (
                    v128_load(bias_q.as_ptr().add(4 * h) as *const v128),
                    v128_load(bias_f.as_ptr().add(4 * h) as *const v128),
                    v128_load(mult.as_ptr().add(4 * h) as *const v128),
                )
            };
            let f = f32x4_convert_i32x4(i32x4_add(acc[h], bq));
            let f = f32x4_mul(f32x4_add(f, bf), m);
            // pmin/pmax: no NaN can arise here (integer sums, finite bias and multiplier), and
            // unlike min/max (NaN-propagating, ~8 x86 instructions each in V8) they are one.
            let f = f32x4_pmin(f32x4_pmax(f, f32x4_splat(-LIMIT)), f32x4_splat(LIMIT));
            let r = f32x4_add(f, f32x4_splat(MAGIC));
            i32x4_add(i32x4_sub(r, f32x4_splat(MAGIC)), i32x4_splat(zp))
        });
        let c = u8x16_narrow_i16x8(i16x8_narrow_i32x4(q[0], q[1]), i16x8_splat(0));
        let c = u8x16_max(c, u8x16_splat(lo));
        (i64x2_extract_lane::<0>(c) as u64).to_le_bytes()
    }
}

#[cfg(target_arch = "x86_64")]
mod lanes {
    // SAFETY (every block below): SSE2 is part of x86_64; pointers as each function states.
    use super::{LIMIT, MAGIC, NR};
    use core::arch::x86_64::*;
    /// Four i32 or eight i16 lanes.
    pub type V = __m128i;
    #[inline(always)]
    pub fn zero() -> V {
        unsafe { _mm_setzero_si128() }
    }
    /// # Safety
    /// `p` must point at 8 readable i16.
    #[inline(always)]
    pub unsafe fn load(p: *const i16) -> V {
        _mm_loadu_si128(p as *const __m128i)
    }
    /// # Safety
    /// `p` must point at 8 writable i16.
    #[inline(always)]
    pub unsafe fn store(p: *mut i16, v: V) {
        _mm_storeu_si128(p as *mut __m128i, v)
    }
    /// # Safety
    /// `p` must point at 4 readable i32.
    #[inline(always)]
    pub unsafe fn load32(p: *const i32) -> V {
        _mm_loadu_si128(p as *const __m128i)
    }
    /// # Safety
    /// `p` must point at 4 writable i32.
    #[inline(always)]
    pub unsafe fn store32(p: *mut i32, v: V) {
        _mm_storeu_si128(p as *mut __m128i, v)
    }
    /// The pair `p[0], p[1]` in every 32-bit lane.
    /// # Safety
    /// `p` must point at 2 readable i16.
    #[inline(always)]
    pub unsafe fn splat_pair(p: *const i16) -> V {
        _mm_set1_epi32((p as *const i32).read_unaligned())
    }
    #[inline(always)]
    pub fn madd(acc: V, x: V, w: V) -> V {
        unsafe { _mm_add_epi32(acc, _mm_madd_epi16(x, w)) }
    }
    #[inline(always)]
    pub fn add16(a: V, b: V) -> V {
        unsafe { _mm_add_epi16(a, b) }
    }
    #[inline(always)]
    pub fn sub16(a: V, b: V) -> V {
        unsafe { _mm_sub_epi16(a, b) }
    }
    #[inline(always)]
    pub fn add32(a: V, b: V) -> V {
        unsafe { _mm_add_epi32(a, b) }
    }
    #[inline(always)]
    pub fn sub32(a: V, b: V) -> V {
        unsafe { _mm_sub_epi32(a, b) }
    }
    #[inline(always)]
    pub fn shr2(a: V) -> V {
        unsafe { _mm_srai_epi32(a, 2) }
    }
    /// (SSE2 has no `pmaxsd`.)
    #[inline(always)]
    pub fn max32(a: V, b: V) -> V {
        unsafe {
            let gt = _mm_cmpgt_epi32(a, b);
            _mm_or_si128(_mm_and_si128(gt, a), _mm_andnot_si128(gt, b))
        }
    }
    #[inline(always)]
    pub fn requant(
        acc: [V; 2],
        bias_q: &[i32],
        bias_f: &[f32],
        mult: &[f32],
        zp: i32,
        lo: u8,
    ) -> [u8; NR] {
        assert!(bias_q.len() >= NR && bias_f.len() >= NR && mult.len() >= NR);
        unsafe {
            let q = [0, 1].map(|h| {
                let bq = _mm_loadu_si128(bias_q.as_ptr().add(4 * h) as *const __m128i);
                let bf = _mm_loadu_ps(bias_f.as_ptr().add(4 * h));
                let m = _mm_loadu_ps(mult.as_ptr().add(4 * h));
                let f = _mm_cvtepi32_ps(_mm_add_epi32(acc[h], bq));
                let f = _mm_mul_ps(_mm_add_ps(f, bf), m);
                let f = _mm_min_ps(_mm_max_ps(f, _mm_set1_ps(-LIMIT)), _mm_set1_ps(LIMIT));
                let f = _mm_sub_ps(_mm_add_ps(f, _mm_set1_ps(MAGIC)), _mm_set1_ps(MAGIC));
                _mm_add_epi32(_mm_cvttps_epi32(f), _mm_set1_epi32(zp))
            });
            let c = _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]), _mm_setzero_si128());
            let c = _mm_max_epu8(c, _mm_set1_epi8(lo as i8));
            (_mm_cvtsi128_si64(c) as u64).to_le_bytes()
        }
    }
}

/// Plain arrays elsewhere (the same integers; LLVM vectorises what it can).
#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
mod lanes {
    use super::{LIMIT, MAGIC, NR};
    /// Four i32 lanes, or eight i16 ones in the same 16 bytes.
    pub type V = [i32; 4];
    fn as16(v: V) -> [i16; 8] {
        // SAFETY: both are 16 bytes of plain integers.
        unsafe { std::mem::transmute(v) }
    }
    fn from16(v: [i16; 8]) -> V {
        // SAFETY: as above.
        unsafe { std::mem::transmute(v) }
    }
    pub fn zero() -> V {
        [0; 4]
    }
    /// # Safety
    /// `p` must point at 8 readable i16.
    pub unsafe fn load(p: *const i16) -> V {
        from16((p as *const [i16; 8]).read_unaligned())
    }
    /// # Safety
    /// `p` must point at 8 writable i16.
    pub unsafe fn store(p: *mut i16, v: V) {
        (p as *mut [i16; 8]).write_unaligned(as16(v))
    }
    /// # Safety
    /// `p` must point at 4 readable i32.
    pub unsafe fn load32(p: *const i32) -> V {
        (p as *const V).read_unaligned()
    }
    /// # Safety
    /// `p` must point at 4 writable i32.
    pub unsafe fn store32(p: *mut i32, v: V) {
        (p as *mut V).write_unaligned(v)
    }
    /// # Safety
    /// `p` must point at 2 readable i16.
    pub unsafe fn splat_pair(p: *const i16) -> V {
        [(p as *const i32).read_unaligned(); 4]
    }
    pub fn madd(mut acc: V, x: V, w: V) -> V {
        let (x, w) = (as16(x), as16(w));
        for (i, a) in acc.iter_mut().enumerate() {
            let p = i32::from(x[2 * i]) * i32::from(w[2 * i])
                + i32::from(x[2 * i + 1]) * i32::from(w[2 * i + 1]);
            *a = a.wrapping_add(p);
        }
        acc
    }
    pub fn add16(a: V, b: V) -> V {
        let (a, b) = (as16(a), as16(b));
        from16(std::array::from_fn(|i| a[i].wrapping_add(b[i])))
    }
    pub fn sub16(a: V, b: V) -> V {
        let (a, b) = (as16(a), as16(b));
        from16(std::array::from_fn(|i| a[i].wrapping_sub(b[i])))
    }
    pub fn add32(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i].wrapping_add(b[i]))
    }
    pub fn sub32(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i].wrapping_sub(b[i]))
    }
    pub fn shr2(a: V) -> V {
        a.map(|v| v >> 2)
    }
    pub fn max32(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i].max(b[i]))
    }
    pub fn requant(
        acc: [V; 2],
        bias_q: &[i32],
        bias_f: &[f32],
        mult: &[f32],
        zp: i32,
        lo: u8,
    ) -> [u8; NR] {
        std::array::from_fn(|c| {
            let a = acc[c / 4][c % 4].wrapping_add(bias_q[c]);
            let f = ((a as f32 + bias_f[c]) * mult[c]).clamp(-LIMIT, LIMIT);
            let r = ((f + MAGIC) - MAGIC) as i32 + zp;
            (r.clamp(0, 255) as u8).max(lo)
        })
    }
}

/// Codes of a site from compute layout (`[n, pixels, channels]`) to PyTorch's NCHW.
pub fn to_nchw(codes: &[u8], pixels: usize, channels: usize) -> Vec<u8> {
    let per = pixels * channels;
    let mut out = vec![0u8; codes.len()];
    for (d, img) in codes.chunks_exact(per).enumerate() {
        for p in 0..pixels {
            for c in 0..channels {
                out[d * per + c * pixels + p] = img[p * channels + c];
            }
        }
    }
    out
}
