#!/usr/bin/env bash
# Set up and run the service on its embedded defaults (SQLite in ./data, bundled rule pack,
# notifications to the log). Extra arguments go to `alert-router serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/alert-router serve "$@"
