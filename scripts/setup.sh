#!/usr/bin/env bash
# Set up a fresh machine for development and CI: Python venv with the project and its dev tools, a running
# Docker engine with Compose v2, and the offline base images. Idempotent: reruns skip what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check uv
fi
log "installing the project and dev tools"
.venv/bin/uv pip install --python .venv/bin/python -q -e '.[dev,all-providers]'

bash scripts/docker-engine.sh
bash scripts/base-image.sh
log "ready: $(.venv/bin/sandbox --version)"
