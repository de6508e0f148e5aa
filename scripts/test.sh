#!/usr/bin/env bash
# Runs every check and test of the workspace: the README's test command, and what CI runs.
# It makes sure PostgreSQL runs on 127.0.0.1:5432 (starting it, or installing it from
# Debian's packages when run as root) and that Debian's Chromium is installed (the browser
# tests drive it), and builds into a target dir outside the clone so
# repeated runs reuse it. The store conformance suite runs on SQLite and PostgreSQL in one
# pass; the server-level suites (API, worker runtime) run once per backend.
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
# postgres.sh may have given a fresh install a password; it says which URL to use.
if [ -f "${CARGO_TARGET_DIR}/ferry-test-postgres-url" ]; then
  export FERRY_TEST_POSTGRES_URL="${FERRY_TEST_POSTGRES_URL:-$(cat "${CARGO_TARGET_DIR}/ferry-test-postgres-url")}"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (SQLite; the store conformance suite on SQLite and PostgreSQL)"
cargo test --workspace --all-targets --locked

echo "== cargo test (server and worker suites on PostgreSQL)"
FERRY_TEST_BACKEND=postgres cargo test --locked -p ferry-server -p ferry-worker --all-targets

cargo test --workspace --doc --locked
