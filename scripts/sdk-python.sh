#!/usr/bin/env bash
# The Python SDK's tests (sdks/python): pytest, from the pinned tools scripts/python.sh
# installs, against a real `ferry serve` (the debug binary this script builds).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}"
./scripts/python.sh
cargo build --locked --quiet -p ferry
cd sdks/python
FERRY_BIN="$CARGO_TARGET_DIR/debug/ferry" "$CARGO_TARGET_DIR/ferry-py/bin/python" -m pytest -q -p no:cacheprovider
