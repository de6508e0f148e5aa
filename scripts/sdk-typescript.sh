#!/usr/bin/env bash
# The TypeScript SDK's checks (sdks/typescript). Its API types are generated from Ferry's
# OpenAPI document (`ferry openapi`, what GET /v1/openapi.json serves) by openapi-typescript,
# a common generator, installed from npm at the version package-lock.json pins. This checks
# that the committed src/openapi.d.ts is exactly what the current document generates and
# that the SDK type-checks with tsc (strict).
#   ./scripts/sdk-typescript.sh            check
#   ./scripts/sdk-typescript.sh --update   regenerate src/openapi.d.ts after an API change
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
npx --no-install openapi-typescript "$work/openapi.json" --output "$work/openapi.d.ts" >/dev/null
if [ "${1:-}" = "--update" ]; then
  cp "$work/openapi.d.ts" src/openapi.d.ts
  echo "regenerated sdks/typescript/src/openapi.d.ts"
elif ! cmp -s "$work/openapi.d.ts" src/openapi.d.ts; then
  echo "sdks/typescript/src/openapi.d.ts is not what the API's document generates;" \
    "run ./scripts/sdk-typescript.sh --update and commit it. The difference:" >&2
  diff -u src/openapi.d.ts "$work/openapi.d.ts" | head -40 >&2 || true
  exit 1
fi
npx --no-install tsc --noEmit
echo "TypeScript SDK: the generated types match the API's document and type-check"
