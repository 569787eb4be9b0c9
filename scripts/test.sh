#!/usr/bin/env bash
# Runs every test: formatting and lints, the native tests of every crate (numeric core, charts
# drawn to SVG, CLI, app helpers), then the release app in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

# The browser tests compare the page with the native CLI's numbers and drive the release build.
cargo build --release -p quant-cli
trunk build --release
node --test --test-concurrency=1 e2e/
