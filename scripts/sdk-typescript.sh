#!/usr/bin/env bash
# The TypeScript SDK's checks (sdks/typescript). Its API types are generated from Ferry's
# OpenAPI document (`ferry openapi`, what GET /v1/openapi.json serves) by openapi-typescript,
# a common generator, installed from npm at the version package-lock.json pins. This checks
# that the committed src/openapi.ts is exactly what the current document generates, that
# the SDK type-checks with tsc (strict), and runs its tests (node's test runner) against a
# real `ferry serve` (the debug binary this script builds).
#   ./scripts/sdk-typescript.sh            check
#   ./scripts/sdk-typescript.sh --update   regenerate src/openapi.ts after an API change
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}"

if ! command -v npm >/dev/null 2>&1; then
  echo "Node.js and npm are not installed: install Node.js 18 or newer and try again" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo run --locked --quiet -p ferry -- openapi >"$work/openapi.json"

cd sdks/typescript
npm ci --no-audit --no-fund --loglevel=error
npx --no-install openapi-typescript "$work/openapi.json" --output "$work/openapi.ts" >/dev/null
if [ "${1:-}" = "--update" ]; then
  cp "$work/openapi.ts" src/openapi.ts
  echo "regenerated sdks/typescript/src/openapi.ts"
elif ! cmp -s "$work/openapi.ts" src/openapi.ts; then
  echo "sdks/typescript/src/openapi.ts is not what the API's document generates;" \
    "run ./scripts/sdk-typescript.sh --update and commit it. The difference:" >&2
  diff -u src/openapi.ts "$work/openapi.ts" | head -40 >&2 || true
  exit 1
fi
npx --no-install tsc --noEmit
npm run --silent build
FERRY_BIN="$CARGO_TARGET_DIR/debug/ferry" npm test
