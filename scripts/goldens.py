#!/usr/bin/env python3
"""Writes the goldens the Rust tests read, computed by PyTorch (never by our own code).

    python3 -m venv .venv && .venv/bin/pip install torch==2.15.0 numpy safetensors
    .venv/bin/python scripts/goldens.py

For the bundled weights (static/mnistnet.safetensors) and test digits (static/*.idx*-ubyte):
- core/tests/goldens/recipes.json: for recipes covering every knob of a recipe, each layer's
  mean absolute error, and for stochastic rounding its expected value and standard error;
- core/tests/goldens/qparams.safetensors: each recipe's scale and zero_point per block (tensor,
  channel or group), as f32 and i32, named "<recipe index>/<layer>/scale" and ".../zero_point";
- core/tests/goldens/accuracy.json: loss, accuracy and every digit's predicted class for FP32
  and for every bits x scheme x {per tensor, per channel}, the weights fake-quantized by
  torch.fake_quantize_per_{tensor,channel}_affine and the network run by torch.nn.

Parameters come from torch.ao's observers (`MinMaxObserver`, `PerChannelMinMaxObserver` and
their `_calculate_qparams`), as the app claims. The recipe semantics PyTorch has no name for
(groups, percentile by nearest rank, clip, the MSE search, rounding modes) follow the
definitions in core/src/recipe.rs, written here in torch ops.
"""

import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "core", "tests", "goldens")
LAYERS = ["conv1", "conv2", "fc1", "fc2"]
ALL_BITS = [2, 3, 4, 5, 6, 7, 8, 16]
F32 = torch.float32


def qrange(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def observer(bits, scheme, per_channel):
    qmin, qmax = qrange(bits)
    dtype = torch.qint8 if bits <= 8 else torch.qint32
    if per_channel:
        qscheme = torch.per_channel_symmetric if scheme == "sym" else torch.per_channel_affine
        return PerChannelMinMaxObserver(ch_axis=0, dtype=dtype, qscheme=qscheme, quant_min=qmin, quant_max=qmax)
    qscheme = torch.per_tensor_symmetric if scheme == "sym" else torch.per_tensor_affine
    return MinMaxObserver(dtype=dtype, qscheme=qscheme, quant_min=qmin, quant_max=qmax)


def calculate_qparams(lo, hi, bits, scheme):
    """torch.ao's `_calculate_qparams` for vectors of ranges (one per block)."""
    obs = observer(bits, scheme, per_channel=True)
    scale, zp = obs._calculate_qparams(lo.to(F32), hi.to(F32))
    return scale.to(F32), zp.to(torch.int32)


def parse(text):
    r = {"bits": 8, "scheme": "sym", "granularity": "tensor", "rounding": "even", "range": "minmax"}
    layers = {l: {} for l in LAYERS}
    for pair in text.split("&"):
        k, v = pair.split("=")
        if "." in k:
            l, k = k.split(".")
            layers[l][k] = v
        else:
            r[k] = v
    out = {}
    for l in LAYERS:
        lr = dict(r)
        lr.update(layers[l])
        lr["bits"] = int(lr["bits"])
        out[l] = lr
    return out


def blocks_of(w2d, granularity):
    """The blocks of a weight as rows of 2-D tensors, with how to put their results back in
    block order: a list of (values [B, n]) and a function from per-part results [B] to the
    flat, row-major block order."""
    rows, row = w2d.shape
    if granularity == "tensor":
        return [w2d.reshape(1, -1)], lambda parts: parts[0]
    if granularity == "channel":
        return [w2d], lambda parts: parts[0]
    g = int(granularity.split(":")[1])
    full, rem = row // g, row % g
    parts = []
    if full:
        parts.append(w2d[:, : full * g].reshape(rows * full, g))
    if rem:
        parts.append(w2d[:, full * g :])

    def order(results):
        cols = []
        if full:
            cols.append(results[0].reshape(rows, full))
        if rem:
            cols.append(results[-1].reshape(rows, 1))
        return torch.cat(cols, dim=1).reshape(-1)

    return parts, order


def round_with(x, rounding):
    if rounding == "even":
        return torch.round(x)  # half to even, as nearbyint
    if rounding == "zero":
        return torch.trunc(x)
    if rounding == "floor":
        return torch.floor(x)
    raise ValueError(rounding)


def fake_quant(v, scale, zp, bits, rounding):
    """q = clamp(z + R(w * (1/s)), qmin, qmax), w_hat = (q - z) * s, all in f32; per row."""
    qmin, qmax = qrange(bits)
    inv = (1.0 / scale.to(F32)).unsqueeze(1)
    z = zp.to(F32).unsqueeze(1)
    q = torch.clamp(z + round_with(v * inv, rounding), qmin, qmax)
    return (q - z) * scale.unsqueeze(1)


def choose_range(v, lr):
    """[lo, hi] per row of v under the recipe's range method (see core/src/recipe.rs)."""
    alpha, beta = v.min(dim=1).values, v.max(dim=1).values
    method = lr["range"]
    zero = torch.zeros_like(alpha)
    lo0, hi0 = torch.minimum(alpha, zero), torch.maximum(beta, zero)
    if method == "minmax":
        return alpha, beta
    if method.startswith("percentile:"):
        p = round(float(method.split(":")[1]) * 1000)
        n = v.shape[1]
        k = min(max(-(-p * n // 100_000), 1), n)
        s = torch.sort(v, dim=1).values
        return s[:, n - k], s[:, k - 1]
    if method.startswith("clip:"):
        c = round(float(method.split(":")[1]) * 1000)
        f = torch.tensor(c, dtype=F32) / torch.tensor(1000.0, dtype=F32)
        return lo0 * f, hi0 * f
    if method == "mse":
        best = torch.full_like(alpha, math.inf, dtype=torch.float64)
        best_lo, best_hi = lo0.clone(), hi0.clone()
        for k in range(100, 0, -1):
            c = torch.tensor(k, dtype=F32) / torch.tensor(100.0, dtype=F32)
            lo, hi = lo0 * c, hi0 * c
            scale, zp = calculate_qparams(lo, hi, lr["bits"], lr["scheme"])
            err = (v.double() - fake_quant(v, scale, zp, lr["bits"], lr["rounding"]).double()) ** 2
            sq = err.sum(dim=1)
            better = sq < best
            best = torch.where(better, sq, best)
            best_lo, best_hi = torch.where(better, lo, best_lo), torch.where(better, hi, best_hi)
        return best_lo, best_hi
    raise ValueError(method)


def quantize_layer(w, lr):
    """Per block scale and zero point, and the fake-quantized weight (PyTorch layout)."""
    w2d = w.reshape(w.shape[0], -1)
    parts, order = blocks_of(w2d, lr["granularity"])
    scales, zps, fakes = [], [], []
    for v in parts:
        lo, hi = choose_range(v, lr)
        scale, zp = calculate_qparams(lo, hi, lr["bits"], lr["scheme"])
        scales.append(scale)
        zps.append(zp)
        if lr["rounding"].startswith("stochastic"):
            fakes.append(None)
        else:
            fakes.append(fake_quant(v, scale, zp, lr["bits"], lr["rounding"]))
    scale, zp = order(scales), order(zps)
    fake = None
    if fakes[0] is not None:
        rows = w2d.shape[0]
        if lr["granularity"].startswith("group:"):
            g = int(lr["granularity"].split(":")[1])
            full = w2d.shape[1] // g
            cols = []
            if full:
                cols.append(fakes[0].reshape(rows, full * g))
            if w2d.shape[1] % g:
                cols.append(fakes[-1])
            fake = torch.cat(cols, dim=1).reshape(w.shape)
        else:
            fake = fakes[0].reshape(w.shape)
    return scale, zp, fake, parts, order


def stochastic_expectation(w, lr):
    """Expected mean |w - w_hat| and mean (w - w_hat), each with its standard error, under
    stochastic rounding: with x = w/s, t = trunc(x), f = |x - t|, the code is t + sign(x) with
    probability f, else t (then clamped: at the grid's ends the clamp makes it biased)."""
    scale, zp, _, parts, _ = quantize_layer(w, {**lr, "rounding": "even"})
    qmin, qmax = qrange(lr["bits"])
    # Per block, broadcast back over its values.
    means, variances, signed, signed_var = [], [], [], []
    w2d = w.reshape(w.shape[0], -1)
    parts, order = blocks_of(w2d, lr["granularity"])
    offset = 0
    for v in parts:
        s = scale[offset : offset + v.shape[0]] if lr["granularity"] != "tensor" else scale
        z = zp[offset : offset + v.shape[0]] if lr["granularity"] != "tensor" else zp
        offset += v.shape[0]
        x = v.double() * (1.0 / s.to(F32)).double().unsqueeze(1)
        t = torch.trunc(x)
        f = (x - t).abs()
        outcomes = []
        for code in (t, t + torch.sign(x)):
            q = torch.clamp(z.double().unsqueeze(1) + code, qmin, qmax)
            outcomes.append(v.double() - (q - z.double().unsqueeze(1)) * s.double().unsqueeze(1))
        e = (1 - f) * outcomes[0].abs() + f * outcomes[1].abs()
        d = (1 - f) * outcomes[0] + f * outcomes[1]
        e2 = (1 - f) * outcomes[0] ** 2 + f * outcomes[1] ** 2
        means.append(e.reshape(-1))
        variances.append((e2 - e * e).reshape(-1))
        signed.append(d.reshape(-1))
        signed_var.append((e2 - d * d).reshape(-1))
    mean, var = torch.cat(means), torch.cat(variances)
    sgn, sgn_var = torch.cat(signed), torch.cat(signed_var)
    n = mean.numel()
    return {
        "expected_mae": float(mean.mean()),
        "standard_error": float(math.sqrt(var.sum()) / n),
        "expected_mean_error": float(sgn.mean()),
        "mean_error_standard_error": float(math.sqrt(sgn_var.sum()) / n),
    }


class MNISTNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def read_idx(path):
    data = open(path, "rb").read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def weight_recipes():
    r = []
    for gran in ["tensor", "channel"]:
        for scheme in ["sym", "asym"]:
            for bits in ALL_BITS:
                g = "" if gran == "tensor" else f"&granularity={gran}"
                r.append(f"bits={bits}&scheme={scheme}{g}")
    for g in [8, 16, 32, 64, 128]:
        r.append(f"bits=4&scheme=sym&granularity=group:{g}")
    r.append("bits=4&scheme=asym&granularity=group:32")
    r.append("bits=3&scheme=asym&granularity=group:128")
    for rounding in ["zero", "floor"]:
        r.append(f"bits=4&scheme=sym&rounding={rounding}")
        r.append(f"bits=4&scheme=asym&granularity=channel&rounding={rounding}")
        r.append(f"bits=3&scheme=asym&granularity=group:16&rounding={rounding}")
    for rng in ["percentile:99.9", "percentile:99", "clip:0.8", "clip:0.5", "mse"]:
        r.append(f"bits=4&scheme=sym&range={rng}")
        r.append(f"bits=3&scheme=asym&range={rng}")
        r.append(f"bits=4&scheme=sym&granularity=channel&range={rng}")
        r.append(f"bits=4&scheme=asym&granularity=group:32&range={rng}")
    r.append("bits=3&scheme=asym&rounding=floor&range=mse")
    r.append("bits=8&scheme=sym&conv1.granularity=channel&fc1.bits=2&fc1.range=clip:0.5")
    return r


STOCHASTIC = [
    "bits=2&scheme=sym&rounding=stochastic:7",
    "bits=4&scheme=asym&granularity=channel&rounding=stochastic:11",
]


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    weights_path = os.path.join(ROOT, "static", "mnistnet.safetensors")
    sd = load_file(weights_path)
    sha = hashlib.sha256(open(weights_path, "rb").read()).hexdigest()

    tensors = {}
    recipes = []
    for i, text in enumerate(weight_recipes()):
        per_layer = parse(text)
        entry = {"recipe": text, "layers": {}}
        for layer in LAYERS:
            lr = per_layer[layer]
            w = sd[f"{layer}.weight"]
            scale, zp, fake, _, _ = quantize_layer(w, lr)
            if lr["rounding"] == "even" and lr["granularity"] in ("tensor", "channel"):
                # PyTorch's own fake-quant kernels must agree with the formula above, bit for bit.
                qmin, qmax = qrange(lr["bits"])
                if lr["granularity"] == "tensor":
                    kernel = torch.fake_quantize_per_tensor_affine(w, float(scale[0]), int(zp[0]), qmin, qmax)
                else:
                    kernel = torch.fake_quantize_per_channel_affine(w, scale, zp, 0, qmin, qmax)
                assert torch.equal(kernel, fake), (text, layer)
                if lr["range"] == "minmax":
                    # And the observers, run on the weight, give the same parameters.
                    obs = observer(lr["bits"], lr["scheme"], lr["granularity"] == "channel")
                    obs(w)
                    s2, z2 = obs.calculate_qparams()
                    assert torch.equal(s2.to(F32).reshape(-1), scale) and torch.equal(z2.to(torch.int32).reshape(-1), zp), (text, layer)
            tensors[f"{i}/{layer}/scale"] = scale.contiguous()
            tensors[f"{i}/{layer}/zero_point"] = zp.contiguous()
            mae = float((w.double() - fake.double()).abs().mean())
            entry["layers"][layer] = {"mae": mae, "blocks": scale.numel()}
        recipes.append(entry)

    stochastic = []
    for text in STOCHASTIC:
        per_layer = parse(text)
        entry = {"recipe": text, "layers": {}}
        for layer in LAYERS:
            entry["layers"][layer] = stochastic_expectation(sd[f"{layer}.weight"], per_layer[layer])
        stochastic.append(entry)

    with open(os.path.join(OUT, "recipes.json"), "w") as f:
        json.dump({"torch": torch.__version__, "weights_sha256": sha, "recipes": recipes, "stochastic": stochastic}, f, indent=1)
    save_file(tensors, os.path.join(OUT, "qparams.safetensors"))

    # Accuracy on the test digits.
    images = read_idx(os.path.join(ROOT, "static", "mnist-test-images.idx3-ubyte"))
    labels = torch.from_numpy(read_idx(os.path.join(ROOT, "static", "mnist-test-labels.idx1-ubyte")).astype(np.int64))
    x = torch.from_numpy(images.copy()).to(F32).div(255.0).reshape(-1, 1, 28, 28)
    net = MNISTNet()
    net.load_state_dict(sd)
    net.eval()
    results = []
    settings = [None] + [
        (bits, scheme, gran) for gran in ["tensor", "channel"] for scheme in ["sym", "asym"] for bits in ALL_BITS
    ]
    for setting in settings:
        state = dict(sd)
        text = "fp32"
        if setting is not None:
            bits, scheme, gran = setting
            text = f"bits={bits}&scheme={scheme}" + ("" if gran == "tensor" else f"&granularity={gran}")
            qmin, qmax = qrange(bits)
            for layer in LAYERS:
                w = sd[f"{layer}.weight"]
                obs = observer(bits, scheme, gran == "channel")
                obs(w)
                scale, zp = obs.calculate_qparams()
                if gran == "tensor":
                    state[f"{layer}.weight"] = torch.fake_quantize_per_tensor_affine(w, float(scale), int(zp), qmin, qmax)
                else:
                    state[f"{layer}.weight"] = torch.fake_quantize_per_channel_affine(w, scale.to(F32), zp.to(torch.int32), 0, qmin, qmax)
        net.load_state_dict(state)
        with torch.no_grad():
            logits = net(x)
        ld = logits.double()
        loss = float((torch.logsumexp(ld, 1) - ld.gather(1, labels.unsqueeze(1)).squeeze(1)).mean())
        pred = logits.argmax(1)
        top2 = torch.topk(logits, 2, dim=1).values
        results.append({
            "recipe": text,
            "loss": loss,
            "correct": int((pred == labels).sum()),
            "predictions": "".join(str(int(p)) for p in pred),
            # The smallest gap between the two largest logits: how close any digit came to a tie.
            "min_top2_gap": float((top2[:, 0] - top2[:, 1]).min()),
        })
        print(f"{text:40s} correct {results[-1]['correct']}/2000 loss {loss:.6f}", file=sys.stderr)
    with open(os.path.join(OUT, "accuracy.json"), "w") as f:
        json.dump({"torch": torch.__version__, "weights_sha256": sha, "digits": len(labels), "settings": results}, f, indent=1)


if __name__ == "__main__":
    main()
