//! Number formats beyond the integer grid: what a stored weight can be, each computed as its
//! reference implementation computes it (the goldens in core/tests/goldens/formats.json come from
//! PyTorch 2.15, bitsandbytes, ggml's formats in the `gguf` package and torchao; see
//! scripts/format_goldens.py).
//!
//! - **Floats** (FP16, BF16, FP8 E4M3FN and E5M2): every weight is rounded on its own to the
//!   nearest value of the format, ties to even, subnormals included (PyTorch's `.to(dtype)`).
//! - **Block formats**: consecutive weights, in PyTorch's row-major order over the whole tensor,
//!   share one scale. bitsandbytes flattens the tensor the same way; ggml and the MX kernels
//!   quantize rows, which our rows of 9 (conv1) are not a whole number of blocks of: there the
//!   blocks run across rows, as if the tensor were one long row. A tensor whose length a block
//!   does not divide ends with a shorter block (NF4 on conv1: 4 × 64 + 32).
//!   - NF4 (QLoRA): `x·(1/absmax)` to the nearest of 16 normal quantiles, f32 absmax per 64.
//!   - Q4_0, Q5_0, Q8_0, Q4_1 (llama.cpp): `d` from the block's extreme, stored as f16.
//!   - MXFP8/6/4 (OCP microscaling): a power-of-two (E8M0) scale per 32, FP8/FP6/FP4 elements.
//!   - NVFP4: FP4 E2M1 elements, an E4M3 scale per 16 and an f32 scale for the tensor.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A weight format. `Int` is the integer grid the rest of the recipe describes (bits, scheme,
/// granularity, rounding, range); every other format decides its grid itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Format {
    #[default]
    Int,
    /// Not quantized: the layer keeps its FP32 weights (a per-layer choice, as real deployments
    /// keep the first or last layer in full precision; and the "others FP32" of a sensitivity
    /// study). Not in [`Format::ALL`]: it is no format to compare in the gallery.
    Fp32,
    Fp16,
    Bf16,
    Fp8E4m3,
    Fp8E5m2,
    Nf4,
    Q4_0,
    Q4_1,
    Q5_0,
    Q8_0,
    MxFp8,
    MxFp6E2m3,
    MxFp6E3m2,
    MxFp4,
    NvFp4,
    /// torchao's `Int4WeightOnlyConfig` (its tinygemm choice of qparams): groups of 32, 64 or
    /// 128 along a Linear layer's rows, asymmetric with a float zero point. torchao leaves a
    /// layer whose rows the group does not divide (and every convolution) in its own dtype.
    Int4G32,
    Int4G64,
    Int4G128,
}

impl Format {
    /// Every format, in the order a picker lists them.
    pub const ALL: [Format; 18] = [
        Format::Int,
        Format::Fp16,
        Format::Bf16,
        Format::Fp8E4m3,
        Format::Fp8E5m2,
        Format::MxFp8,
        Format::MxFp6E2m3,
        Format::MxFp6E3m2,
        Format::Q8_0,
        Format::Q5_0,
        Format::Q4_1,
        Format::Q4_0,
        Format::Nf4,
        Format::NvFp4,
        Format::MxFp4,
        Format::Int4G32,
        Format::Int4G64,
        Format::Int4G128,
    ];

    /// The text form (the recipe's `dtype=`, the CLI's `--dtype`).
    pub fn key(self) -> &'static str {
        match self {
            Format::Int => "int",
            Format::Fp32 => "fp32",
            Format::Fp16 => "fp16",
            Format::Bf16 => "bf16",
            Format::Fp8E4m3 => "fp8_e4m3",
            Format::Fp8E5m2 => "fp8_e5m2",
            Format::Nf4 => "nf4",
            Format::Q4_0 => "q4_0",
            Format::Q4_1 => "q4_1",
            Format::Q5_0 => "q5_0",
            Format::Q8_0 => "q8_0",
            Format::MxFp8 => "mxfp8",
            Format::MxFp6E2m3 => "mxfp6_e2m3",
            Format::MxFp6E3m2 => "mxfp6_e3m2",
            Format::MxFp4 => "mxfp4",
            Format::NvFp4 => "nvfp4",
            Format::Int4G32 => "int4_g32",
            Format::Int4G64 => "int4_g64",
            Format::Int4G128 => "int4_g128",
        }
    }

    /// The name a reader knows it by.
    pub fn label(self) -> &'static str {
        match self {
            Format::Int => "INT",
            Format::Fp32 => "FP32",
            Format::Fp16 => "FP16",
            Format::Bf16 => "BF16",
            Format::Fp8E4m3 => "FP8 E4M3",
            Format::Fp8E5m2 => "FP8 E5M2",
            Format::Nf4 => "NF4",
            Format::Q4_0 => "Q4_0",
            Format::Q4_1 => "Q4_1",
            Format::Q5_0 => "Q5_0",
            Format::Q8_0 => "Q8_0",
            Format::MxFp8 => "MXFP8",
            Format::MxFp6E2m3 => "MXFP6 E2M3",
            Format::MxFp6E3m2 => "MXFP6 E3M2",
            Format::MxFp4 => "MXFP4",
            Format::NvFp4 => "NVFP4",
            Format::Int4G32 => "torchao INT4 g32",
            Format::Int4G64 => "torchao INT4 g64",
            Format::Int4G128 => "torchao INT4 g128",
        }
    }

    /// Weights that share one scale, for the block formats.
    pub fn block_size(self) -> Option<usize> {
        match self {
            Format::Nf4 => Some(64),
            Format::Q4_0 | Format::Q4_1 | Format::Q5_0 | Format::Q8_0 => Some(32),
            Format::MxFp8 | Format::MxFp6E2m3 | Format::MxFp6E3m2 | Format::MxFp4 => Some(32),
            Format::NvFp4 => Some(16),
            Format::Int4G32 => Some(32),
            Format::Int4G64 => Some(64),
            Format::Int4G128 => Some(128),
            _ => None,
        }
    }

    /// Whether this format stores a weight of `shape` at all. torchao's INT4 quantizes Linear
    /// weights (`[out, in]`) whose rows its group divides, and leaves every other weight as it
    /// is (FP32 here); every other format takes any tensor.
    pub fn applies_to(self, shape: &[usize]) -> bool {
        match self {
            Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => {
                let g = self.block_size().expect("a group size");
                shape.len() == 2 && shape[1].is_multiple_of(g)
            }
            _ => true,
        }
    }

    /// Bits of one element, without its block's scale.
    fn element_bits(self) -> u64 {
        match self {
            Format::Int => 0,
            Format::Fp32 => 32,
            Format::Fp16 | Format::Bf16 => 16,
            Format::Fp8E4m3 | Format::Fp8E5m2 | Format::Q8_0 | Format::MxFp8 => 8,
            Format::MxFp6E2m3 | Format::MxFp6E3m2 => 6,
            Format::Q5_0 => 5,
            Format::Nf4 | Format::Q4_0 | Format::Q4_1 | Format::MxFp4 | Format::NvFp4 => 4,
            Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => 4,
        }
    }

    /// Bits of one block's scales: NF4's f32 absmax; ggml's f16 d (and Q4_1's f16 min); MX's
    /// E8M0 exponent; NVFP4's E4M3 scale; torchao INT4's scale and zero point in the weight's
    /// dtype (f32 here).
    fn scale_bits(self) -> u64 {
        match self {
            Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => 64,
            Format::Nf4 | Format::Q4_1 => 32,
            Format::Q4_0 | Format::Q5_0 | Format::Q8_0 => 16,
            Format::MxFp8 | Format::MxFp6E2m3 | Format::MxFp6E3m2 | Format::MxFp4 => 8,
            Format::NvFp4 => 8,
            _ => 0,
        }
    }

    /// Bits that a weight of `shape` takes in this format, scales counted (a shorter last block
    /// has a scale of its own; NVFP4 adds its f32 tensor scale; a weight the format leaves
    /// alone stays FP32). `None` for `Int`, whose size depends on the rest of the recipe.
    pub fn storage_bits(self, shape: &[usize]) -> Option<u64> {
        let n: usize = shape.iter().product();
        if self == Format::Int {
            return None;
        }
        if !self.applies_to(shape) {
            return Some(32 * n as u64);
        }
        let blocks = self.block_size().map_or(0, |b| n.div_ceil(b)) as u64;
        let tensor = if self == Format::NvFp4 { 32 } else { 0 };
        Some(self.element_bits() * n as u64 + self.scale_bits() * blocks + tensor)
    }

    /// Bits per weight with the scales counted, for a long tensor (Q4_0: 4.5).
    pub fn bits_per_weight(self) -> Option<f64> {
        let shape = [1 << 10, 1 << 10];
        self.storage_bits(&shape)
            .map(|b| b as f64 / (1 << 20) as f64)
    }

    /// `w` (a whole tensor of `shape`, flat in PyTorch's order) stored in this format and read
    /// back as f32. Errors name the first value that is not finite; `Int` is the quantizer's,
    /// not this.
    pub fn fake_quantize(self, w: &[f32], shape: &[usize]) -> Result<Vec<f32>> {
        if self == Format::Int {
            return Err(Error::Recipe(
                "the integer format is the quantizer's (bits, scheme, granularity)".into(),
            ));
        }
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return Err(Error::Recipe(format!(
                "weight {i} is {}: {} needs finite weights",
                w[i],
                self.label()
            )));
        }
        let mut out = w.to_vec();
        self.fake_quantize_in_place(&mut out, shape);
        Ok(out)
    }

    /// [`Format::fake_quantize`] in place, unchecked: a value that is not finite spreads through
    /// its block as it would in the reference code. `Int`, and a format that does not apply to
    /// `shape`, leave `w` as it is.
    pub fn fake_quantize_in_place(self, w: &mut [f32], shape: &[usize]) {
        if !self.applies_to(shape) || self == Format::Fp32 {
            return;
        }
        match self.block_size() {
            None => w
                .iter_mut()
                .for_each(|x| *x = self.encode(*x, &BlockScale::UNIT)),
            Some(b) => {
                let t = self.tensor_scale(w);
                for block in w.chunks_mut(b) {
                    let scale = self.scale(block, block.len() == b, t);
                    block.iter_mut().for_each(|x| *x = self.encode(*x, &scale));
                }
            }
        }
    }

    /// NVFP4's second level, one f32 scale for the whole tensor: `t = amax / (448 · 6)`
    /// (torchao's `per_tensor_amax_to_scale`); 0 for every other format, which needs no pass
    /// over the tensor for it.
    fn tensor_scale(self, w: &[f32]) -> f32 {
        if self == Format::NvFp4 {
            absmax(w) / (448.0 * 6.0)
        } else {
            0.0
        }
    }

    /// The smallest and largest magnitude of the stored scale over the blocks of `w` (a weight
    /// of `shape`); `None` where the format has no blocks for it. Magnitudes: ggml's d carries
    /// the sign of its block's extreme.
    pub fn scale_spread(self, w: &[f32], shape: &[usize]) -> Option<(f32, f32)> {
        let b = self.block_size().filter(|_| self.applies_to(shape))?;
        let t = self.tensor_scale(w);
        Some(
            w.chunks(b)
                .map(|c| self.scale(c, c.len() == b, t).scale.abs())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, z), s| {
                    (a.min(s), z.max(s))
                }),
        )
    }

    /// Every finite value of a float format without blocks (FP16, FP8), ascending; `None` for
    /// the others (BF16's 65,000 values are no grid to draw, and a block format's grid is its
    /// block's: [`Format::block`]).
    pub fn float_values(self) -> Option<Vec<f32>> {
        match self {
            Format::Fp16 | Format::Fp8E4m3 | Format::Fp8E5m2 => {
                self.element().map(MiniFloat::values)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        let s = match s.as_str() {
            "e4m3" | "fp8" | "float8_e4m3fn" | "fp8_e4m3fn" => "fp8_e4m3",
            "e5m2" | "float8_e5m2" => "fp8_e5m2",
            "half" | "float16" => "fp16",
            "bfloat16" => "bf16",
            "integer" => "int",
            "float32" | "f32" | "none" => "fp32",
            other => other,
        };
        Format::ALL
            .into_iter()
            .chain([Format::Fp32])
            .find(|f| f.key() == s)
            .ok_or_else(|| {
                Error::Recipe(format!(
                    "unknown dtype {s:?}: use {} or fp32",
                    Format::ALL.map(Format::key).join(", ")
                ))
            })
    }
}

/// A small float format: `ebits` exponent bits with `bias`, `mbits` mantissa bits, subnormals,
/// and what becomes of a value past its largest finite one.
#[derive(Clone, Copy, Debug)]
struct MiniFloat {
    mbits: i32,
    bias: i32,
    max: f32,
    overflow: Overflow,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Overflow {
    /// IEEE: what rounds past the largest finite value becomes ±inf (FP16, E5M2).
    Infinity,
    /// Clamped to ±max (E4M3FN in PyTorch 2.15, and the MX element casts).
    Saturate,
}

const FP16: MiniFloat = MiniFloat {
    mbits: 10,
    bias: 15,
    max: 65504.0,
    overflow: Overflow::Infinity,
};
const E4M3: MiniFloat = MiniFloat {
    mbits: 3,
    bias: 7,
    max: 448.0,
    overflow: Overflow::Saturate,
};
const E5M2: MiniFloat = MiniFloat {
    mbits: 2,
    bias: 15,
    max: 57344.0,
    overflow: Overflow::Infinity,
};
const E2M3: MiniFloat = MiniFloat {
    mbits: 3,
    bias: 1,
    max: 7.5,
    overflow: Overflow::Saturate,
};
const E3M2: MiniFloat = MiniFloat {
    mbits: 2,
    bias: 3,
    max: 28.0,
    overflow: Overflow::Saturate,
};
const E2M1: MiniFloat = MiniFloat {
    mbits: 1,
    bias: 1,
    max: 6.0,
    overflow: Overflow::Saturate,
};

/// 2^k as an f32, for k from −149 to 127.
fn pow2(k: i32) -> f32 {
    if k >= -126 {
        f32::from_bits(((k + 127) as u32) << 23)
    } else {
        f32::from_bits(1 << (k + 149))
    }
}

impl MiniFloat {
    /// `x` rounded to the nearest value of the format, ties to even: the quantum (the distance
    /// between neighbours) at x's exponent — never below the subnormals' — is a power of two,
    /// so `x / quantum` and the product back are exact in f32 and only the rounding to an
    /// integer rounds.
    fn round(&self, x: f32) -> f32 {
        if x.is_nan() {
            return x;
        }
        let a = x.abs();
        if a == f32::INFINITY {
            return match self.overflow {
                Overflow::Infinity => x,
                Overflow::Saturate => self.max.copysign(x),
            };
        }
        // The exponent of a: floor(log2 a) (an f32 subnormal is far below any quantum here).
        let e = ((a.to_bits() >> 23) as i32 - 127).max(1 - self.bias);
        let quantum = pow2(e - self.mbits);
        let r = (a / quantum).round_ties_even() * quantum;
        let r = if r > self.max {
            match self.overflow {
                Overflow::Infinity => f32::INFINITY,
                Overflow::Saturate => self.max,
            }
        } else {
            r
        };
        r.copysign(x)
    }

    /// Every finite value of the format, both signs.
    fn values(&self) -> Vec<f32> {
        let mut v = vec![0.0];
        let mut e = 1 - self.bias;
        'outer: loop {
            let quantum = pow2(e - self.mbits);
            let first = if e == 1 - self.bias {
                1
            } else {
                1 << self.mbits
            };
            for m in first..(2 << self.mbits) {
                let x = m as f32 * quantum;
                if x > self.max {
                    break 'outer;
                }
                v.push(x);
                v.push(-x);
            }
            e += 1;
        }
        v.sort_by(f32::total_cmp);
        v.dedup();
        v
    }
}

/// BF16 as PyTorch rounds it: the f32's upper half, rounded half to even on the lower half
/// (`(u + 0x7FFF + ((u >> 16) & 1)) >> 16`); NaN stays a (quiet) NaN.
pub fn bf16_round(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(x.to_bits() | 0x0040_0000);
    }
    let u = x.to_bits();
    let r = u.wrapping_add(0x7FFF + ((u >> 16) & 1)) >> 16;
    f32::from_bits(r << 16)
}

/// FP16 as PyTorch's `.to(torch.float16)` rounds: ties to even, subnormals, ±inf past 65504.
pub fn fp16_round(x: f32) -> f32 {
    FP16.round(x)
}

/// FP8 E4M3FN as PyTorch 2.15 rounds: ties to even, subnormals, saturating at ±448.
pub fn e4m3_round(x: f32) -> f32 {
    E4M3.round(x)
}

/// FP8 E5M2 as PyTorch rounds: ties to even, subnormals, ±inf past 57344.
pub fn e5m2_round(x: f32) -> f32 {
    E5M2.round(x)
}

/// The MX element casts (torchao's `f32_to_f6_e2m3_unpacked`, `…e3m2…`, `f32_to_f4_unpacked`):
/// ties to even, saturating.
pub fn fp6_e2m3_round(x: f32) -> f32 {
    E2M3.round(x)
}
pub fn fp6_e3m2_round(x: f32) -> f32 {
    E3M2.round(x)
}
pub fn fp4_e2m1_round(x: f32) -> f32 {
    E2M1.round(x)
}

/// bitsandbytes's NF4 code: the 16 quantiles of a normal distribution, scaled to [−1, 1] (as
/// f32, the values `_get_4bit_code('nf4')` holds).
pub const NF4: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// One block of a block format as stored: the statistic its scale comes from, the multiplier
/// a weight is scaled by on the way in, and the scale a code reads back with (as stored: f32
/// absmax, f16 d, E8M0 power of two, E4M3 times the tensor's f32), plus Q4_1's stored minimum.
/// [`Format::scale`] computes it, [`Format::encode`] uses it: the quantizer, the histogram's
/// grid and the staircase all read the same two functions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BlockScale {
    /// NF4, Q8_0, MX, NVFP4: the block's absmax; Q4_0, Q5_0: its signed extreme; Q4_1: its
    /// minimum.
    pub statistic: f32,
    /// The scale as computed, before it is stored (ggml's f32 d, NVFP4's `(bmax/6)/t`).
    pub exact: f32,
    /// What a weight is multiplied by before it is rounded to a code (ggml's `id = 1/d`,
    /// NF4's `1/absmax`, NVFP4's `(1/t)/s`, MX's `1/scale`).
    pub inverse: f32,
    /// NF4's shorter last block divides by its absmax instead of multiplying by `inverse`.
    pub divide: bool,
    /// What a code is multiplied by when read back.
    pub scale: f32,
    /// Q4_1's f16 minimum, added after; 0 elsewhere.
    pub offset: f32,
}

impl BlockScale {
    /// The plain float formats' "block": no scale at all.
    pub const UNIT: BlockScale = BlockScale {
        statistic: 1.0,
        exact: 1.0,
        inverse: 1.0,
        divide: false,
        scale: 1.0,
        offset: 0.0,
    };
}

impl Format {
    /// The scale of `block` (`whole`: a full block, not a tensor's shorter last one; `t`:
    /// NVFP4's tensor scale), as each reference computes and stores it:
    /// - NF4 (bitsandbytes): `absmax = max|x|`, in by `1/max(absmax, 1e-38)` (the shorter last
    ///   block: divided by `max(absmax, 1e-38)`, which it also stores), out by absmax;
    /// - Q4_0, Q5_0 (ggml): `d = max / −8` (−16) from the value of largest magnitude, first on
    ///   ties; in by `id = 1/d` (0 when d is); out by f16(d);
    /// - Q8_0: `d = amax / 127`; Q4_1: `d = (max − min) / 15`, in from the minimum, f16 d and
    ///   f16 min out;
    /// - MX (torchao's `to_mx`, FLOOR): `2^(floor(log2 amax) − max_pow2)`, the exponent clamped
    ///   to E8M0's [−127, 128], at least the smallest normal f32;
    /// - NVFP4 (torchao's `nvfp4_quantize` with a per-tensor scale): `s = E4M3(clamp((bmax / 6)
    ///   / t, 2^−6, 448))`, in by `(1/t)/s`, out by `t·s`;
    /// - torchao INT4 (`_choose_qparams_affine_tinygemm`): `scale = max((max − min) / 15, the
    ///   smallest normal f32)`, and a float zero point `zp = min + scale · 8`.
    ///
    /// The plain float formats have none ([`BlockScale::UNIT`]).
    pub fn scale(self, block: &[f32], whole: bool, t: f32) -> BlockScale {
        let amax = || absmax(block);
        let inverse = |d: f32| if d != 0.0 { 1.0 / d } else { 0.0 };
        let stored = |statistic: f32, exact: f32, scale: f32| BlockScale {
            statistic,
            exact,
            inverse: inverse(exact),
            divide: false,
            scale,
            offset: 0.0,
        };
        match self {
            Format::Nf4 => {
                let a = amax();
                let clamped = a.max(1e-38);
                BlockScale {
                    statistic: a,
                    exact: a,
                    inverse: 1.0 / clamped,
                    divide: !whole,
                    scale: if whole { a } else { clamped },
                    offset: 0.0,
                }
            }
            Format::Q4_0 | Format::Q5_0 => {
                let max = extreme(block);
                let d = max / -(self.half() as f32);
                stored(max, d, fp16_round(d))
            }
            Format::Q8_0 => {
                let a = amax();
                let d = a / 127.0;
                stored(a, d, fp16_round(d))
            }
            Format::Q4_1 => {
                let (min, max) = min_max(block);
                let d = (max - min) / 15.0;
                BlockScale {
                    offset: fp16_round(min),
                    ..stored(min, d, fp16_round(d))
                }
            }
            Format::MxFp8 | Format::MxFp6E2m3 | Format::MxFp6E3m2 | Format::MxFp4 => {
                let a = amax();
                let element = self.element().expect("an MX element");
                let unbiased =
                    ((a.to_bits() >> 23) as i32 - 127 - max_pow2(element)).clamp(-127, 128);
                let scale = f32::from_bits(((unbiased + 127) as u32) << 23).max(f32::MIN_POSITIVE);
                // 1/scale is exact (a power of two), so multiplying is torchao's division.
                stored(a, scale, scale)
            }
            Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => {
                let (min, max) = min_max(block);
                let scale = ((max - min) / 15.0).max(f32::MIN_POSITIVE);
                BlockScale {
                    offset: min + scale * 8.0,
                    ..stored(min, scale, scale)
                }
            }
            // An all-zero tensor stays zero (torchao's `0 / 0` makes it NaN).
            Format::NvFp4 if t == 0.0 => stored(0.0, 0.0, 0.0),
            Format::NvFp4 => {
                let bmax = amax();
                let exact = ((bmax / 6.0) / t).clamp(pow2(-6), 448.0);
                let s = E4M3.round(exact);
                BlockScale {
                    inverse: (1.0 / t) / s,
                    ..stored(bmax, exact, t * s)
                }
            }
            _ => BlockScale::UNIT,
        }
    }

    /// `x` as its block (scale `s`) stores it, read back as f32: the format's rounding to a
    /// code, and the code times the scale.
    /// - NF4: the code whose bucket holds `clamp(x·inverse, −1, 1)`, the buckets split at the
    ///   midpoints `(c[i] + c[i+1]) / 2` in f32, a value on a midpoint to the lower code
    ///   (`torch.bucketize`);
    /// - Q4_0, Q5_0: `q = min(2·half − 1, trunc(x·id + half + 0.5))`, read back as `(q − half)·d`;
    /// - Q8_0: `q = roundf(x·id)` (ties away from zero), through the integer (so −0 reads +0);
    /// - Q4_1: `q = min(15, trunc((x − min)·id + 0.5))`, read back as `q·d + min`;
    /// - torchao INT4: `q = clamp(round((x − (zp − 8·scale)) / scale), 0, 15)`, ties to even,
    ///   read back as `(q − 8)·scale + zp`;
    /// - MX and NVFP4: the element format's rounding (ties to even, saturating) of the scaled
    ///   value clamped to the element's range.
    pub fn encode(self, x: f32, s: &BlockScale) -> f32 {
        match self {
            Format::Nf4 => {
                let v = if s.divide { x / s.scale } else { x * s.inverse };
                nf4_code(v.clamp(-1.0, 1.0)) * s.scale
            }
            Format::Q4_0 | Format::Q5_0 => {
                let half = self.half();
                // `(int8_t)(x·id + 8.5f)`: truncation. x·id lies in [−half, half], so the sum is
                // at least 0.5 and only the top needs the clamp (the extreme's opposite gives
                // 2·half).
                let q = ((x * s.inverse + (half as f32 + 0.5)) as i32).min(2 * half - 1);
                (q - half) as f32 * s.scale
            }
            Format::Q8_0 => ((x * s.inverse).round() as i32) as f32 * s.scale,
            Format::Q4_1 => {
                let q = (((x - s.statistic) * s.inverse + 0.5) as i32).min(15);
                q as f32 * s.scale + s.offset
            }
            Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => {
                // `_quantize_affine_tinygemm`: from the zero point back to a minimum, divided;
                // `_dequantize_affine_tinygemm`: (q − 8)·scale + zp.
                let min = s.offset - s.scale * 8.0;
                let q = ((x - min) / s.scale).round_ties_even().clamp(0.0, 15.0);
                (q - 8.0) * s.scale + s.offset
            }
            Format::Bf16 => bf16_round(x),
            Format::Int | Format::Fp32 => x,
            _ => {
                let e = self.element().expect("a float element");
                match self.block_size() {
                    Some(_) => e.round((x * s.inverse).clamp(-e.max, e.max)) * s.scale,
                    None => e.round(x),
                }
            }
        }
    }

    /// Q4_0's and Q5_0's offset: codes 0..2·half read back as `(q − half)·d`.
    fn half(self) -> i32 {
        if self == Format::Q5_0 {
            16
        } else {
            8
        }
    }

    /// Block `index` of `w` (a whole tensor, flat): where it lies, its scale, and every value its
    /// codes read back as, ascending. `None` for the formats without blocks and past the end.
    pub fn block(
        self,
        w: &[f32],
        shape: &[usize],
        index: usize,
    ) -> Option<(std::ops::Range<usize>, BlockScale, Vec<f32>)> {
        let b = self.block_size().filter(|_| self.applies_to(shape))?;
        let start = index.checked_mul(b).filter(|&s| s < w.len())?;
        let span = start..(start + b).min(w.len());
        let block = &w[span.clone()];
        let scale = self.scale(block, block.len() == b, self.tensor_scale(w));
        let codes: Vec<f32> = match self {
            Format::Nf4 => NF4.to_vec(),
            Format::Q4_0 | Format::Q5_0 => (0..2 * self.half())
                .map(|q| (q - self.half()) as f32)
                .collect(),
            Format::Q8_0 => (-127..128).map(|q| q as f32).collect(),
            Format::Q4_1 => (0..16).map(|q| q as f32).collect(),
            Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => {
                (-8..8).map(|q| q as f32).collect()
            }
            _ => self.element().expect("an FP element").values(),
        };
        let mut levels: Vec<f32> = codes
            .iter()
            .map(|c| c * scale.scale + scale.offset)
            .collect();
        levels.sort_by(f32::total_cmp);
        levels.dedup();
        Some((span, scale, levels))
    }

    /// How many blocks a weight of `shape` makes (1 for the formats without blocks, and for a
    /// weight the format leaves alone).
    pub fn blocks(self, shape: &[usize]) -> usize {
        let n: usize = shape.iter().product();
        match self.block_size() {
            Some(b) if self.applies_to(shape) => n.div_ceil(b),
            _ => 1,
        }
    }

    /// The element format of MX, NVFP4 and the plain floats.
    fn element(self) -> Option<&'static MiniFloat> {
        match self {
            Format::Fp16 => Some(&FP16),
            Format::Fp8E4m3 | Format::MxFp8 => Some(&E4M3),
            Format::Fp8E5m2 => Some(&E5M2),
            Format::MxFp6E2m3 => Some(&E2M3),
            Format::MxFp6E3m2 => Some(&E3M2),
            Format::MxFp4 | Format::NvFp4 => Some(&E2M1),
            _ => None,
        }
    }
}

/// NF4's code for a scaled value in [−1, 1]: the buckets split at the midpoints of neighbouring
/// codes (in f32), a value on a midpoint going to the lower code.
fn nf4_code(v: f32) -> f32 {
    let i = (0..15)
        .take_while(|&i| (NF4[i] + NF4[i + 1]) / 2.0 < v)
        .count();
    NF4[i]
}

/// The value of largest magnitude, the first of them on a tie (ggml's `amax`/`max` loop).
fn extreme(block: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &x in block {
        if amax < x.abs() {
            amax = x.abs();
            max = x;
        }
    }
    max
}

/// The largest power of two of an element format, as torchao's `*_MAX_POW2`: 2^8 = 256 for
/// E4M3, 2^2 = 4 for E2M3 and E2M1, 2^4 = 16 for E3M2.
fn max_pow2(f: &MiniFloat) -> i32 {
    (f.max.to_bits() >> 23) as i32 - 127
}

/// The largest magnitude in `xs` (0 for none).
fn absmax(xs: &[f32]) -> f32 {
    xs.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// The smallest and largest value of a block, as ggml's and torchao's loops find them (a NaN
/// never replaces what was found).
fn min_max(block: &[f32]) -> (f32, f32) {
    block
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (if x < lo { x } else { lo }, if x > hi { x } else { hi })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.key().parse::<Format>().unwrap(), f);
        }
        assert!("fp7".parse::<Format>().is_err());
    }

    #[test]
    fn bits_per_weight_count_the_scales() {
        let bpw = |f: Format| f.bits_per_weight().unwrap();
        assert_eq!(bpw(Format::Q4_0), 4.5);
        assert_eq!(bpw(Format::Q4_1), 5.0);
        assert_eq!(bpw(Format::Q5_0), 5.5);
        assert_eq!(bpw(Format::Q8_0), 8.5);
        assert_eq!(bpw(Format::Nf4), 4.5);
        assert_eq!(bpw(Format::MxFp4), 4.25);
        assert_eq!(bpw(Format::MxFp8), 8.25);
        assert_eq!(bpw(Format::Fp16), 16.0);
        // conv1's 288 weights in NF4: five blocks (4 × 64 + 32), five absmax.
        assert_eq!(
            Format::Nf4.storage_bits(&[32, 1, 3, 3]),
            Some(288 * 4 + 5 * 32)
        );
        assert_eq!(Format::Int.storage_bits(&[288]), None);
        // torchao's INT4 at groups of 128 leaves fc1 (rows of 3,136) and every convolution in
        // FP32; fc2's rows of 128 are one group each, with an f32 scale and zero point.
        assert_eq!(
            Format::Int4G128.storage_bits(&[128, 3136]),
            Some(32 * 401_408)
        );
        assert_eq!(
            Format::Int4G128.storage_bits(&[32, 1, 3, 3]),
            Some(32 * 288)
        );
        assert_eq!(
            Format::Int4G128.storage_bits(&[10, 128]),
            Some(4 * 1280 + 64 * 10)
        );
        assert_eq!(bpw(Format::Int4G32), 6.0);
    }

    #[test]
    fn the_grids_hold_their_formats_values() {
        let e4m3 = Format::Fp8E4m3.float_values().unwrap();
        // 0, 126 positive finite values and their negatives (S.1111.111 is NaN).
        assert_eq!(e4m3.len(), 253);
        assert_eq!(*e4m3.last().unwrap(), 448.0);
        assert_eq!(e4m3[e4m3.len() / 2 + 1], pow2(-9));
        // Every grid value is a fixed point of the format.
        for v in e4m3 {
            assert_eq!(e4m3_round(v), v);
        }
        // An MXFP4 block whose largest magnitude is 3.0: scale 2^(1 − 2), E2M1 × ½.
        let w = [3.0, -0.2, 0.7, 1.1].repeat(8);
        let (span, scale, levels) = Format::MxFp4.block(&w, &[32], 0).unwrap();
        assert_eq!((span, scale.scale), (0..32, 0.5));
        assert_eq!(
            levels,
            [
                -3.0, -2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0,
                3.0
            ]
        );
        // Every fake-quantized weight of every block format lies on its block's levels.
        let w: Vec<f32> = (0..256)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let shape = [2, 128];
        for f in Format::ALL.into_iter().filter(|f| f.block_size().is_some()) {
            let fake = f.fake_quantize(&w, &shape).unwrap();
            for b in 0..f.blocks(&shape) {
                let (span, _, levels) = f.block(&w, &shape, b).unwrap();
                for &v in &fake[span] {
                    assert!(levels.contains(&v), "{f}: {v} off its block's grid");
                }
            }
            assert!(f.block(&w, &shape, f.blocks(&shape)).is_none());
        }
        // A weight torchao's INT4 leaves alone comes back as it was, with no blocks.
        let conv = [4, 1, 8, 8];
        assert_eq!(Format::Int4G32.fake_quantize(&w, &conv).unwrap(), w);
        assert_eq!(Format::Int4G32.blocks(&conv), 1);
        assert!(Format::Int4G32.block(&w, &conv, 0).is_none());
    }

    #[test]
    fn non_finite_weights_are_refused_with_their_index() {
        let e = Format::Nf4
            .fake_quantize(&[0.0, f32::NAN], &[2])
            .unwrap_err();
        assert!(e.to_string().contains("weight 1"), "{e}");
    }

    #[test]
    fn a_constant_or_zero_block_stays_finite() {
        for f in Format::ALL.into_iter().filter(|f| *f != Format::Int) {
            for v in [0.0f32, 0.25, -3.0] {
                let out = f.fake_quantize(&[v; 64], &[2, 32]).unwrap();
                assert!(out.iter().all(|x| x.is_finite()), "{f} on {v}");
                if v == 0.0 {
                    assert!(out.iter().all(|x| *x == 0.0), "{f} keeps zeros");
                }
            }
        }
    }
}
