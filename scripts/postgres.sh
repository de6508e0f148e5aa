#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests: starts the
# installed cluster when it is stopped, installs Debian's postgresql when it is missing
# (as root), and on a fresh install gives the postgres role a password so tests can log in
# over TCP (the URL is written to $CARGO_TARGET_DIR/ferry-test-postgres-url).
set -euo pipefail

url="${FERRY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
out="${CARGO_TARGET_DIR:-/var/tmp/ferry-target}/ferry-test-postgres-url"

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
can_login() { psql "$1" -tAc 'select 1' >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed: run 'sudo apt-get install postgresql' and try again" >&2
    exit 1
  fi
  echo "== installing PostgreSQL (Debian's postgresql)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! ready; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "== starting PostgreSQL $version"
  if [ "$(id -u)" = 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    pg_ctlcluster "$version" main start || true
  fi
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi

mkdir -p "$(dirname "$out")"
if can_login "$url"; then
  echo "$url" > "$out"
  exit 0
fi
# A fresh Debian install asks for a password over TCP: give the postgres role one.
if [ "$(id -u)" = 0 ]; then
  su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
  url="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  if can_login "$url"; then
    echo "$url" > "$out"
    exit 0
  fi
fi
echo "cannot log in to PostgreSQL at 127.0.0.1:5432 as postgres; set FERRY_TEST_POSTGRES_URL" >&2
exit 1
