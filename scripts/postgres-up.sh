#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use runs: Debian's cluster (scripts/install-externals.sh
# installs the `postgresql` package), listening on 127.0.0.1:5432, where role `postgres` logs in
# with password `postgres` (a fresh install only allows it over the local socket: the script sets
# the password then). Idempotent and quiet; the tests create and drop a database of their own per
# test (tests/pgharness.py). Another server: set ALERT_ROUTER_TEST_POSTGRES to its admin URL and
# this script only checks that it answers.
set -euo pipefail
URL=${ALERT_ROUTER_TEST_POSTGRES:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}

answers() { psql "$URL" -qAtc 'SELECT 1' >/dev/null 2>&1; }

if answers; then
  exit 0
fi
if [ -n "${ALERT_ROUTER_TEST_POSTGRES:-}" ]; then
  echo "postgres-up: $ALERT_ROUTER_TEST_POSTGRES does not answer" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  echo "postgres-up: need root (or sudo) to start PostgreSQL" >&2
  exit 1
fi
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ]; then
  echo "postgres-up: no PostgreSQL cluster: run scripts/install-externals.sh first" >&2
  exit 1
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  ${SUDO[@]+"${SUDO[@]}"} pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.5
  done
fi
if ! answers; then
  # Listening, but the password login is refused: set it over the local socket, as postgres.
  ${SUDO[@]+"${SUDO[@]}"} su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
fi
if ! answers; then
  echo "postgres-up: PostgreSQL on 127.0.0.1:5432 does not accept $URL" >&2
  exit 1
fi
