#!/usr/bin/env bash
# Sets up whatever is missing, builds the release app and serves it on http://127.0.0.1:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
# No live reload: `trunk serve` would inject its reload script inline, after the post-build hook
# wrote the page's Content-Security-Policy, which then refuses it (a console error on every load).
# This serves what a host would; Trunk still rebuilds on a change, a refresh shows it.
exec trunk serve --release --no-autoreload "$@"
