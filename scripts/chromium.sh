#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium (or $FERRY_CHROMIUM) for the browser
# worker and its tests: installs the `chromium` package when it is missing and this runs as
# root; otherwise says the exact command. Nothing is downloaded at run time by Ferry itself.
set -euo pipefail

chromium="${FERRY_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Chromium is not installed: run 'sudo apt-get install chromium' and try again" >&2
  exit 1
fi
echo "== installing Chromium (Debian's chromium)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$chromium" --version
