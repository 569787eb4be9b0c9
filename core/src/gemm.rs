//! The matrix-product micro-kernel every product in the browser runs on: evaluation's
//! ([`crate::infer`]) and training's ([`matmul`]).
//!
//! The kernel, [`tile`], keeps `R` rows × 8 columns of sums `Σᵢ a[r][i] · b[i][j]` in `2R`
//! [`F4`] registers: each step loads 8 values of `b`'s row `i`, splats each `a[r][i]` and does
//! `2R` multiplies and adds. Nothing else happens in its loop, and in wasm that is what makes
//! it fast: matrixmultiply's generic simd128 kernel ran QAT's products (32 digits) in 11.5 ms in
//! Node's V8, this one in 7.2 ms (60 GFLOP/s on conv2's Winograd products).
//!
//! Natively, training keeps ndarray's products ([`product`]), which matrixmultiply runs with
//! AVX-512 and FMA, twice the width of these lanes.

use crate::lanes::F4;
use ndarray::{Array2, ArrayView2, CowArray, Ix2};

/// Columns per register tile: two f32x4 vectors.
pub(crate) const NR: usize = 8;
/// Rows per register tile.
pub(crate) const MR: usize = 4;
/// The inner dimension is taken this many steps at a time, so that the 8 columns of `b` a tile
/// reads (16 KB) stay in L1 while every row block of `a` uses them.
const KC: usize = 512;

/// `acc[r][j] += Σ_{i<k} a[r·ars + i·ais] · b[i·ldb + j]` for `R` rows and 8 columns.
#[inline(always)]
pub(crate) fn tile<const R: usize>(
    acc: &mut [[f32; NR]; R],
    k: usize,
    a: &[f32],
    (ars, ais): (usize, usize),
    b: &[f32],
    ldb: usize,
) {
    if k == 0 {
        return;
    }
    // Every index below is at most these, so the loop needs no bounds checks: with them it
    // ran 3× slower in wasm.
    assert!(
        (R - 1) * ars + (k - 1) * ais < a.len(),
        "a holds R rows of k"
    );
    assert!((k - 1) * ldb + NR <= b.len(), "b holds k rows of 8");
    let mut sums: [[F4; 2]; R] =
        std::array::from_fn(|r| [F4::load(&acc[r][..4]), F4::load(&acc[r][4..])]);
    for i in 0..k {
        // SAFETY: i < k and r < R, within the lengths asserted above.
        let (b0, b1) = unsafe {
            let row = b.get_unchecked(i * ldb..i * ldb + NR);
            (F4::load(&row[..4]), F4::load(&row[4..]))
        };
        for (r, sums) in sums.iter_mut().enumerate() {
            // SAFETY: as above.
            let s = F4::splat(unsafe { *a.get_unchecked(r * ars + i * ais) });
            sums[0] = sums[0] + s * b0;
            sums[1] = sums[1] + s * b1;
        }
    }
    for r in 0..R {
        sums[r][0].store(&mut acc[r][..4]);
        sums[r][1].store(&mut acc[r][4..]);
    }
}

/// `a · b` as training computes it here: [`matmul`] in wasm, ndarray's product natively.
pub(crate) fn product(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    if cfg!(target_arch = "wasm32") {
        matmul(a, b)
    } else {
        a.dot(&b)
    }
}

/// [`product`] into `out`, row-major, overwritten.
pub(crate) fn product_into(a: ArrayView2<f32>, b: ArrayView2<f32>, out: &mut [f32]) {
    if cfg!(target_arch = "wasm32") {
        matmul_into(a, b, out)
    } else {
        let out = ndarray::ArrayViewMut2::from_shape((a.nrows(), b.ncols()), out)
            .expect("out holds rows × cols");
        ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut { out });
    }
}

/// `a · b` on [`tile`], for operands of any layout (a transposed view included).
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let mut out = Array2::zeros((a.nrows(), b.ncols()));
    matmul_into(a, b, out.as_slice_mut().expect("new arrays are row-major"));
    out
}

/// Whether `b`'s rows can be read 8 columns at a time as they lie, without repacking.
fn direct(b: ArrayView2<f32>) -> bool {
    b.ncols().is_multiple_of(NR) && b.strides()[1] == 1
}

/// [`matmul`] into `out`, `[a.nrows(), b.ncols()]` row-major, overwritten (the first steps
/// of the inner dimension store their sums without reading `out`).
pub fn matmul_into(a: ArrayView2<f32>, b: ArrayView2<f32>, out: &mut [f32]) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert_eq!(b.nrows(), k, "inner dimensions agree");
    assert_eq!(out.len(), m * n, "out holds rows × cols");
    if k == 0 {
        out.fill(0.0);
    }
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // The kernel reads `b` by rows of 8 columns. Where `b` is not laid out that way it is
    // repacked, k·n copies; `(bᵀ · aᵀ)ᵀ` instead repacks `aᵀ` unless `a` is stored by columns
    // (m·k copies) and transposes the result (m·n). The cheaper way is taken: weight gradients
    // `xᵀ · dy` then need no copy, and fc1's `x · wᵀ` copies its input, not its weights.
    let cost = |b: ArrayView2<f32>| if direct(b) { 0 } else { b.len() };
    if cost(a.t()) + m * n < cost(b) {
        let mut t = vec![0.0; n * m];
        matmul_into(b.t(), a.t(), &mut t);
        for (r, row) in out.chunks_exact_mut(n).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = t[j * m + r];
            }
        }
        return;
    }
    let b = in_memory_order(b);
    // The 8-column panels of `b`: `b[i][j0..j0 + 8]` at `panels[(j0 / 8)·panel_step + i·ldb..]`.
    let packed;
    let (panels, ldb, panel_step): (&[f32], usize, usize) = if direct(b.view()) {
        let data = b.as_slice_memory_order().expect("in memory order");
        (data, if k > 1 { b.strides()[0] as usize } else { n }, NR)
    } else {
        packed = pack(b.view());
        (packed.as_flattened(), NR, k * NR)
    };
    let a = in_memory_order(a);
    // Element (r, i) of `a` at `r·ars + i·ais`.
    let a_data = a.as_slice_memory_order().expect("in memory order");
    let stride = |s: isize, len: usize| if len > 1 { s as usize } else { 0 };
    let (ars, ais) = (stride(a.strides()[0], m), stride(a.strides()[1], k));
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        for j0 in (0..n).step_by(NR) {
            let panel = &panels[(j0 / NR) * panel_step + k0 * ldb..];
            let block = Block {
                n,
                j0,
                width: NR.min(n - j0),
                k0,
                kc,
                a: (a_data, ars, ais),
                b: (&panel[..(kc - 1) * ldb + NR], ldb),
            };
            let mut r0 = 0;
            while r0 + MR <= m {
                block.rows::<MR>(out, r0);
                r0 += MR;
            }
            for r0 in r0..m {
                block.rows::<1>(out, r0);
            }
        }
    }
}

/// `b` (`[k, n]`, any layout) as the kernel reads it: `[n / 8][k][8]`, the last panel
/// zero-padded. Evaluation's weights are packed so once per network.
pub(crate) fn pack(b: ArrayView2<f32>) -> Vec<[f32; NR]> {
    let (k, n) = b.dim();
    let mut packed = vec![[0.0; NR]; n.div_ceil(NR) * k];
    for ((i, j), &v) in b.indexed_iter() {
        packed[(j / NR) * k + i][j % NR] = v;
    }
    packed
}

/// `v` as it lies when it is an array or an array's transpose, else copied into one: either
/// way element (r, c) is at `r·strides[0] + c·strides[1]` of its slice in memory order.
fn in_memory_order(v: ArrayView2<'_, f32>) -> CowArray<'_, f32, Ix2> {
    let laid_out = v.as_slice_memory_order().is_some() && v.strides().iter().all(|&s| s >= 0);
    if laid_out {
        CowArray::from(v)
    } else {
        CowArray::from(v.as_standard_layout().into_owned())
    }
}

/// One panel of the product: columns `j0..j0 + width` of `out` (`n` wide), from the inner
/// steps `k0..k0 + kc` of `a` (data and strides) and of `b`'s panel (data and row stride).
struct Block<'a> {
    n: usize,
    j0: usize,
    width: usize,
    k0: usize,
    kc: usize,
    a: (&'a [f32], usize, usize),
    b: (&'a [f32], usize),
}

impl Block<'_> {
    /// Rows `r0..r0 + R` of the panel: their sums so far (none before the first steps), the
    /// kernel, and back into `out` (the padding columns past `width` dropped).
    #[inline(always)]
    fn rows<const R: usize>(&self, out: &mut [f32], r0: usize) {
        let ((a, ars, ais), (b, ldb)) = (self.a, self.b);
        let mut acc = [[0.0; NR]; R];
        let at = |r: usize| (r0 + r) * self.n + self.j0;
        if self.k0 > 0 {
            for (r, sums) in acc.iter_mut().enumerate() {
                copy(&out[at(r)..], sums, self.width);
            }
        }
        tile(
            &mut acc,
            self.kc,
            &a[r0 * ars + self.k0 * ais..],
            (ars, ais),
            b,
            ldb,
        );
        for (r, sums) in acc.iter().enumerate() {
            copy(sums, &mut out[at(r)..], self.width);
        }
    }
}

/// The first `width` (at most 8) values of `from` into `to`.
#[inline(always)]
fn copy(from: &[f32], to: &mut [f32], width: usize) {
    if width == NR {
        // By lanes: a `copy_from_slice` of runtime length is a `memcpy` call in wasm.
        F4::load(&from[..4]).store(&mut to[..4]);
        F4::load(&from[4..]).store(&mut to[4..]);
    } else {
        to[..width].copy_from_slice(&from[..width]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use ndarray::s;

    fn random(rows: usize, cols: usize, rng: &mut Rng) -> Array2<f32> {
        Array2::from_shape_simple_fn((rows, cols), || rng.uniform(-1.0, 1.0))
    }

    /// Every layout training uses (plain, transposed, either operand), the shapes' remainders
    /// (rows not a multiple of 4, columns not of 8), an inner dimension over [`KC`], and the
    /// empty and one-element cases, against ndarray's product.
    #[test]
    fn matmul_equals_ndarrays_product_in_every_layout() {
        let mut rng = Rng::new(11);
        let shapes = [
            (1, 1, 1),
            (4, 9, 32),
            (7, 3, 13),
            (9, 600, 32),
            (10, 128, 32),
            (33, 1100, 17),
            (64, 5, 8),
            (0, 4, 8),
            (3, 0, 5),
        ];
        for (m, k, n) in shapes {
            let (a, at) = (random(m, k, &mut rng), random(k, m, &mut rng));
            let (b, bt) = (random(k, n, &mut rng), random(n, k, &mut rng));
            for (a, b) in [
                (a.view(), b.view()),
                (at.t(), b.view()),
                (a.view(), bt.t()),
                (at.t(), bt.t()),
            ] {
                let want = a.dot(&b);
                let got = matmul(a, b);
                assert_eq!(got.dim(), want.dim());
                for (g, w) in got.iter().zip(&want) {
                    // Sums of k products of values in [-1, 1], added in another order.
                    assert!((g - w).abs() <= 1e-6 * k as f32, "{m}×{k}×{n}: {g} vs {w}");
                }
            }
        }
        // A view that is neither an array nor its transpose is copied first, not misread.
        let big = random(12, 20, &mut rng);
        let (a, b) = (big.slice(s![1..6, 2..9]), big.slice(s![3..10, ..;2]));
        let want = a.dot(&b);
        for (g, w) in matmul(a, b).iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5, "{g} vs {w}");
        }
    }
}
