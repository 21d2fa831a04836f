#!/usr/bin/env bash
# Run the example Expert in the Docker sandbox with this machine's offline images and CA bundle.
# The Expert gets a workspace of its own (not the example's directory, where perstack.toml and the key's .env
# live), owned by an ordinary user: as root, `sandbox run` never starts the Expert as root by default.
set -euo pipefail
cd "$(dirname "$0")/../examples/time-keeper"
workspace="${SANDBOX_DEMO_WORKSPACE:-$(cd ../.. && pwd)/.cache/demo-workspace}"
mkdir -p "$workspace"
if [ "$(id -u)" = 0 ] && [ -z "${SANDBOX_USER:-}" ]; then
  chown 1000:1000 "$workspace"
fi
exec ../../.venv/bin/sandbox run time-keeper "What time is it in Tokyo right now? Also add 2 and 3." \
  --runtime docker \
  --workspace "$workspace" \
  --base-image "${SANDBOX_BASE_IMAGE:-sandbox-base:bookworm}" \
  --node-image "${SANDBOX_NODE_IMAGE:-sandbox-node:22}" \
  ${SSL_CERT_FILE:+--ca-cert "$SSL_CERT_FILE"} "$@"
