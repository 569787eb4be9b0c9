#!/usr/bin/env python3
"""Writes the QAT goldens the Rust tests read, computed by PyTorch (never by our code).

    python3 -m venv .venv && .venv/bin/pip install torch==2.15.0 numpy safetensors
    .venv/bin/python scripts/qat_goldens.py

core/tests/goldens/lsq.json: LSQ, PyTorch's `torch._fake_quantize_learnable_per_tensor_affine`
(what torch.ao's `_LearnableFakeQuantize` calls), forward and backward, on seeded tensors: for
each case the input x, the upstream gradient dy, scale, zero_point, quant_min/max and
grad_factor (LSQ's gradient scaling, `1/sqrt(numel·quant_max)` as torch.ao computes it), and
PyTorch's output y, dx and dscale. Inputs include values exactly on grid levels, on rounding ties,
just inside and outside the clamp, and far outside.

core/tests/goldens/moving_average.json: PyTorch's MovingAverageMinMaxObserver (averaging constant
0.01, per-tensor symmetric, 2-bit qint8 range) fed six seeded weight-like tensors whose ranges
grow and shrink: the min, max and scale after each.
"""

import json
import os

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "core", "tests", "goldens", "lsq.json")


def case(name, x, scale, zero_point, qmin, qmax, seed):
    g = torch.Generator().manual_seed(seed)
    dy = torch.randn(x.shape, generator=g, dtype=torch.float32)
    x = x.clone().requires_grad_(True)
    s = torch.tensor([scale], dtype=torch.float32, requires_grad=True)
    zp = torch.tensor([float(zero_point)], dtype=torch.float32, requires_grad=True)
    grad_factor = 1.0 / (x.numel() * qmax) ** 0.5
    y = torch._fake_quantize_learnable_per_tensor_affine(x, s, zp, qmin, qmax, grad_factor)
    y.backward(dy)
    return {
        "name": name,
        "x": x.detach().tolist(),
        "dy": dy.tolist(),
        "scale": float(s.detach()[0]),
        "zero_point": zero_point,
        "qmin": qmin,
        "qmax": qmax,
        "grad_factor": grad_factor,
        "y": y.detach().tolist(),
        "dx": x.grad.tolist(),
        "dscale": float(s.grad[0]),
        "dzero_point": float(zp.grad[0]),
    }


def main():
    g = torch.Generator().manual_seed(2024)
    cases = []
    # 2-bit symmetric (codes −2..1), a weight-like bell: most inside, a tail clipped.
    s = 0.05
    edges = torch.tensor([s * k for k in (-2, -1, 0, 1)] + [s * (k + 0.5) for k in (-3, -2, -1, 0, 1)]
                         + [s * 1.49, s * 1.51, s * -2.49, s * -2.51, 1.0, -1.0], dtype=torch.float32)
    x = torch.cat([torch.randn(1500, generator=g) * 0.04, edges])
    cases.append(case("2-bit symmetric", x, s, 0, -2, 1, 1))
    # 4-bit asymmetric (0..15, zero point 5), ReLU-like input with exact zeros.
    x = torch.cat([torch.relu(torch.randn(1200, generator=g)) * 0.3, torch.zeros(100),
                   torch.tensor([-0.2, 0.75, 2.5, 3.0])])
    cases.append(case("4-bit asymmetric", x, 0.1, 5, 0, 15, 2))
    # 8-bit symmetric on a wide tensor (the whole of conv1's size).
    x = torch.randn(288, generator=g) * 0.3
    cases.append(case("8-bit symmetric", x, 0.004, 0, -128, 127, 3))
    moving_average(g)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)
    print(f"wrote {OUT}: {len(cases)} cases")


def moving_average(g):
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    obs = MovingAverageMinMaxObserver(averaging_constant=0.01, dtype=torch.qint8,
                                      qscheme=torch.per_tensor_symmetric, quant_min=-2, quant_max=1)
    steps = []
    for spread in (0.05, 0.2, 0.04, 0.5, 0.01, 0.3):
        x = torch.randn(288, generator=g) * spread
        obs(x)
        scale, zp = obs.calculate_qparams()
        steps.append({"x": x.tolist(), "min": float(obs.min_val), "max": float(obs.max_val),
                      "scale": float(scale), "zero_point": int(zp)})
    path = os.path.join(os.path.dirname(OUT), "moving_average.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "averaging_constant": 0.01, "steps": steps}, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
