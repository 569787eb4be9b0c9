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
//! The sums run on i16 operands (`x_q − z_in` fits, and so do i8 weights) in i32: in wasm as
//! `i32x4.dot_i16x8_s`, eight products and four additions per instruction.

use crate::error::{Error, Result};
use crate::model::Layer;
use crate::ptq::{Preset, QuantWeights};
use crate::quant::QParams;
use ndarray::Array2;

const SIDE: usize = crate::data::SIDE;
const SIDE2: usize = SIDE / 2;
const SIDE3: usize = SIDE / 4;
const C1: usize = 32;
const C2: usize = 64;
/// Operands are padded to whole 8-lane vectors.
const LANES: usize = 8;

/// One output channel's requantization constants.
#[derive(Clone, Copy, Debug)]
struct Requant {
    /// QNNPACK: the bias in i32 at scale s_w·s_in.
    bias_q: i32,
    /// FBGEMM: the bias over s_in·s_w, in f32.
    bias_f: f32,
    multiplier: f32,
}

/// A quantized conv (as im2col rows) or linear layer.
#[derive(Clone, Debug)]
struct IntLayer {
    /// The inputs per output rounded up to whole vectors; the padding weights are 0.
    kp: usize,
    out: usize,
    /// `[out, kp]`, compute layout.
    w: Vec<i16>,
    rq: Vec<Requant>,
    zp_in: i32,
    zp_out: i32,
    /// 0, or zp_out with the fused ReLU.
    lo: i32,
}

/// The converted network.
#[derive(Clone, Debug)]
pub struct IntNet {
    preset: Preset,
    input: QParams,
    output: QParams,
    layers: Vec<IntLayer>,
}

/// Every site's integer output for a batch of digits, in compute layout (pixel-major, channels
/// inner): the input codes, conv1 and conv2 after their fused ReLU (before the pool), fc1, fc2.
#[derive(Clone, Debug, Default)]
pub struct Codes {
    pub sites: [Vec<u8>; 5],
}

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
        let layers = Layer::ALL
            .iter()
            .enumerate()
            .map(|(i, &layer)| {
                let q = &weights[i];
                let (s_in, s_out) = (act[i].scale, act[i + 1].scale);
                let kp = q.cols.div_ceil(LANES) * LANES;
                let mut w = vec![0i16; q.rows * kp];
                for (r, row) in q.codes.chunks(q.cols).enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        w[r * kp + c] = i16::from(v);
                    }
                }
                let bias = crate::ptq::bias(net, layer);
                let rq = (0..q.rows)
                    .map(|j| {
                        let s_w = q.channel(j).scale;
                        let b = bias[j];
                        match preset {
                            Preset::Qnnpack => {
                                let sw_in = s_w * s_in;
                                Requant {
                                    bias_q: (b * (1.0 / sw_in)).round_ties_even() as i32,
                                    bias_f: 0.0,
                                    multiplier: sw_in * (1.0 / s_out),
                                }
                            }
                            Preset::X86 => {
                                let atw = s_in * s_w;
                                Requant {
                                    bias_q: 0,
                                    bias_f: b / atw,
                                    multiplier: atw / s_out,
                                }
                            }
                        }
                    })
                    .collect();
                let zp_out = act[i + 1].zero_point;
                IntLayer {
                    kp,
                    out: q.rows,
                    w,
                    rq,
                    zp_in: act[i].zero_point,
                    zp_out,
                    lo: if layer == Layer::Fc2 { 0 } else { zp_out },
                }
            })
            .collect();
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
        let [l1, l2, l3, l4] = [
            &self.layers[0],
            &self.layers[1],
            &self.layers[2],
            &self.layers[3],
        ];
        let mut codes = Codes::default();
        let mut q0 = vec![0u8; SIDE * SIDE];
        let mut cols1 = vec![0i16; SIDE * SIDE * l1.kp];
        let mut a1 = vec![0u8; SIDE * SIDE * C1];
        let mut p1 = vec![0u8; SIDE2 * SIDE2 * C1];
        let mut cols2 = vec![0i16; SIDE2 * SIDE2 * l2.kp];
        let mut a2 = vec![0u8; SIDE2 * SIDE2 * C2];
        let mut p2 = vec![0u8; SIDE3 * SIDE3 * C2];
        // fc1's inputs for the whole batch: its 802 KB of weights are then read once per block
        // of output channels, not once per digit.
        let mut x3 = vec![0i16; n * l3.kp];
        let inv_scale = 1.0f32 / self.input.scale;
        for (d, image) in images.chunks_exact(crate::data::PIXELS).enumerate() {
            // QuantStub: clamp(z + round(x · (1/s)), 0, 255).
            for (q, &x) in q0.iter_mut().zip(image) {
                let v = self.input.zero_point + (x * inv_scale).round_ties_even() as i32;
                *q = v.clamp(0, 255) as u8;
            }
            im2col(&q0, SIDE, 1, l1.zp_in, l1.kp, &mut cols1);
            l1.forward(self.preset, &cols1, &mut a1);
            maxpool(&a1, SIDE, C1, &mut p1);
            im2col(&p1, SIDE2, C1, l2.zp_in, l2.kp, &mut cols2);
            l2.forward(self.preset, &cols2, &mut a2);
            maxpool(&a2, SIDE2, C2, &mut p2);
            for (x, &p) in x3[d * l3.kp..].iter_mut().zip(&p2) {
                *x = (i32::from(p) - l3.zp_in) as i16;
            }
            if keep {
                codes.sites[0].extend_from_slice(&q0);
                codes.sites[1].extend_from_slice(&a1);
                codes.sites[2].extend_from_slice(&a2);
            }
        }
        let mut h = vec![0u8; n * l3.out];
        l3.forward(self.preset, &x3, &mut h);
        let mut x4 = vec![0i16; n * l4.kp];
        for (d, row) in h.chunks_exact(l3.out).enumerate() {
            for (x, &v) in x4[d * l4.kp..].iter_mut().zip(row) {
                *x = (i32::from(v) - l4.zp_in) as i16;
            }
        }
        let mut out = vec![0u8; n * l4.out];
        l4.forward(self.preset, &x4, &mut out);
        if keep {
            codes.sites[3] = h;
        }
        codes.sites[4] = out;
        codes
    }
}

impl IntLayer {
    /// `rows` `[m, kp]` of centred inputs → `out` `[m, self.out]` codes.
    fn forward(&self, preset: Preset, rows: &[i16], out: &mut [u8]) {
        debug_assert_eq!(rows.len() % self.kp, 0);
        let m = rows.len() / self.kp;
        let requant = |acc: i32, j: usize| -> u8 {
            let r = self.rq[j];
            let raw = match preset {
                Preset::Qnnpack => acc.wrapping_add(r.bias_q) as f32 * r.multiplier,
                Preset::X86 => (acc as f32 + r.bias_f) * r.multiplier,
            };
            (round_half_even(raw) + self.zp_out).clamp(self.lo, 255) as u8
        };
        let row = |r: usize| &rows[r.min(m - 1) * self.kp..][..self.kp];
        // Register tiles of 2 rows × 4 output channels: each loaded vector feeds two or four
        // multiply-adds. The 4 channels' weights (≤ 25 KB for fc1) stay in L1 across the rows.
        for j0 in (0..self.out).step_by(4) {
            let w: [&[i16]; 4] = std::array::from_fn(|t| {
                let j = (j0 + t).min(self.out - 1);
                &self.w[j * self.kp..(j + 1) * self.kp]
            });
            for r in (0..m).step_by(2) {
                let acc = tile(row(r), row(r + 1), w);
                for (dr, sums) in acc.iter().enumerate().take(m - r) {
                    for (t, &a) in sums.iter().enumerate() {
                        let j = j0 + t;
                        if j < self.out {
                            out[(r + dr) * self.out + j] = requant(a, j);
                        }
                    }
                }
            }
        }
    }
}

/// `round(v)`, half to even, as an integer, for a requantized value: f32's own rounding of
/// `v + 1.5·2²³` is half to even, exact while |v| < 2²², and anything beyond is clamped to the
/// code range afterwards anyway. (`round_ties_even` is a libm call natively without SSE4.1.)
#[inline(always)]
fn round_half_even(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    let v = v.clamp(-4_194_304.0, 4_194_304.0);
    ((v + MAGIC) - MAGIC) as i32
}

/// 3×3, padding 1, stride 1 patches of `codes` (`[side, side, c]`), centred on `zp` so that the
/// padding contributes 0: rows `[side², kp]` ordered `(ky·3 + kx)·c + channel`.
fn im2col(codes: &[u8], side: usize, c: usize, zp: i32, kp: usize, cols: &mut [i16]) {
    cols.fill(0);
    for y in 0..side {
        for x in 0..side {
            let row = &mut cols[(y * side + x) * kp..];
            for ky in 0..3 {
                let sy = y as isize + ky as isize - 1;
                if sy < 0 || sy >= side as isize {
                    continue;
                }
                for kx in 0..3 {
                    let sx = x as isize + kx as isize - 1;
                    if sx < 0 || sx >= side as isize {
                        continue;
                    }
                    let src = &codes[(sy as usize * side + sx as usize) * c..][..c];
                    let dst = &mut row[(ky * 3 + kx) * c..][..c];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d = (i32::from(s) - zp) as i16;
                    }
                }
            }
        }
    }
}

/// 2×2 max-pool on the codes (quantized MaxPool2d keeps the input's scale and zero point).
fn maxpool(codes: &[u8], side: usize, c: usize, out: &mut [u8]) {
    let half = side / 2;
    for y in 0..half {
        for x in 0..half {
            let at = |yy: usize, xx: usize| &codes[(yy * side + xx) * c..][..c];
            let (a, b, e, f) = (
                at(2 * y, 2 * x),
                at(2 * y, 2 * x + 1),
                at(2 * y + 1, 2 * x),
                at(2 * y + 1, 2 * x + 1),
            );
            let o = &mut out[(y * half + x) * c..][..c];
            for i in 0..c {
                o[i] = a[i].max(b[i]).max(e[i]).max(f[i]);
            }
        }
    }
}

/// Eight i32 sums of products: rows `x0`, `x1` with channels `w[0..4]`, all one length, a
/// multiple of 8. Each step multiplies eight i16 pairs and adds neighbours into four i32 lanes
/// (`i32x4.dot_i16x8_s` in wasm, `pmaddwd` natively); sums are exact (wrapping, like PyTorch's
/// i32 accumulators, if they ever overflowed).
#[inline(always)]
fn tile(x0: &[i16], x1: &[i16], w: [&[i16]; 4]) -> [[i32; 4]; 2] {
    let len = x0.len();
    assert!(len.is_multiple_of(LANES) && x1.len() == len && w.iter().all(|r| r.len() == len));
    let mut a0 = [lanes::zero(); 4];
    let mut a1 = [lanes::zero(); 4];
    let mut c = 0;
    while c < len {
        // SAFETY: c + 8 ≤ len for every operand (asserted above); the loads are unaligned.
        unsafe {
            let v0 = lanes::load(x0.as_ptr().add(c));
            let v1 = lanes::load(x1.as_ptr().add(c));
            for t in 0..4 {
                let wv = lanes::load(w[t].as_ptr().add(c));
                a0[t] = lanes::madd(a0[t], v0, wv);
                a1[t] = lanes::madd(a1[t], v1, wv);
            }
        }
        c += LANES;
    }
    [a0.map(lanes::sum), a1.map(lanes::sum)]
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::*;
    pub type V = v128;
    pub fn zero() -> V {
        i32x4_splat(0)
    }
    /// # Safety
    /// `p` must point at 8 readable i16.
    pub unsafe fn load(p: *const i16) -> V {
        v128_load(p as *const v128)
    }
    pub fn madd(acc: V, x: V, w: V) -> V {
        i32x4_add(acc, i32x4_dot_i16x8(x, w))
    }
    pub fn sum(a: V) -> i32 {
        i32x4_extract_lane::<0>(a)
            .wrapping_add(i32x4_extract_lane::<1>(a))
            .wrapping_add(i32x4_extract_lane::<2>(a))
            .wrapping_add(i32x4_extract_lane::<3>(a))
    }
}

#[cfg(target_arch = "x86_64")]
mod lanes {
    use core::arch::x86_64::*;
    pub type V = __m128i;
    pub fn zero() -> V {
        // SAFETY: SSE2 is part of x86_64.
        unsafe { _mm_setzero_si128() }
    }
    /// # Safety
    /// `p` must point at 8 readable i16.
    pub unsafe fn load(p: *const i16) -> V {
        _mm_loadu_si128(p as *const __m128i)
    }
    pub fn madd(acc: V, x: V, w: V) -> V {
        // SAFETY: SSE2 is part of x86_64.
        unsafe { _mm_add_epi32(acc, _mm_madd_epi16(x, w)) }
    }
    pub fn sum(a: V) -> i32 {
        let mut v = [0i32; 4];
        // SAFETY: `v` holds 16 bytes.
        unsafe { _mm_storeu_si128(v.as_mut_ptr() as *mut __m128i, a) };
        v.iter().fold(0, |s, &x| s.wrapping_add(x))
    }
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
mod lanes {
    pub type V = [i32; 4];
    pub fn zero() -> V {
        [0; 4]
    }
    /// # Safety
    /// `p` must point at 8 readable i16.
    pub unsafe fn load(p: *const i16) -> [i16; 8] {
        std::ptr::read_unaligned(p as *const [i16; 8])
    }
    pub fn madd(mut acc: V, x: [i16; 8], w: [i16; 8]) -> V {
        for (i, a) in acc.iter_mut().enumerate() {
            let p = i32::from(x[2 * i]) * i32::from(w[2 * i])
                + i32::from(x[2 * i + 1]) * i32::from(w[2 * i + 1]);
            *a = a.wrapping_add(p);
        }
        acc
    }
    pub fn sum(a: V) -> i32 {
        a.iter().fold(0, |s, &x| s.wrapping_add(x))
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
