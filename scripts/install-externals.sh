#!/usr/bin/env bash
# External programs the end-to-end tests run for real, from Debian's packages: Prometheus
# (topology discovery, second witness), Alertmanager (silences, deployment tests) and Chromium
# (the HTML timeline checked in a real browser). Idempotent: installs only what is missing.
set -euo pipefail
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want prometheus prometheus
want prometheus-alertmanager prometheus-alertmanager
want chromium chromium
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-externals: need root to install: ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
