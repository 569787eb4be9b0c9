#!/usr/bin/env python3
"""Writes the PTQ goldens the Rust tests read, computed by PyTorch's torch.ao (never by our code).

    python3 -m venv .venv && .venv/bin/pip install torch==2.15.0 numpy safetensors
    .venv/bin/python scripts/ptq_goldens.py

Eager-mode static PTQ of MNISTNet as the essay does it: QuantStub → (conv1, ReLU) fused → pool →
(conv2, ReLU) fused → pool → flatten → (fc1, ReLU) fused → fc2 → DeQuantStub; `prepare`, calibrate
on the first N training digits (data/, in file order, batches of CALIBRATION_BATCH), `convert`, and
run the converted model on the 2,000 test digits under the preset's engine.

core/tests/goldens/ptq.json holds, for each configuration (preset, observer, N):
- `activations`: each observer's recorded min/max and the scale and zero_point it chose
  (f32 values written exactly, as f64 JSON numbers);
- `weights`: each layer's weight scales (per channel for x86) and zero points;
- `codes`: for every test digit and every quantized module output (quant, conv1 (after its fused
  ReLU, before the pool), conv2, fc1, fc2), the CRC-32 (zlib) of `int_repr()` in NCHW order;
- `loss`, `correct`, `predictions` of the converted model;
- for x86: `saturated`, the (digit, module) pairs where PyTorch's FBGEMM result differs from the
  exact integer arithmetic. The script computes the exact arithmetic itself (integer sums in f64,
  exact below 2^53, and FBGEMM's requantization in f32) and asserts that every difference lies
  where FBGEMM's int16 pair sums can saturate: the module's input holds a code above 127, which
  reduce_range keeps calibrated inputs below. For qnnpack it asserts there is no difference at all.

core/tests/goldens/histogram.json: PyTorch's HistogramObserver fed fixed batches (seeded, with
growing and shrinking ranges, a constant batch, ReLU-like zeros), with its min/max and qparams
after each batch, reduce_range on and off: the observer checked on PyTorch's own inputs.
"""

import json
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.ao.quantization import (
    DeQuantStub,
    QConfig,
    QuantStub,
    convert,
    fuse_modules,
    get_default_qconfig,
    prepare,
)
from torch.ao.quantization.observer import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "core", "tests", "goldens")
CALIBRATION_BATCH = 100
MODULES = ["quant", "conv1", "conv2", "fc1", "fc2"]
F32 = torch.float32

CONFIGS = [
    ("qnnpack", "minmax", 1000),
    ("qnnpack", "histogram", 1000),
    ("qnnpack", "moving_average", 1000),
    ("qnnpack", "minmax", 1),
    ("x86", "minmax", 1000),
    ("x86", "histogram", 1000),
    ("x86", "histogram", 100),
]


class QuantNet(nn.Module):
    """MNISTNet with the stubs and module ReLUs eager-mode quantization needs."""

    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.relu3(self.fc1(x))
        return self.dequant(self.fc2(x))


def read_idx(path):
    data = open(path, "rb").read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(name):
    x = read_idx(os.path.join(ROOT, name))
    return torch.from_numpy(x.copy()).to(F32).div(255.0).reshape(-1, 1, 28, 28)


def qconfig(preset, observer):
    default = get_default_qconfig(preset)
    reduce_range = preset == "x86"
    activation = {
        "histogram": default.activation,
        "minmax": MinMaxObserver.with_args(reduce_range=reduce_range),
        "moving_average": MovingAverageMinMaxObserver.with_args(reduce_range=reduce_range),
    }[observer]
    return QConfig(activation=activation, weight=default.weight)


def quantize(sd, preset, observer, n, train):
    torch.backends.quantized.engine = preset
    m = QuantNet()
    m.load_state_dict(sd)
    m.eval()
    m = fuse_modules(m, [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"]])
    m.qconfig = qconfig(preset, observer)
    prepare(m, inplace=True)
    observers = {}
    for name in MODULES:
        observers[name] = getattr(m, name).activation_post_process
    with torch.no_grad():
        for start in range(0, n, CALIBRATION_BATCH):
            m(train[start : min(n, start + CALIBRATION_BATCH)])
    recorded = {name: (float(o.min_val), float(o.max_val)) for name, o in observers.items()}
    convert(m, inplace=True)
    return m, recorded


def f32(v):
    return float(np.float32(v))


def exact_requantize(acc, bias, s_in, s_w, s_out, zp_out, preset, relu):
    """The integer conv/linear's requantization, from reference.md §1, in numpy f32."""
    acc = acc.astype(np.float64)  # exact integers
    s_in = np.float32(s_in)
    s_out = np.float32(s_out)
    s_w = s_w.astype(np.float32)
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    if preset == "x86":
        atw = (s_in * s_w).astype(np.float32)
        mult = (atw / s_out).astype(np.float32)
        raw = acc.astype(np.float32) + (bias.astype(np.float32) / atw).astype(np.float32).reshape(shape)
        q = np.rint((raw.astype(np.float32) * mult.reshape(shape)).astype(np.float32)).astype(np.int64) + zp_out
    else:
        sw_in = (s_w * s_in).astype(np.float32)
        qb = np.rint((bias.astype(np.float32) * (np.float32(1.0) / sw_in).astype(np.float32)).astype(np.float32)).astype(np.int64)
        rs = (sw_in * (np.float32(1.0) / s_out)).astype(np.float32)
        total = acc.astype(np.int64) + qb.reshape(shape)
        q = np.rint((total.astype(np.float32) * rs.reshape(shape)).astype(np.float32)).astype(np.int64) + zp_out
    lo = zp_out if relu else 0
    return np.clip(q, lo, 255)


def check_layers(qm, outs, preset):
    """Every differing (digit, module) of PyTorch's integer modules from the exact arithmetic."""
    differing = []
    chain = [("conv1", "quant", True, None), ("conv2", "conv1", True, 2), ("fc1", "conv2", True, 2), ("fc2", "fc1", False, None)]
    for name, prev, relu, pool in chain:
        mod = getattr(qm, name)
        x = outs[prev]
        if pool:
            x = F.max_pool2d(torch.from_numpy(x.astype(np.float64)), pool).numpy().astype(np.int64)
        s_in, zp_in = outs[prev + "_qparams"]
        w = mod.weight()
        wq = w.int_repr().to(torch.float64)
        if w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine):
            s_w = w.q_per_channel_scales().numpy()
        else:
            s_w = np.full(w.shape[0], w.q_scale(), dtype=np.float64)
        bias = mod.bias().detach().numpy()
        xc = torch.from_numpy((x - zp_in).astype(np.float64))
        if name.startswith("conv"):
            acc = F.conv2d(xc, wq, padding=1).numpy()
        else:
            acc = (xc.reshape(xc.shape[0], -1) @ wq.t()).numpy()
        want = exact_requantize(acc, bias, s_in, s_w, mod.scale, mod.zero_point, preset, relu)
        got = outs[name]
        diff = (want != got).reshape(got.shape[0], -1).any(1)
        can_saturate = (x > 127).reshape(x.shape[0], -1).any(1)
        for d in np.nonzero(diff)[0]:
            if preset != "x86" or not can_saturate[d]:
                raise AssertionError(f"{preset} {name} digit {d}: PyTorch differs from the exact arithmetic")
            differing.append([int(d), name])
        print(f"  {name}: {int(diff.sum())} digits differ from the exact arithmetic, {int(can_saturate.sum())} could saturate", file=sys.stderr)
    return differing


def histogram_goldens():
    rng = np.random.default_rng(7)
    batches = []
    for scale in [1.0, 3.0, 0.5, 8.0, 2.0]:
        batches.append((rng.standard_normal(700) * scale).astype(np.float32))
    batches.append(np.maximum(rng.standard_normal(700) * 12.0, 0).astype(np.float32))  # ReLU-like
    batches.append(np.full(50, 4.0, dtype=np.float32))  # constant
    cases = []
    for reduce_range in [False, True]:
        for sequence in [batches, [np.full(10, 2.5, dtype=np.float32)], [np.maximum(b, 0) for b in batches[:4]]]:
            obs = HistogramObserver(reduce_range=reduce_range)
            steps = []
            for b in sequence:
                obs(torch.from_numpy(b.copy()))
                s, z = obs.calculate_qparams()
                steps.append({"min": float(obs.min_val), "max": float(obs.max_val), "scale": float(s), "zero_point": int(z)})
            cases.append({"reduce_range": reduce_range, "batches": [b.tolist() for b in sequence], "steps": steps,
                          "histogram": obs.histogram.tolist()})
    return cases


def main():
    sd = load_file(os.path.join(ROOT, "static", "mnistnet.safetensors"))
    train = images("data/mnist-train-images.idx3-ubyte")
    test = images("static/mnist-test-images.idx3-ubyte")
    labels = torch.from_numpy(read_idx(os.path.join(ROOT, "static", "mnist-test-labels.idx1-ubyte")).astype(np.int64))
    configs = []
    for preset, observer, n in CONFIGS:
        qm, recorded = quantize(sd, preset, observer, n, train)
        outs = {}
        hooks = []
        for name in MODULES:
            def hook(_m, _i, out, name=name):
                outs[name] = out.int_repr().contiguous().numpy().astype(np.int64)
                outs[name + "_qparams"] = (f32(out.q_scale()), int(out.q_zero_point()))
            hooks.append(getattr(qm, name).register_forward_hook(hook))
        with torch.no_grad():
            logits = qm(test)
        for h in hooks:
            h.remove()
        ld = logits.double()
        loss = float((torch.logsumexp(ld, 1) - ld.gather(1, labels.unsqueeze(1)).squeeze(1)).mean())
        pred = logits.argmax(1)
        print(f"{preset} {observer} N={n}: correct {int((pred == labels).sum())}/2000 loss {loss:.6f}", file=sys.stderr)
        saturated = check_layers(qm, outs, preset)
        activations = {}
        for name in MODULES:
            scale, zp = outs[name + "_qparams"]
            lo, hi = recorded[name]
            activations[name] = {"min": lo, "max": hi, "scale": scale, "zero_point": zp}
        weights = {}
        for name in ["conv1", "conv2", "fc1", "fc2"]:
            w = getattr(qm, name).weight()
            if w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine):
                weights[name] = {"scale": [f32(v) for v in w.q_per_channel_scales()],
                                 "zero_point": [int(v) for v in w.q_per_channel_zero_points()], "dtype": str(w.dtype)}
            else:
                weights[name] = {"scale": [f32(w.q_scale())], "zero_point": [int(w.q_zero_point())], "dtype": str(w.dtype)}
        codes = {name: [zlib.crc32(outs[name][d].astype(np.uint8).tobytes()) for d in range(len(labels))] for name in MODULES}
        configs.append({
            "preset": preset, "observer": observer, "calibration": n, "batch": CALIBRATION_BATCH,
            "activations": activations, "weights": weights, "codes": codes, "saturated": saturated,
            "loss": loss, "correct": int((pred == labels).sum()),
            "predictions": "".join(str(int(p)) for p in pred),
        })
    with open(os.path.join(OUT, "ptq.json"), "w") as f:
        json.dump({"torch": torch.__version__, "configs": configs}, f)
    with open(os.path.join(OUT, "histogram.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": histogram_goldens()}, f)


if __name__ == "__main__":
    main()
