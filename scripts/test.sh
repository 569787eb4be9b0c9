#!/usr/bin/env bash
# Runs every test: formatting and lints, the native tests of every crate (numeric core, charts
# drawn to SVG, CLI, app helpers), then the release app in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

step "fmt" cargo fmt --all --check
# Clippy lints our crates while the test build compiles them: clippy-driver in place of rustc for
# the workspace's crates (what `cargo clippy` itself does, but with code generated), so the
# dependencies are built once, not once checked for clippy and again for the tests. `cargo test`
# compiles every target `clippy --all-targets` checks (libraries, binaries, tests, examples; we
# have no benches). CLIPPY_ARGS is how cargo-clippy hands `-- -D warnings` to the driver.
step "clippy + native tests" env RUSTC_WORKSPACE_WRAPPER=clippy-driver \
  CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" cargo test --workspace

# The browser tests compare the page with the numbers of the `qp` that `cargo test` just built
# (target/debug/qp: the core is optimised in the dev profile).
step "trunk build --release" trunk build --release
step "browser tests" node --test --test-concurrency=1 e2e/
