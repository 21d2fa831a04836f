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

# Agent CLIs for the multi-runtime tests, pinned to the versions the recorded streams come from.
# Project-local (.cache/clis), so nothing global changes; skipped when they are already there.
CLIS="@anthropic-ai/claude-code@2.1.197 @openai/codex@0.169.0 @google/gemini-cli@0.61.0 opencode-ai@1.18.33 @github/copilot@1.0.102"
if [ ! -f .cache/clis/.installed ] || [ "$(cat .cache/clis/.installed)" != "$CLIS" ]; then
  log "installing agent CLIs from npm"
  mkdir -p .cache/clis
  # shellcheck disable=SC2086
  npm install --prefix .cache/clis --no-audit --no-fund --loglevel=error $CLIS >/dev/null
  echo "$CLIS" > .cache/clis/.installed
fi

bash scripts/docker-engine.sh
bash scripts/base-image.sh
log "ready: $(.venv/bin/sandbox --version)"
