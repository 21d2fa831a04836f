#!/usr/bin/env bash
# The project's checks, in the order that fails fastest: lint, types, then every test (unit and docker).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not docker"` for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
export SANDBOX_TEST_BASE_IMAGE="${SANDBOX_TEST_BASE_IMAGE:-sandbox-base:bookworm}"
export SANDBOX_TEST_NODE_IMAGE="${SANDBOX_TEST_NODE_IMAGE:-sandbox-node:22}"
echo "== ruff"
.venv/bin/ruff check sandbox tests bench
.venv/bin/ruff format --check sandbox tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -p no:cacheprovider "$@"
