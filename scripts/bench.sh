#!/usr/bin/env bash
# The benchmark (issue 5): builds the release app and CLI, serves dist/ on 127.0.0.1, drives
# headless Chromium and prints one table (browser and native figures). A benchmark, not a test:
# it prints figures and asserts nothing; CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# The peers the forward pass is compared with (TF.js, ONNX Runtime Web), run in the same browser:
# benchmark only, so not in package.json, which CI installs.
npm ls --prefix e2e/peers >/dev/null 2>&1 \
  || npm install --prefix e2e/peers --no-audit --no-fund --no-package-lock
cargo build --release -p quant-cli
trunk build --release
node e2e/bench.mjs
