#!/usr/bin/env bash
# Runs every check and test of the workspace: the README's test command, and what CI runs.
# It makes sure PostgreSQL runs on 127.0.0.1:5432 (starting it, or installing it from
# Debian's packages when run as root) and that Debian's Chromium (the browser tests drive it),
# Prometheus (the metrics tests scrape with it) and the pinned Python tools (Schemathesis, for
# the API contract test) are installed, and builds into a target dir outside the clone so
# repeated runs reuse it. Last, the SDKs: the TypeScript SDK's generated types are checked
# against the API's OpenAPI document and type-checked, and both SDKs' tests run against a
# real server (Node.js and npm; the pinned Python tools). The store conformance suite runs on SQLite and PostgreSQL in one
# pass; the server-level suites (API, worker runtime) run once per backend.
#
# Every stage runs even when an earlier one failed, and every test runs even when another
# failed (--no-fail-fast). The end is one summary line, e.g.
#   == summary: 412 passed, 0 failed, 0 ignored (fmt ok, clippy ok)
# preceded by the names of the tests that failed; the exit status is non-zero if anything did.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Keep test output readable; set FERRY_LOG=debug to see the servers' logs.
export FERRY_LOG="${FERRY_LOG:-warn}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi

./scripts/postgres.sh
./scripts/chromium.sh
./scripts/prometheus.sh
./scripts/python.sh
# postgres.sh may have given a fresh install a password; it says which URL to use.
if [ -f "${CARGO_TARGET_DIR}/ferry-test-postgres-url" ]; then
  export FERRY_TEST_POSTGRES_URL="${FERRY_TEST_POSTGRES_URL:-$(cat "${CARGO_TARGET_DIR}/ferry-test-postgres-url")}"
fi

# From here on a failing stage is recorded and the next one still runs.
set +e
logs="${CARGO_TARGET_DIR}/ferry-test-logs"
rm -rf "$logs" && mkdir -p "$logs"
notes=()       # fmt and clippy as "fmt ok"; other stages only when they failed oddly
failed_any=0

# stage NAME COMMAND...: runs COMMAND with its output on the terminal; its standard output
# (where test results go) is also kept in a log the summary is counted from. Cargo's
# progress is on standard error, which is left alone.
stage() {
  local name="$1"
  shift
  local out="$logs/$(printf '%02d' "${#stage_names[@]}").log"
  stage_names+=("$name")
  echo "== $name"
  "$@" | tee "$out"
  local status="${PIPESTATUS[0]}"
  local failures
  failures="$(grep -c '^test result: FAILED' "$out")"
  case "$name" in
    fmt | clippy) [ "$status" -eq 0 ] && notes+=("$name ok") || notes+=("$name FAILED") ;;
    *) [ "$status" -ne 0 ] && [ "$failures" -eq 0 ] && notes+=("$name FAILED: see its output") ;;
  esac
  [ "$status" -eq 0 ] || failed_any=1
}
stage_names=()

stage fmt cargo fmt --all -- --check
stage clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# SQLite; the store conformance suite on SQLite and PostgreSQL.
stage "tests" cargo test --workspace --all-targets --locked --no-fail-fast
stage "tests on PostgreSQL" env FERRY_TEST_BACKEND=postgres \
  cargo test --locked -p ferry-server -p ferry-worker --all-targets --no-fail-fast
stage "doc tests" cargo test --workspace --doc --locked --no-fail-fast
# The TypeScript SDK: types generated from the API's document, up to date and type-checked.
stage "TypeScript SDK" ./scripts/sdk-typescript.sh
# The Python SDK: its tests against a real server.
stage "Python SDK" ./scripts/sdk-python.sh

# Sum libtest's lines: `test result: ok. 12 passed; 0 failed; 1 ignored; ...`.
read -r passed failed ignored < <(
  cat "$logs"/*.log |
    sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 \2 \3/p' |
    awk '{p += $1; f += $2; i += $3} END {print p + 0, f + 0, i + 0}'
)
if [ "$failed" -gt 0 ]; then
  echo "== failed tests:"
  cat "$logs"/*.log | sed -n 's/^test \(.*\) \.\.\. FAILED$/   \1/p'
fi
note=""
for n in "${notes[@]}"; do note="${note:+$note, }$n"; done
echo "== summary: $passed passed, $failed failed, $ignored ignored ($note)"
[ "$failed_any" -eq 0 ] && [ "$failed" -eq 0 ]
