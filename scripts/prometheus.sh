#!/usr/bin/env bash
# Makes sure Debian's Prometheus (`prometheus` and `promtool`) is installed for the metrics
# tests: they start a real Prometheus that scrapes a test server, and check the exposition
# with `promtool check metrics`. Installs the `prometheus` package when it is missing and
# this runs as root (its service is not started: the tests run their own); otherwise says
# the exact command.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Prometheus is not installed: run 'sudo apt-get install prometheus' and try again" >&2
  exit 1
fi
echo "== installing Prometheus (Debian's prometheus)"
apt-get update -qq
# A policy-rc.d keeps the package from starting its own service (one already there stays).
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
prometheus --version | head -1
