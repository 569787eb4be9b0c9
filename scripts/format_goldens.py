#!/usr/bin/env python3
"""Writes the number formats' goldens the Rust tests read, computed by each format's reference
implementation (never by our code):

    python3 -m venv .venv && .venv/bin/pip install torch==2.15.0 numpy safetensors \
        bitsandbytes==0.50.2 gguf==0.19.0 torchao==0.18.0
    .venv/bin/python scripts/format_goldens.py

core/tests/goldens/formats.json holds:
- "elements": f32 inputs (as bit patterns) and what each element format makes of them, read back
  as f32 bits: PyTorch's `.to(dtype).float()` for FP16, BF16, FP8 E4M3FN and E5M2 over every
  class of input (every representable value, every midpoint between neighbours — exact ties —
  and the floats either side of it, subnormals, overflow, ±0, ±inf, NaN, and seeded random
  values over a wide range of exponents); torchao's MX element casts (`f32_to_f6_e2m3_unpacked`,
  `…e3m2…`, `f32_to_f4_unpacked` and back) for FP6 and FP4 over finite inputs.
- "blocks": a seeded 1,056-value tensor built to hit the block formats' corners (a zero block, a
  constant block, extremes of equal magnitude and either sign first, ties, tiny and huge
  blocks, a shorter last NF4 block), and each block format's dequantized output for it.
- "layers": for each format and each layer of static/mnistnet.safetensors, the SHA-256 of the
  dequantized weights (f32 little-endian) and their mean absolute error.

torchao's INT4 (groups of 32, 64, 128) runs through torchao's own tinygemm primitives; like
`quantize_` it leaves the convolutions, and fc1 at groups of 128 (3,136 is no multiple), as they
are.

References: bitsandbytes's `quantize_4bit`/`dequantize_4bit` (NF4, blocks of 64, the tensor
flattened); the `gguf` package's `quantize`/`dequantize` (ggml's Q4_0, Q4_1, Q5_0, Q8_0 reference
quantizers in numpy, blocks of 32 over the flattened tensor); torchao's `to_mx`/`to_dtype`
(MXFP8 E4M3, MXFP6 E2M3/E3M2, MXFP4, blocks of 32, FLOOR scale) and `NVFP4Tensor.to_nvfp4` with
the per-tensor scale `per_tensor_amax_to_scale(amax)`, then `.dequantize()`.
"""

import hashlib
import json
import math
import os

import numpy as np
import torch
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WEIGHTS = os.path.join(ROOT, "static", "mnistnet.safetensors")
OUT = os.path.join(ROOT, "core", "tests", "goldens", "formats.json")
LAYERS = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]


def bits(t):
    return t.contiguous().view(torch.int32).view(-1).numpy().astype(np.uint32).tolist()


def f32(values):
    return torch.tensor(np.array(values, dtype=np.float32))


# ---- element formats ----------------------------------------------------------------------

def torch_cast(dtype):
    return lambda x: x.to(dtype).to(torch.float32)


def torchao_cast(name):
    from torchao.prototype.mx_formats import kernels as k

    to, back = {
        "fp6_e2m3": (k.f32_to_f6_e2m3_unpacked, k.f6_e2m3_unpacked_to_f32),
        "fp6_e3m2": (k.f32_to_f6_e3m2_unpacked, k.f6_e3m2_unpacked_to_f32),
        "fp4_e2m1": (k.f32_to_f4_unpacked, k.f4_unpacked_to_f32),
    }[name]
    return lambda x: back(to(x.contiguous())).to(torch.float32)


def grid(ebits, mbits, bias, max_value):
    """Every finite non-negative value of a float format."""
    out = {0.0}
    for e in range(1 - bias, 2 ** ebits):
        q = 2.0 ** (e - mbits)
        first = 1 if e == 1 - bias else 2 ** mbits
        for m in range(first, 2 ** (mbits + 1)):
            if m * q <= max_value:
                out.add(m * q)
    return sorted(out)


def element_inputs(values, rng, finite_only, wide):
    """The format's values, its midpoints and their neighbours, both signs, and random values."""
    v = np.array(values, dtype=np.float32)
    mids = ((v[:-1].astype(np.float64) + v[1:]) / 2).astype(np.float32)
    top = np.float32(v[-1])
    step = np.float32(v[-1] - v[-2])
    around = [top + step / 2, top + step / 2 * np.float32(0.999), top * 2, np.float32(3e38)]
    xs = np.concatenate([
        v, mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf)),
        np.array(around, dtype=np.float32),
        np.array([1e-45, 1e-40, 1.17549435e-38], dtype=np.float32),
        (rng.standard_normal(600) * np.exp2(rng.uniform(-wide, wide, 600))).astype(np.float32),
    ])
    xs = np.concatenate([xs, -xs])
    if not finite_only:
        xs = np.concatenate([xs, np.array([np.inf, -np.inf, np.nan], dtype=np.float32)])
    return xs


def elements():
    rng = np.random.default_rng(20261207)
    cases = {
        "fp16": (torch_cast(torch.float16), grid(5, 10, 15, 65504.0)[::37], False, 30),
        "bf16": (torch_cast(torch.bfloat16), [], False, 120),
        "fp8_e4m3": (torch_cast(torch.float8_e4m3fn), grid(4, 3, 7, 448.0), False, 16),
        "fp8_e5m2": (torch_cast(torch.float8_e5m2), grid(5, 2, 15, 57344.0), False, 30),
        "fp6_e2m3": (torchao_cast("fp6_e2m3"), grid(2, 3, 1, 7.5), True, 6),
        "fp6_e3m2": (torchao_cast("fp6_e3m2"), grid(3, 2, 3, 28.0), True, 8),
        "fp4_e2m1": (torchao_cast("fp4_e2m1"), grid(2, 1, 1, 6.0), True, 5),
    }
    out = {}
    for name, (cast, values, finite_only, wide) in cases.items():
        if name == "bf16":
            # Ties sit on the lower half of the f32: x.xxxx8000 patterns, and their neighbours.
            hi = rng.integers(0, 0x7F7F, 500, dtype=np.uint32) << 16
            pats = np.concatenate([hi | 0x8000, hi | 0x7FFF, hi | 0x8001, hi | 0x18000])
            values = np.sort(pats.view(np.float32))
        x = f32(element_inputs(values, rng, finite_only, wide)) if len(values) else None
        out[name] = {"in": bits(x), "out": bits(cast(x))}
    return out


# ---- block formats ------------------------------------------------------------------------

def nf4(x):
    import bitsandbytes.functional as F

    q, state = F.quantize_4bit(x.reshape(-1), blocksize=64, quant_type="nf4")
    return F.dequantize_4bit(q, state).reshape(-1)


def ggml(qtype):
    import gguf

    def run(x):
        a = x.reshape(-1, 32).numpy().astype(np.float32)
        q = gguf.quants.quantize(a, qtype)
        return torch.from_numpy(gguf.quants.dequantize(q, qtype).astype(np.float32)).reshape(-1)

    return run


def mx(elem):
    from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx

    def run(x):
        scale, data = to_mx(x.reshape(-1, 32).contiguous(), elem, 32)
        return to_dtype(data, scale, elem, 32, torch.float32).reshape(-1)

    return run


def nvfp4(x):
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, per_tensor_amax_to_scale

    x2 = x.reshape(-1, 16).contiguous()
    t = NVFP4Tensor.to_nvfp4(x2, 16, per_tensor_scale=per_tensor_amax_to_scale(x2.abs().max()))
    return t.dequantize(torch.float32).reshape(-1)


def int4(group):
    """torchao's Int4WeightOnlyConfig(group_size) with its tinygemm qparams, through torchao's own
    primitives (`_choose_qparams_affine_tinygemm`, `_quantize_affine_tinygemm`,
    `_dequantize_affine_tinygemm`), as its CPU and tinygemm packings compute them (its packed
    kernels need a GPU or mslk). Like `quantize_`, it takes Linear weights ([out, in]) whose
    rows the group divides and leaves every other weight as it is."""
    from torchao.quantization.quant_primitives import (
        MappingType,
        _choose_qparams_affine_tinygemm,
        _dequantize_affine_tinygemm,
        _quantize_affine_tinygemm,
    )

    def run(x, shape):
        if len(shape) != 2 or shape[1] % group:
            return x.reshape(-1).clone()
        w = x.reshape(shape).contiguous()
        block = (1, group)
        scale, zp = _choose_qparams_affine_tinygemm(
            w, MappingType.ASYMMETRIC, block, torch.int32, 0, 15,
            scale_dtype=torch.float32, zero_point_dtype=torch.float32)
        q = _quantize_affine_tinygemm(w, block, scale, zp, torch.int32, 0, 15)
        return _dequantize_affine_tinygemm(q, block, scale, zp, torch.int32, 0, 15,
                                           output_dtype=torch.float32).reshape(-1)

    return run


SHAPED = {"int4_g32": int4(32), "int4_g64": int4(64), "int4_g128": int4(128)}


def block_formats():
    import gguf
    from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2

    Q = gguf.GGMLQuantizationType
    return {
        "fp16": torch_cast(torch.float16),
        "bf16": torch_cast(torch.bfloat16),
        "fp8_e4m3": torch_cast(torch.float8_e4m3fn),
        "fp8_e5m2": torch_cast(torch.float8_e5m2),
        "nf4": nf4,
        "q4_0": ggml(Q.Q4_0),
        "q4_1": ggml(Q.Q4_1),
        "q5_0": ggml(Q.Q5_0),
        "q8_0": ggml(Q.Q8_0),
        "mxfp8": mx(torch.float8_e4m3fn),
        "mxfp6_e2m3": mx(DTYPE_FP6_E2M3),
        "mxfp6_e3m2": mx(DTYPE_FP6_E3M2),
        "mxfp4": mx(torch.float4_e2m1fn_x2),
        "nvfp4": nvfp4,
    }


def corner_tensor():
    """1,056 values: 16 blocks of 64 (two of 32 each) and a shorter last NF4 block of 32."""
    rng = np.random.default_rng(7)
    b = []
    b.append(np.zeros(32))
    b.append(np.full(32, 0.3))
    b.append(np.concatenate([[-1.0, 1.0], rng.uniform(-1, 1, 30)]))  # −extreme first
    b.append(np.concatenate([[1.0, -1.0], rng.uniform(-1, 1, 30)]))  # +extreme first
    # Q4_0 ties: with max −8 the scale is 1, so x·id + 8.5 lands on integers for halves.
    b.append(np.concatenate([[-8.0], np.arange(-7.5, 8.0, 0.5)[:31]]))
    # NF4 midpoints exactly: absmax 1, values on (c[i] + c[i+1]) / 2 in f32.
    code = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                     -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                     0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                     0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                     0.7229568362236023, 1.0], dtype=np.float32)
    mids = ((code[:-1] + code[1:]) / np.float32(2)).astype(np.float32)
    b.append(np.concatenate([[1.0], mids, -mids, [0.0]]))
    b.append(np.concatenate([[1.0], mids, mids, [0.5]]))
    for k in range(7, 31):
        scale = 10.0 ** rng.uniform(-6, 4)
        b.append(rng.standard_normal(32) * scale)
    b.append(rng.standard_normal(32) * 1e-30)  # underflow to the E8M0 floor
    b.append(rng.laplace(size=32) * 0.05)
    x = np.concatenate(b).astype(np.float32)
    assert x.size == 33 * 32
    return torch.from_numpy(x)


def main():
    torch.manual_seed(0)
    raw = open(WEIGHTS, "rb").read()
    state = load_file(WEIGHTS)
    formats = block_formats()
    corner = corner_tensor()
    out = {
        "weights_sha256": hashlib.sha256(raw).hexdigest(),
        "versions": {
            "torch": torch.__version__,
            "gguf": __import__("importlib.metadata").metadata.version("gguf"),
            "bitsandbytes": __import__("bitsandbytes").__version__,
            "torchao": __import__("torchao").__version__,
        },
        "elements": elements(),
        # The corner tensor is rows of 32 for the shape-aware formats ([33, 32]).
        "blocks": {
            "in": bits(corner),
            "shape": [33, 32],
            "out": {
                **{k: bits(f(corner)) for k, f in formats.items()},
                **{k: bits(f(corner, [33, 32])) for k, f in SHAPED.items()},
            },
        },
        "layers": {},
    }
    shaped = {k: (lambda f: lambda w: f(w.reshape(-1), list(w.shape)))(f) for k, f in SHAPED.items()}
    for name, f in {**{k: (lambda f: lambda w: f(w.reshape(-1)))(f) for k, f in formats.items()}, **shaped}.items():
        rows = {}
        for layer in LAYERS:
            w = state[layer].float().contiguous()
            y = f(w).reshape(-1).contiguous()
            assert y.numel() == w.numel()
            digest = hashlib.sha256(y.numpy().astype("<f4").tobytes()).hexdigest()
            mae = (y.double() - w.reshape(-1).double()).abs().mean().item()
            rows[layer] = {"sha256": digest, "mae": mae}
        out["layers"][name] = rows
        print(name, {k: f"{v['mae']:.3e}" for k, v in rows.items()})
    with open(OUT, "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
