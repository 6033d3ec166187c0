#!/usr/bin/env bash
# Install the external programs the end-to-end tests drive (Debian/Ubuntu packages).
# Idempotent and quiet: a package whose program is already there is skipped, and apt runs (once)
# only when something is missing. To add one, add a line "PROGRAM PACKAGE" to PACKAGES.
set -euo pipefail

# program (path or name on PATH)   Debian package
PACKAGES="
/usr/bin/chromium    chromium
/usr/bin/prometheus  prometheus
/usr/bin/prometheus-alertmanager  prometheus-alertmanager
/usr/bin/pg_ctlcluster  postgresql
"

missing=()
while read -r program package; do
  [ -n "${program:-}" ] || continue
  if [ ! -x "$program" ] && ! command -v "$program" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done <<<"$PACKAGES"

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  echo "install-externals: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-externals: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# ${SUDO[@]+...}: an empty array is "unbound" to `set -u` in older bash.
${SUDO[@]+"${SUDO[@]}"} apt-get -o DPkg::Lock::Timeout=600 update -qq
${SUDO[@]+"${SUDO[@]}"} apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
