#!/usr/bin/env bash
# Runs every test: formatting and lints, the native tests of every crate (numeric core, charts
# drawn to SVG, CLI, app helpers), then the release app in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

step "fmt" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
step "native tests" cargo test --workspace

# The browser tests compare the page with the native CLI's numbers and drive the release build.
step "CLI (release)" cargo build --release -p quant-cli
step "trunk build --release" trunk build --release
step "browser tests" node --test --test-concurrency=1 e2e/
