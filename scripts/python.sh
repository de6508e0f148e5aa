#!/usr/bin/env bash
# Makes sure the Python tools the tests run are installed: a virtual environment at
# $CARGO_TARGET_DIR/ferry-py (outside the clone, reused between runs) holding exactly what
# scripts/python/requirements.txt pins, from PyPI. Schemathesis there drives the API
# contract test (crates/ferry-server/tests/it/contract.rs). Reinstalls when the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}"
venv="$target/ferry-py"
pins="scripts/python/requirements.txt"
stamp="$venv/.pins"

if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 is not installed: install Python 3.10 or newer and try again" >&2
  exit 1
fi
# What the environment was made from: the pins and the Python that made it.
want="$(python3 --version; cat "$pins")"
if [ -x "$venv/bin/schemathesis" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "== installing the Python test tools into $venv (pinned in $pins)"
rm -rf "$venv"
mkdir -p "$target"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$pins"
"$venv/bin/schemathesis" --version
# Written last: an install that failed half-way is made again next time.
printf '%s' "$want" >"$stamp"
