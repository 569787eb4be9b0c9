#!/usr/bin/env python3
"""Writes the goldens of `qp inspect` (a reader's own tensor), computed by PyTorch, never by us:

    python3 -m venv .venv && .venv/bin/pip install torch==2.15.0 numpy safetensors
    .venv/bin/python scripts/inspect_goldens.py

A seeded 64×3×7×7 tensor with the essay's ResNet18 conv1 range ([-0.84343, 1.01647]) is saved
three ways: core/tests/goldens/inspect.safetensors holds it as F32, F16 and BF16 (PyTorch's own
casts), and inspect.npy holds the F32 copy (numpy's writer). inspect.json holds, for each dtype
as PyTorch reads it back to float32, the SHA-256 of the values (f32 little-endian), and for the
F32 tensor under 8-bit symmetric and asymmetric per tensor (MinMaxObserver, qint8) and 4-bit
symmetric per channel (axis 0) and 8-bit asymmetric per channel along axis 1: the scales, zero points and the SHA-256 of `int_repr()` as i8.
"""
import hashlib
import json
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file

out = pathlib.Path(__file__).resolve().parent.parent / "core/tests/goldens"
g = torch.Generator().manual_seed(20261207)
w = (torch.randn((64, 3, 7, 7), generator=g) * 0.12).clamp(-0.84343, 1.01647)
w.view(-1)[0] = -0.84343
w.view(-1)[1] = 1.01647
w = w.float().contiguous()
save_file({"conv1.weight": w, "conv1.weight.f16": w.half(), "conv1.weight.bf16": w.bfloat16()},
          str(out / "inspect.safetensors"), metadata={"format": "pt"})
np.save(out / "inspect.npy", w.numpy())

sha = lambda t: hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
golden = {"values": {
    "conv1.weight": sha(w),
    "conv1.weight.f16": sha(w.half().float()),
    "conv1.weight.bf16": sha(w.bfloat16().float()),
}, "quantized": []}
for name, qscheme, bits in [("bits=8&scheme=sym", torch.per_tensor_symmetric, 8),
                            ("bits=8&scheme=asym", torch.per_tensor_affine, 8)]:
    obs = torch.ao.quantization.MinMaxObserver(dtype=torch.qint8, qscheme=qscheme)
    obs(w)
    s, z = obs.calculate_qparams()
    q = torch.quantize_per_tensor(w, float(s), int(z), torch.qint8).int_repr()
    golden["quantized"].append({"recipe": name, "scale": [float(s)], "zero_point": [int(z)],
                                "codes_sha256": sha(q)})
obs = torch.ao.quantization.PerChannelMinMaxObserver(
    ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-8, quant_max=7)
obs(w)
s, z = obs.calculate_qparams()
q = torch.quantize_per_channel(w, s.double(), z.long(), 0, torch.qint8).int_repr().clamp(-8, 7)
golden["quantized"].append({"recipe": "bits=4&scheme=sym&granularity=channel",
                            "scale": s.tolist(), "zero_point": z.tolist(), "codes_sha256": sha(q)})
# Per channel along axis 1 (ch_axis=1, `qp inspect --axis 1`): the codes as qp writes them, with
# that axis moved first.
obs = torch.ao.quantization.PerChannelMinMaxObserver(
    ch_axis=1, dtype=torch.qint8, qscheme=torch.per_channel_affine)
obs(w)
s, z = obs.calculate_qparams()
q = torch.quantize_per_channel(w, s.double(), z.long(), 1, torch.qint8).int_repr()
golden["quantized"].append({"recipe": "bits=8&scheme=asym&granularity=channel", "axis": 1,
                            "scale": s.tolist(), "zero_point": z.tolist(),
                            "codes_sha256": sha(q.movedim(1, 0))})
(out / "inspect.json").write_text(json.dumps(golden, indent=1) + "\n")
print("wrote", out / "inspect.json")
