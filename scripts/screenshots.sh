#!/usr/bin/env bash
# Regenerates the dashboard's screenshots under docs/screenshots/ (1280×800, taken by the
# dashboard's end-to-end test in Debian's Chromium against a real server).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}"
./scripts/chromium.sh
mkdir -p docs/screenshots
FERRY_DASHBOARD_SCREENSHOTS="$PWD/docs/screenshots" \
  cargo test -p ferry-server --test it dashboard -- --nocapture
ls -l docs/screenshots
