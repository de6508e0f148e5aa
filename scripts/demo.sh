#!/usr/bin/env bash
# The README's main command: makes sure Debian's Chromium is installed (installing it when
# run as root; otherwise saying the exact command), then runs `ferry demo`: a server on
# SQLite with an embedded worker collecting from the bundled demo site with a real browser.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/chromium.sh
exec cargo run --quiet -p ferry -- demo "$@"
