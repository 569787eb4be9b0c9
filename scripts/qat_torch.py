#!/usr/bin/env python3
"""PyTorch's run of the app's QAT recipe, for comparison (not a golden: its batches are torch's
shuffle, ours are our seeded one). Prints the curve beside which `qp qat` is read, and PyTorch's
training throughput on this machine.

    python3 -m venv .venv && .venv/bin/pip install torch==2.15.0 numpy safetensors
    .venv/bin/python scripts/qat_torch.py --bits 2 --steps 500 [--json] [--threads 2]

The recipe is the essay's (and `qp qat`'s default): every step, each layer's weight gets
per-tensor symmetric qparams from its current min and max (MinMaxObserver's rules, qint8 range
cut to `bits`), goes through `torch.fake_quantize_per_tensor_affine` (whose backward is the STE,
the mask taken before the clamp), biases stay FP32; Adam at a constant learning rate, batches of
64 of the 8,000 training digits; the fake-quantized network's accuracy on the 2,000 test digits
every `--every` steps. Throughput counts the training steps' time only (not the evaluations), the
strongest configuration here: float32, `--threads` intra-op threads (2 on this machine), no
autograd anomaly checks, evaluation under no_grad.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.ao.quantization.observer import MinMaxObserver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptq_goldens import ROOT, images, read_idx  # noqa: E402

LAYERS = ["conv1", "conv2", "fc1", "fc2"]


def labels(name):
    return torch.from_numpy(read_idx(os.path.join(ROOT, name)).astype("int64"))


def initial_scales(params, bits):
    """LSQ's starting scales: MinMaxObserver's on the trained weights."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    out = {}
    for layer in LAYERS:
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric,
                             quant_min=qmin, quant_max=qmax)
        obs(params[f"{layer}.weight"].detach())
        scale, _ = obs.calculate_qparams()
        out[layer] = torch.tensor([float(scale)], requires_grad=True)
    return out


def moving_average_quantizers(bits):
    """torch.ao's FakeQuantize over a MovingAverageMinMaxObserver, one per weight."""
    from torch.ao.quantization.fake_quantize import FakeQuantize
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return {layer: FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=qmin, quant_max=qmax,
                                dtype=torch.qint8, qscheme=torch.per_tensor_symmetric,
                                averaging_constant=0.01)
            for layer in LAYERS}


def fake_weights(params, bits, scales=None, averaged=None):
    """Each weight fake-quantized with qparams from its current range (per tensor, symmetric),
    or with LSQ under its learned scale (torch.ao's _LearnableFakeQuantize with grad scaling)."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    out = {}
    for layer in LAYERS:
        w = params[f"{layer}.weight"]
        if averaged is not None:
            out[f"{layer}.weight"] = averaged[layer](w)
            out[f"{layer}.bias"] = params[f"{layer}.bias"]
            continue
        if scales is not None:
            s = scales[layer]
            with torch.no_grad():
                s.clamp_(min=torch.finfo(torch.float32).eps)
            zp = torch.zeros(1)
            out[f"{layer}.weight"] = torch._fake_quantize_learnable_per_tensor_affine(
                w, s, zp, qmin, qmax, 1.0 / (w.numel() * qmax) ** 0.5)
            out[f"{layer}.bias"] = params[f"{layer}.bias"]
            continue
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric,
                             quant_min=qmin, quant_max=qmax)
        obs(w.detach())
        scale, zp = obs.calculate_qparams()
        out[f"{layer}.weight"] = torch.fake_quantize_per_tensor_affine(
            w, float(scale), int(zp), qmin, qmax)
        out[f"{layer}.bias"] = params[f"{layer}.bias"]
    return out


def activation_quantizers(bits):
    """Eager QAT's activation fake quant: FakeQuantize over MovingAverageMinMaxObserver, quint8
    affine over 0..2^bits-1, at the input, the three ReLU outputs and fc2's scores."""
    from torch.ao.quantization.fake_quantize import FakeQuantize
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    return [FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=2 ** bits - 1,
                         dtype=torch.quint8, qscheme=torch.per_tensor_affine, averaging_constant=0.01)
            for _ in range(5)]


def forward(p, x, acts=None):
    a = acts or [lambda t: t] * 5
    x = a[0](x)
    x = F.max_pool2d(a[1](F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1))), 2)
    x = F.max_pool2d(a[2](F.relu(F.conv2d(x, p["conv2.weight"], p["conv2.bias"], padding=1))), 2)
    x = a[3](F.relu(F.linear(torch.flatten(x, 1), p["fc1.weight"], p["fc1.bias"])))
    return a[4](F.linear(x, p["fc2.weight"], p["fc2.bias"]))


def evaluate(params, bits, x, y, scales=None, averaged=None, first=False, acts=None):
    # An evaluation observes nothing (the moving averages move only in training steps). Before it
    # the first time, the observers see the first batch, as `qp qat` does: the first step sees
    # the same weights and digits, which leaves the averages where that put them.
    quantizers = list((averaged or {}).values()) + list(acts or [])
    for fq in quantizers:
        fq.disable_observer()
    with torch.no_grad():
        logits = forward(fake_weights(params, bits, scales, averaged), x, acts)
    for fq in quantizers:
        fq.enable_observer()
    with torch.no_grad():
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item() * 100
    return acc, loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, default=2)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lsq", action="store_true")
    ap.add_argument("--moving-average", action="store_true")
    ap.add_argument("--activation-bits", type=int)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    sd = load_file(os.path.join(ROOT, "static", "mnistnet.safetensors"))
    params = {k: v.clone().requires_grad_(True) for k, v in sd.items()}
    scales = initial_scales(params, args.bits) if args.lsq else None
    averaged = moving_average_quantizers(args.bits) if args.moving_average else None
    opt = torch.optim.Adam(list(params.values()) + (list(scales.values()) if scales else []), lr=args.lr)
    train_x = images("data/mnist-train-images.idx3-ubyte")
    train_y = labels("data/mnist-train-labels.idx1-ubyte")
    test_x = images("static/mnist-test-images.idx3-ubyte")
    test_y = labels("static/mnist-test-labels.idx1-ubyte")

    acts = activation_quantizers(args.activation_bits) if args.activation_bits else None
    order, cursor, losses, trained = torch.randperm(len(train_x)), 0, [], 0.0
    if acts or averaged:
        with torch.no_grad():
            forward(fake_weights(params, args.bits, scales, averaged), train_x[order[:64]], acts)
    curve = []
    acc, loss = evaluate(params, args.bits, test_x, test_y, scales, averaged, acts=acts)
    curve.append({"step": 0, "train_loss": None, "test": {"accuracy": acc, "loss": loss}})
    for step in range(1, args.steps + 1):
        if cursor + 64 > len(order):
            order, cursor = torch.randperm(len(train_x)), 0
        idx = order[cursor:cursor + 64]
        cursor += 64
        t = time.perf_counter()
        out = forward(fake_weights(params, args.bits, scales, averaged), train_x[idx], acts)
        batch_loss = F.cross_entropy(out, train_y[idx])
        opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        opt.step()
        trained += time.perf_counter() - t
        losses.append(batch_loss.item())
        if step % args.every == 0 or step == args.steps:
            acc, loss = evaluate(params, args.bits, test_x, test_y, scales, averaged, acts=acts)
            curve.append({"step": step, "train_loss": sum(losses) / len(losses),
                          "test": {"accuracy": acc, "loss": loss}})
            losses = []
    rate = args.steps * 64 / trained if trained else 0.0
    if args.json:
        print(json.dumps({"torch": torch.__version__, "threads": args.threads,
                          "img_per_s": rate, "curve": curve}))
        return
    print(f"PyTorch {torch.__version__}, {args.threads} threads: QAT at {args.bits} bits "
          f"symmetric per tensor{', LSQ' if args.lsq else ''}, {rate:.0f} img/s (training steps only)\n")
    print("| step | train loss | test acc % | test loss |\n|--:|--:|--:|--:|")
    for p in curve:
        tl = "–" if p["train_loss"] is None else f"{p['train_loss']:.4f}"
        print(f"| {p['step']} | {tl} | {p['test']['accuracy']:.2f} | {p['test']['loss']:.4f} |")


if __name__ == "__main__":
    main()
