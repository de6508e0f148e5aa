#!/usr/bin/env bash
# Runs every check and test of the workspace: the README's test command, and what CI runs.
# It installs and starts what the tests need (nothing outside Rust yet) and builds into a
# target dir outside the clone so repeated runs reuse it.
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

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
