"""PyTorch's check of "Download this quantized model" (issue 19), outside CI (CI has no PyTorch).

For each recipe: `qp quantize` writes the file the page's download writes (the browser test
checks the two are the same bytes), then the snippet the page shows (core/src/load_quantized.py)
loads it in PyTorch, rebuilds each layer from its integer codes (asserting it equals the stored
weight bit for bit), and prints its accuracy on the file's digits: that must be qp's count.

    .venv/bin/python scripts/check_export.py            # after `cargo build --release -p quant-cli`
"""

import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
QP = ROOT / "target" / "release" / "qp"
SNIPPET = ROOT / "core" / "src" / "load_quantized.py"

RECIPES = [
    ["--bits", "8", "--mode", "sym"],
    ["--bits", "4", "--mode", "asym"],
    ["--bits", "2", "--mode", "sym"],
    ["--bits", "3", "--mode", "sym", "--granularity", "channel"],
    ["--bits", "4", "--mode", "asym", "--granularity", "group:8"],
    ["--bits", "16", "--mode", "asym"],
    ["--bits", "8", "--layer-bits", "conv1=8,conv2=4,fc1=2,fc2=fp32"],
    ["--dtype", "nf4"],
    ["--dtype", "fp8_e4m3"],
]

failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for flags in RECIPES:
        out = pathlib.Path(tmp) / "model.safetensors"
        qp = subprocess.run([QP, "quantize", *flags, "--out", out], capture_output=True, text=True, cwd=ROOT)
        if qp.returncode != 0:
            print(" ".join(flags), "qp failed:", qp.stderr.strip())
            failed += 1
            continue
        ours = re.search(r"(\d+)/(\d+) =", qp.stdout).group(0)
        torch_run = subprocess.run([sys.executable, SNIPPET, out], capture_output=True, text=True)
        found = re.search(r"accuracy: (\d+/\d+) =", torch_run.stdout)
        theirs = found.group(1) + " =" if found else torch_run.stderr.strip()[-300:]
        ok = torch_run.returncode == 0 and theirs == ours
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {' '.join(flags):<55} qp {ours[:-2]:>10}   PyTorch {theirs[:-2]}")
sys.exit(1 if failed else 0)
