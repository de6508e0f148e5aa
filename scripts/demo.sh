#!/usr/bin/env bash
# The README's main command: makes sure Debian's Chromium is installed (installing it when
# run as root; otherwise saying the exact command), builds `ferry` with cargo's progress
# shown, then runs `ferry demo`: a server on SQLite with an embedded worker collecting from
# the bundled demo site with a real browser.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same target dir as scripts/test.sh, so the two share one build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}"
./scripts/chromium.sh
echo "== building ferry (the first build takes about 10 minutes; later ones seconds)"
cargo build -p ferry
echo "== running ferry demo"
exec cargo run --quiet -p ferry -- demo "$@"
