#!/usr/bin/env bash
# Installs every tool the project needs that is missing, and skips what is already present at
# the pinned version, so CI stays fast on a warm machine. Versions come from ../shared/toolchain.md:
# trunk 0.22 refuses rustc 1.95, `--locked` wasm-bindgen-cli fails on this mirror, Debian's
# wasm-opt (binaryen 108) is too old for current rustc output.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132

have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

rustup target list --installed | grep -q wasm32-unknown-unknown \
  || step "setup: rustup target wasm32" rustup target add wasm32-unknown-unknown

# These tools build our app; they are not shipped. Trunk's own release profile (fat LTO, one
# codegen unit) makes its build ~3x slower for no gain here, so both build without LTO, with
# parallel codegen; trunk at opt-level 0 (it only rewrites a small page and runs the other tools),
# wasm-bindgen at 1 (it rewrites a 2 MB wasm module on every build). Trunk's default features are
# TLS for downloading tools (we install them) and a check for updates: neither is needed.
tool_build=(env CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
  CARGO_PROFILE_RELEASE_DEBUG=false)

# Chromium and the npm tools download while cargo compiles: both are mostly waiting on the network.
pids=()
if [ "${WITH_BROWSER:-1}" = 1 ]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    (
      step "setup: apt-get update" apt-get update -q >/dev/null
      step "setup: chromium" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q chromium chromium-driver >/dev/null
    ) &
    pids+=($!)
  fi
fi

# binaryen (wasm-opt) and playwright-core are project-local npm packages, pinned by package-lock.json.
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ]; then
  step "setup: npm ci" npm ci --no-audit --no-fund --loglevel=error &
  pids+=($!)
fi

have_version wasm-bindgen "$WASM_BINDGEN_VERSION" \
  || step "setup: wasm-bindgen-cli" "${tool_build[@]}" CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force

have_version trunk "$TRUNK_VERSION" \
  || step "setup: trunk" "${tool_build[@]}" CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    cargo install "trunk@$TRUNK_VERSION" --locked --force --no-default-features

for pid in "${pids[@]}"; do wait "$pid"; done
