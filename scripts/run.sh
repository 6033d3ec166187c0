#!/usr/bin/env bash
# Set up and run the service on its embedded defaults: http://127.0.0.1:9095, SQLite in ./data,
# the bundled rule pack, notifications to the log. Extra arguments go to `alert-router serve`.
#
#   bash scripts/run.sh --demo    the service on the example cluster, sent a recorded node-down
#                                 storm: an incident with its symptoms in the API within a minute
#                                 (extra arguments go to `alert-router demo`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--demo" ]; then
  shift
  exec .venv/bin/alert-router demo "$@"
fi
# A person reading a terminal gets plain lines; a pipe or a log collector keeps JSON.
if [ -t 2 ] && [ -z "${ALERT_ROUTER_LOGGING__FORMAT:-}" ]; then
  export ALERT_ROUTER_LOGGING__FORMAT=text
fi
exec .venv/bin/alert-router serve "$@"
