//! Four f32 lanes ([`F4`]) for the loops that run every step in the browser: evaluation
//! ([`crate::infer`]), training's matrix products and Winograd transforms ([`crate::gemm`],
//! [`crate::winograd`]), QAT's fake quantization and Adam. Each operation is lane-wise the IEEE
//! operation the scalar code does, so the two give the same bits.

/// Four f32 lanes, the unit the browser's hot loops compute in: a wasm SIMD128 register in the
/// browser (LLVM does not vectorise plain loops for wasm, and scalar code ran 3× slower there),
/// a plain array natively (which LLVM turns into SSE). Only the operations used.
#[derive(Clone, Copy)]
pub(crate) struct F4(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] core::arch::wasm32::v128,
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [f32; 4],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl F4 {
    #[inline(always)]
    pub(crate) fn splat(x: f32) -> F4 {
        F4(core::arch::wasm32::f32x4_splat(x))
    }
    #[inline(always)]
    pub(crate) fn load(s: &[f32]) -> F4 {
        let s = &s[..4];
        // SAFETY: `s` holds 4 f32 (checked above); v128 loads need no alignment in wasm.
        F4(unsafe { core::arch::wasm32::v128_load(s.as_ptr().cast()) })
    }
    #[inline(always)]
    pub(crate) fn store(self, s: &mut [f32]) {
        let s = &mut s[..4];
        // SAFETY: as in `load`.
        unsafe { core::arch::wasm32::v128_store(s.as_mut_ptr().cast(), self.0) }
    }
    /// Lane-wise [`larger`]: `pmax` is `a < b ? b : a`, the same for the finite sums here.
    #[inline(always)]
    pub(crate) fn larger(self, b: F4) -> F4 {
        F4(core::arch::wasm32::f32x4_pmax(self.0, b.0))
    }
    /// Lane-wise `b < a ? b : a` (`pmin`).
    #[inline(always)]
    pub(crate) fn smaller(self, b: F4) -> F4 {
        F4(core::arch::wasm32::f32x4_pmin(self.0, b.0))
    }
    /// Rounded to an integer, half to even (`f32x4.nearest`, IEEE's roundTiesToEven).
    #[inline(always)]
    pub(crate) fn nearest(self) -> F4 {
        F4(core::arch::wasm32::f32x4_nearest(self.0))
    }
    #[inline(always)]
    pub(crate) fn sqrt(self) -> F4 {
        F4(core::arch::wasm32::f32x4_sqrt(self.0))
    }
    /// 1 in the lanes where `lo ≤ self ≤ hi`, else 0.
    #[inline(always)]
    pub(crate) fn inside(self, lo: F4, hi: F4) -> F4 {
        use core::arch::wasm32::*;
        let within = v128_and(f32x4_ge(self.0, lo.0), f32x4_le(self.0, hi.0));
        F4(v128_and(within, f32x4_splat(1.0)))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod f4_ops {
    use super::F4;
    use core::arch::wasm32::*;
    macro_rules! lane_wise {
        ($trait:ident, $method:ident, $instruction:ident) => {
            impl core::ops::$trait for F4 {
                type Output = F4;
                #[inline(always)]
                fn $method(self, b: F4) -> F4 {
                    F4($instruction(self.0, b.0))
                }
            }
        };
    }
    lane_wise!(Add, add, f32x4_add);
    lane_wise!(Sub, sub, f32x4_sub);
    lane_wise!(Mul, mul, f32x4_mul);
    lane_wise!(Div, div, f32x4_div);
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl F4 {
    #[inline(always)]
    pub(crate) fn splat(x: f32) -> F4 {
        F4([x; 4])
    }
    #[inline(always)]
    pub(crate) fn load(s: &[f32]) -> F4 {
        F4(s[..4].try_into().expect("4 lanes"))
    }
    #[inline(always)]
    pub(crate) fn store(self, s: &mut [f32]) {
        s[..4].copy_from_slice(&self.0);
    }
    #[inline(always)]
    pub(crate) fn larger(self, b: F4) -> F4 {
        F4(std::array::from_fn(|i| larger(self.0[i], b.0[i])))
    }
    #[inline(always)]
    pub(crate) fn smaller(self, b: F4) -> F4 {
        F4(std::array::from_fn(|i| {
            if b.0[i] < self.0[i] {
                b.0[i]
            } else {
                self.0[i]
            }
        }))
    }
    #[inline(always)]
    pub(crate) fn nearest(self) -> F4 {
        F4(self.0.map(crate::quant::round_half_even))
    }
    #[inline(always)]
    pub(crate) fn sqrt(self) -> F4 {
        F4(self.0.map(f32::sqrt))
    }
    #[inline(always)]
    pub(crate) fn inside(self, lo: F4, hi: F4) -> F4 {
        F4(std::array::from_fn(|i| {
            f32::from(u8::from(lo.0[i] <= self.0[i] && self.0[i] <= hi.0[i]))
        }))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod f4_ops {
    use super::F4;
    macro_rules! lane_wise {
        ($trait:ident, $method:ident, $op:tt) => {
            impl core::ops::$trait for F4 {
                type Output = F4;
                #[inline(always)]
                fn $method(self, b: F4) -> F4 {
                    F4(std::array::from_fn(|i| self.0[i] $op b.0[i]))
                }
            }
        };
    }
    lane_wise!(Add, add, +);
    lane_wise!(Sub, sub, -);
    lane_wise!(Mul, mul, *);
    lane_wise!(Div, div, /);
}

/// The larger of two sums, or 0 for ReLU. Not `f32::max`: in wasm that is a call to `fmaxf`
/// (IEEE maxNum's NaN rule has no wasm instruction), which made pooling cost more than conv1's
/// multiplies. Written as wasm's `f32x4.pmax` is defined, `a < b ? b : a`, so that a NaN (from a
/// weight file that holds one) propagates the same way in the browser and natively.
#[inline(always)]
pub(crate) fn larger(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}
