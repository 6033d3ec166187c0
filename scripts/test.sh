#!/usr/bin/env bash
# Set up and run the whole test suite: lint, import contracts, type check, then every test (unit, scenario, property, end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x scripts/install-externals.sh ]; then
  bash scripts/install-externals.sh
fi
bash scripts/postgres-up.sh        # a PostgreSQL server for the replica tests (tests/pgharness.py)
bash scripts/install-k8s-tools.sh   # helm, kubectl (kustomize) for tests/test_deploy.py
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports            # the architecture's import contracts (pyproject.toml)
.venv/bin/mypy                    # the type check (pyproject.toml [tool.mypy])
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
