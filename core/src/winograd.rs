//! conv2 for training in the browser, by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016), forward and backward (natively,
//! training keeps im2col: see [`crate::model`]'s `Conv2`).
//!
//! conv2 is 86 % of a training step's multiplies as im2col computes it (3×3×32 products for
//! each of 64 outputs at each of 196 pixels, three times: forward, input gradient, weight
//! gradient). Winograd computes each 4×4 block of outputs from its 6×6 input patch `d` and the
//! 3×3 kernel `g` as
//!
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`
//!
//! so, with `U = G g Gᵀ` and `V = Bᵀ d B` (6×6 each), the sum over input channels is 36
//! independent matrix products `M_ξ = V_ξ · U_ξ` (one per position ξ of the 6×6), 36 multiplies
//! per 16 outputs where im2col takes 144. The 14×14 output takes 4×4 tiles of 4×4, the last row
//! and column of tiles half used: 16 tiles × 36 = 576 multiplies per channel pair and image,
//! against 784 for F(2×2, 3×3) over its 7×7 tiles and 1,764 for im2col. In wasm a 32-digit
//! part of QAT (Node's V8, one run) took 13.2–14.8 ms by F(2×2) and 11.8–11.9 ms by this.
//!
//! The backward pass is the adjoint of each linear step, so its gradients are those of the
//! function the forward pass computed: `dM_ξ = A dY Aᵀ`, then `dU_ξ = V_ξᵀ · dM_ξ` and
//! `dV_ξ = dM_ξ · U_ξᵀ`, `dg = Gᵀ dU G` and the patches' `dd = B dV Bᵀ`, added where the
//! patches overlap. With Lavin and Gray's matrices (interpolating at 0, ±1, ±2 and ∞, as
//! [`crate::infer`]'s forward pass does)
//!
//! ```text
//! Bᵀ = [4  0 −5  0  1  0]    G = [ 1/4     0     0 ]    Aᵀ = [1  1  1  1  1  0]
//!      [0 −4 −4  1  1  0]        [−1/6  −1/6  −1/6 ]         [0  1 −1  2 −2  0]
//!      [0  4 −4 −1  1  0]        [−1/6   1/6  −1/6 ]         [0  1  1  4  4  0]
//!      [0 −2 −1  2  1  0]        [1/24  1/12   1/6 ]         [0  1 −1  8 −8  1]
//!      [0  2 −1 −2  1  0]        [1/24 −1/12   1/6 ]
//!      [0  4  0 −5  0  1]        [   0     0     1 ]
//! ```
//!
//! each 2-D transform is its 1-D one along rows, then along columns. These add in another order
//! than im2col, and G's fractions round: the test holds the two to 2·10⁻⁵ of the result.

use crate::gemm::product_into;
use crate::lanes::F4;
use ndarray::{Array2, ArrayView2};
use std::ops::{Add, Sub};

/// A tile's outputs per side, and its input patch's side.
const OUT: usize = 4;
const PATCH: usize = OUT + 2;
/// Positions ξ of a tile in the Winograd domain: 6 × 6.
const XI: usize = PATCH * PATCH;

/// Floats from one ξ's matrix to the next in every `[36, rows, cols]` buffer: the matrix and 16
/// more. Without the 16, the 36 values of one tile that the transforms load or store lie a
/// multiple of 4 KB apart (n·16 tiles × 32 channels × 4 bytes = n·2 KB), all in one set of the
/// L1 cache, which has fewer ways than 36. (Under F(2×2) that made a 32-digit part 9 % slower.)
fn plane(rows: usize, cols: usize) -> usize {
    rows * cols + 16
}

/// Conv2's tiles for `n` images: 4 × 4 each.
pub(crate) fn tiles(n: usize) -> usize {
    n * TILES * TILES
}
/// The feature map's side (conv2's input and output, 14) and tiles per side (4, covering 16).
const SIDE: usize = 14;
const TILES: usize = SIDE.div_ceil(OUT);

/// What the transforms compute on: one f32 (the kernels), or four channels at once
/// ([`F4`]: wasm SIMD128 in the browser, where LLVM leaves plain loops scalar).
pub(crate) trait Lane: Copy + Add<Output = Self> + Sub<Output = Self> {
    /// `k · self`.
    fn times(self, k: f32) -> Self;
}

impl Lane for f32 {
    #[inline(always)]
    fn times(self, k: f32) -> f32 {
        k * self
    }
}

impl Lane for F4 {
    #[inline(always)]
    fn times(self, k: f32) -> F4 {
        F4::splat(k) * self
    }
}

/// `Bᵀ d` of a patch's row or column.
#[inline(always)]
pub(crate) fn bt_1d<T: Lane>(d: [T; 6]) -> [T; 6] {
    let (d12, d34) = (d[1] + d[2], d[3] + d[4]);
    let (e12, e34) = (d[1] - d[2], d[4] - d[3]);
    let (d42, d31) = (d[4] - d[2], d[3] - d[1]);
    [
        d[0].times(4.0) - d[2].times(5.0) + d[4],
        d34 - d12.times(4.0),
        e34 + e12.times(4.0),
        d42 + d31.times(2.0),
        d42 - d31.times(2.0),
        d[1].times(4.0) - d[3].times(5.0) + d[5],
    ]
}

/// `B y`: the adjoint of [`bt_1d`].
#[inline(always)]
fn b_1d<T: Lane>(y: [T; 6]) -> [T; 6] {
    let (s12, d21) = (y[1] + y[2], y[2] - y[1]);
    let (s34, d34) = (y[3] + y[4], y[3] - y[4]);
    [
        y[0].times(4.0),
        (d21 + y[5]).times(4.0) - d34.times(2.0),
        y[0].times(-5.0) - s12.times(4.0) - s34,
        d34.times(2.0) - d21 - y[5].times(5.0),
        y[0] + s12 + s34,
        y[5],
    ]
}

/// `G g` of a kernel's row or column.
#[inline(always)]
fn g_1d(g: [f32; 3]) -> [f32; 6] {
    let [a, b, c] = g;
    [
        a / 4.0,
        -(a + b + c) / 6.0,
        -(a - b + c) / 6.0,
        a / 24.0 + b / 12.0 + c / 6.0,
        a / 24.0 - b / 12.0 + c / 6.0,
        c,
    ]
}

/// `Gᵀ u`: the adjoint of [`g_1d`].
#[inline(always)]
fn gt_1d(u: [f32; 6]) -> [f32; 3] {
    let (s12, s34) = (u[1] + u[2], u[3] + u[4]);
    [
        u[0] / 4.0 - s12 / 6.0 + s34 / 24.0,
        (u[2] - u[1]) / 6.0 + (u[3] - u[4]) / 12.0,
        (s34 - s12) / 6.0 + u[5],
    ]
}

/// `Aᵀ m`: a row or column of products to four outputs.
#[inline(always)]
pub(crate) fn at_1d<T: Lane>(m: [T; 6]) -> [T; 4] {
    let (s12, d12) = (m[1] + m[2], m[1] - m[2]);
    let (s34, d34) = (m[3] + m[4], m[3] - m[4]);
    [
        m[0] + s12 + s34,
        d12 + d34.times(2.0),
        s12 + s34.times(4.0),
        d12 + d34.times(8.0) + m[5],
    ]
}

/// `A y`: the adjoint of [`at_1d`].
#[inline(always)]
fn a_1d<T: Lane>(y: [T; 4]) -> [T; 6] {
    let (s02, s13) = (y[0] + y[2], y[1] + y[3]);
    let (f02, f13) = (y[0] + y[2].times(4.0), y[1].times(2.0) + y[3].times(8.0));
    [y[0], s02 + s13, s02 - s13, f02 + f13, f02 - f13, y[3]]
}

/// `[f(0), …, f(N − 1)]`, by a loop: `std::array::from_fn` of these arrays stayed one call per
/// element in wasm, 8 % of a 32-digit part.
#[inline(always)]
fn line<T: Copy, const N: usize>(f: impl Fn(usize) -> T) -> [T; N] {
    let mut a = [f(0); N];
    for (i, v) in a.iter_mut().enumerate().skip(1) {
        *v = f(i);
    }
    a
}

/// `[[f(i, j); C]; R]`, by loops (see [`line`]).
#[inline(always)]
fn grid<T: Copy, const R: usize, const C: usize>(f: impl Fn(usize, usize) -> T) -> [[T; C]; R] {
    let mut a = [[f(0, 0); C]; R];
    for (i, row) in a.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = f(i, j);
        }
    }
    a
}

/// A 1-D transform applied to the rows of an `R`×`C` block, then to the columns of the result.
#[inline(always)]
fn both<T: Lane, const R: usize, const C: usize, const R2: usize, const C2: usize>(
    x: [[T; C]; R],
    rows: impl Fn([T; C]) -> [T; C2],
    cols: impl Fn([T; R]) -> [T; R2],
) -> [[T; C2]; R2] {
    let t: [[T; C2]; R] = line(|i| rows(x[i]));
    let cols: [[T; R2]; C2] = line(|j| cols(line(|i| t[i][j])));
    grid(|i, j| cols[j][i])
}

/// `U = G g Gᵀ` of every (input, output) channel pair: `[36, c_in, c_out]` from conv2's weight
/// in compute layout, `[c_out, (ky·3 + kx)·c_in + c_in']`.
pub(crate) fn kernels(w: ArrayView2<f32>, c_in: usize) -> Vec<f32> {
    let c_out = w.nrows();
    let mut u = vec![0.0f32; XI * plane(c_in, c_out)];
    for (o, row) in w.outer_iter().enumerate() {
        for i in 0..c_in {
            let k: [[f32; 3]; 3] = grid(|ky, kx| row[(ky * 3 + kx) * c_in + i]);
            let t = both(k, g_1d, g_1d);
            for (xi, v) in t.iter().flatten().enumerate() {
                u[xi * plane(c_in, c_out) + i * c_out + o] = *v;
            }
        }
    }
    u
}

/// `dg = Gᵀ dU G`: the weight's gradient in compute layout from `dU` (`[36, c_in, c_out]`).
pub(crate) fn kernels_adjoint(du: &[f32], c_in: usize, c_out: usize) -> Array2<f32> {
    let mut w = Array2::zeros((c_out, 9 * c_in));
    for (o, mut row) in w.outer_iter_mut().enumerate() {
        for i in 0..c_in {
            let t: [[f32; PATCH]; PATCH] =
                grid(|a, b| du[(a * PATCH + b) * plane(c_in, c_out) + i * c_out + o]);
            let k = both(t, gt_1d, gt_1d);
            for (ky, r) in k.iter().enumerate() {
                for (kx, v) in r.iter().enumerate() {
                    row[(ky * 3 + kx) * c_in + i] = *v;
                }
            }
        }
    }
    w
}

/// The flat NHWC offset of pixel (y, x) of image `b` on the 14×14 map, or `None` in the
/// padding: a tile's patch starts one pixel above and left of its outputs.
#[inline(always)]
fn pixel(b: usize, ty: usize, tx: usize, i: usize, j: usize) -> Option<usize> {
    let (y, x) = (
        (OUT * ty + i).wrapping_sub(1),
        (OUT * tx + j).wrapping_sub(1),
    );
    (y < SIDE && x < SIDE).then(|| (b * SIDE + y) * SIDE + x)
}

/// Tile `t`'s image and its row and column of tiles.
#[inline(always)]
fn tile(t: usize) -> (usize, usize, usize) {
    (t / (TILES * TILES), (t / TILES) % TILES, t % TILES)
}

/// The flat NHWC offset of output (4·ty + i, 4·tx + j) of image `b`, or `None` past the map
/// (the last tiles' second halves).
#[inline(always)]
fn output(b: usize, ty: usize, tx: usize, i: usize, j: usize) -> Option<usize> {
    let (y, x) = (OUT * ty + i, OUT * tx + j);
    (y < SIDE && x < SIDE).then(|| (b * SIDE + y) * SIDE + x)
}

/// Tile `t`'s 36 positions ξ, channels `c0..c0 + 4`, of a `[36, tiles, c]` buffer.
#[inline(always)]
fn load_tile(buf: &[f32], t: usize, tiles: usize, c: usize, c0: usize) -> [[F4; PATCH]; PATCH] {
    grid(|a, b| F4::load(&buf[(a * PATCH + b) * plane(tiles, c) + t * c + c0..]))
}

/// Stores what [`load_tile`] reads.
#[inline(always)]
fn store_tile(
    x: [[F4; PATCH]; PATCH],
    buf: &mut [f32],
    t: usize,
    tiles: usize,
    c: usize,
    c0: usize,
) {
    for (xi, v) in x.iter().flatten().enumerate() {
        v.store(&mut buf[xi * plane(tiles, c) + t * c + c0..]);
    }
}

/// `V = Bᵀ d B` of every tile's 6×6 patch of the NHWC input `[n, 14, 14, c]`, zero-padded:
/// `[36, n·16, c]`, so each `V_ξ` is a `[tiles, c]` matrix.
pub(crate) fn patches(input: &[f32], n: usize, c: usize) -> Vec<f32> {
    assert_eq!(c % 4, 0, "channels in lanes of four");
    let tiles = tiles(n);
    let mut v = vec![0.0f32; XI * plane(tiles, c)];
    let zero = vec![0.0f32; c];
    for t in 0..tiles {
        let (b, ty, tx) = tile(t);
        let src: [[&[f32]; PATCH]; PATCH] =
            grid(|i, j| pixel(b, ty, tx, i, j).map_or(&zero[..], |p| &input[p * c..][..c]));
        for c0 in (0..c).step_by(4) {
            let d = grid(|i, j| F4::load(&src[i][j][c0..]));
            store_tile(both(d, bt_1d, bt_1d), &mut v, t, tiles, c, c0);
        }
    }
    v
}

/// `dd = B dV Bᵀ` of every tile, added onto the NHWC input's gradient `[n, 14, 14, c]` where
/// the patches overlap (the padding's share is dropped).
pub(crate) fn patches_adjoint(dv: &[f32], n: usize, c: usize) -> Vec<f32> {
    let tiles = tiles(n);
    let mut grad = vec![0.0f32; n * SIDE * SIDE * c];
    for t in 0..tiles {
        let (b, ty, tx) = tile(t);
        for c0 in (0..c).step_by(4) {
            let d = both(load_tile(dv, t, tiles, c, c0), b_1d, b_1d);
            for (i, row) in d.iter().enumerate() {
                for (j, &g) in row.iter().enumerate() {
                    if let Some(p) = pixel(b, ty, tx, i, j) {
                        let at = &mut grad[p * c + c0..];
                        (F4::load(at) + g).store(at);
                    }
                }
            }
        }
    }
    grad
}

/// `Y = Aᵀ M A + bias`, then ReLU, of every tile's products `m` (`[36, n·16, c]`): the NHWC
/// output as rows `[n·196, c]`.
pub(crate) fn outputs_relu(m: &[f32], n: usize, bias: &[f32]) -> Array2<f32> {
    let c = bias.len();
    let tiles = tiles(n);
    let mut y = Array2::zeros((n * SIDE * SIDE, c));
    let out = y.as_slice_mut().expect("standard layout");
    for t in 0..tiles {
        let (b, ty, tx) = tile(t);
        for c0 in (0..c).step_by(4) {
            let bias = F4::load(&bias[c0..]);
            let y = both(load_tile(m, t, tiles, c, c0), at_1d, at_1d);
            for (i, row) in y.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let Some(p) = output(b, ty, tx, i, j) else {
                        continue;
                    };
                    (v + bias)
                        .larger(F4::splat(0.0))
                        .store(&mut out[p * c + c0..]);
                }
            }
        }
    }
    y
}

/// `dM = A dY Aᵀ` of every tile, from the output's gradient as rows `[n·196, c]` (zero past
/// the map): `[36, n·16, c]`.
pub(crate) fn outputs_adjoint(dy: &[f32], n: usize, c: usize) -> Vec<f32> {
    let tiles = tiles(n);
    let mut dm = vec![0.0f32; XI * plane(tiles, c)];
    for t in 0..tiles {
        let (b, ty, tx) = tile(t);
        for c0 in (0..c).step_by(4) {
            let y: [[F4; OUT]; OUT] = grid(|i, j| {
                output(b, ty, tx, i, j).map_or(F4::splat(0.0), |p| F4::load(&dy[p * c + c0..]))
            });
            store_tile(both(y, a_1d, a_1d), &mut dm, t, tiles, c, c0);
        }
    }
    dm
}

/// `s` as an `[r, c]` matrix, read from `[c, r]` storage if `transposed`.
fn view(s: &[f32], r: usize, c: usize, transposed: bool) -> ArrayView2<'_, f32> {
    let v = if transposed {
        ArrayView2::from_shape((c, r), s).map(|v| v.reversed_axes())
    } else {
        ArrayView2::from_shape((r, c), s)
    };
    v.expect("36 matrices of the stated shape")
}

/// The 36 products `out_ξ = lhs_ξ · rhs_ξ`, with each operand taken transposed where asked:
/// `lhs` holds 36 `[rows, inner]` matrices (or `[inner, rows]` if `lhs_t`), `rhs` 36
/// `[inner, cols]` (or `[cols, inner]` if `rhs_t`).
pub(crate) fn products(
    lhs: &[f32],
    (rows, inner, lhs_t): (usize, usize, bool),
    rhs: &[f32],
    (cols, rhs_t): (usize, bool),
) -> Vec<f32> {
    let os = plane(rows, cols);
    let mut out = vec![0.0f32; XI * os];
    let (ls, rs) = (plane(rows, inner), plane(inner, cols));
    for xi in 0..XI {
        let l = view(&lhs[xi * ls..][..rows * inner], rows, inner, lhs_t);
        let r = view(&rhs[xi * rs..][..inner * cols], inner, cols, rhs_t);
        product_into(l, r, &mut out[xi * os..][..rows * cols]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const C_IN: usize = 8;
    const C_OUT: usize = 12;
    const N: usize = 2;

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
    }

    /// The input pixel under kernel tap (ky, kx) of output (y, x), or 0 in the padding.
    fn tap(input: &[f32], b: usize, y: usize, x: usize, ky: usize, kx: usize, i: usize) -> f32 {
        let (iy, ix) = ((y + ky).wrapping_sub(1), (x + kx).wrapping_sub(1));
        if iy < SIDE && ix < SIDE {
            input[((b * SIDE + iy) * SIDE + ix) * C_IN + i]
        } else {
            0.0
        }
    }

    fn pixels() -> impl Iterator<Item = (usize, usize, usize)> {
        (0..N).flat_map(|b| (0..SIDE).flat_map(move |y| (0..SIDE).map(move |x| (b, y, x))))
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 2e-5 * (1.0 + b.abs())
    }

    #[test]
    fn forward_and_both_gradients_are_the_convolution_s_by_its_definition() {
        let mut rng = Rng::new(7);
        let input = random(N * SIDE * SIDE * C_IN, &mut rng);
        let w =
            Array2::from_shape_vec((C_OUT, 9 * C_IN), random(C_OUT * 9 * C_IN, &mut rng)).unwrap();
        let bias = random(C_OUT, &mut rng);
        let dy = random(N * SIDE * SIDE * C_OUT, &mut rng);
        let tiles = N * TILES * TILES;

        let v = patches(&input, N, C_IN);
        let u = kernels(w.view(), C_IN);
        let m = products(&v, (tiles, C_IN, false), &u, (C_OUT, false));
        let y = outputs_relu(&m, N, &bias);
        let dm = outputs_adjoint(&dy, N, C_OUT);
        let dw = kernels_adjoint(
            &products(&v, (C_IN, tiles, true), &dm, (C_OUT, false)),
            C_IN,
            C_OUT,
        );
        let dx = patches_adjoint(
            &products(&dm, (tiles, C_OUT, false), &u, (C_IN, true)),
            N,
            C_IN,
        );

        // y = relu(Σ_{ky,kx,i} x[y+ky−1, x+kx−1, i] · w[o, (ky·3+kx)·C_IN + i] + bias[o])
        let mut dw_def = vec![0.0f32; C_OUT * 9 * C_IN];
        let mut dx_def = vec![0.0f32; input.len()];
        for (p, (b, py, px)) in pixels().enumerate() {
            for o in 0..C_OUT {
                let mut sum = bias[o];
                let g = dy[p * C_OUT + o];
                for (ky, kx, i) in (0..3)
                    .flat_map(|ky| (0..3).flat_map(move |kx| (0..C_IN).map(move |i| (ky, kx, i))))
                {
                    let k = (ky * 3 + kx) * C_IN + i;
                    sum += tap(&input, b, py, px, ky, kx, i) * w[[o, k]];
                    // ∂/∂w of Σ dy·(pre-ReLU y), and ∂/∂x, which the adjoints compute (the
                    // ReLU's own backward is the model's, not this module's).
                    dw_def[o * 9 * C_IN + k] += g * tap(&input, b, py, px, ky, kx, i);
                    let (iy, ix) = ((py + ky).wrapping_sub(1), (px + kx).wrapping_sub(1));
                    if iy < SIDE && ix < SIDE {
                        dx_def[((b * SIDE + iy) * SIDE + ix) * C_IN + i] += g * w[[o, k]];
                    }
                }
                let got = y[[p, o]];
                assert!(
                    close(got, sum.max(0.0)),
                    "y at pixel {p}, channel {o}: {got} vs {}",
                    sum.max(0.0)
                );
            }
        }
        for (k, (a, b)) in dw.iter().zip(&dw_def).enumerate() {
            assert!(close(*a, *b), "dw[{k}]: {a} vs {b}");
        }
        for (k, (a, b)) in dx.iter().zip(&dx_def).enumerate() {
            assert!(close(*a, *b), "dx[{k}]: {a} vs {b}");
        }
    }
}
