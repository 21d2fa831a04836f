#!/usr/bin/env bash
# Run the example Expert in the Docker sandbox with this machine's offline images and CA bundle.
set -euo pipefail
cd "$(dirname "$0")/../examples/time-keeper"
exec ../../.venv/bin/sandbox run time-keeper "What time is it in Tokyo right now? Also add 2 and 3." \
  --runtime docker \
  --base-image "${SANDBOX_BASE_IMAGE:-sandbox-base:bookworm}" \
  --node-image "${SANDBOX_NODE_IMAGE:-sandbox-node:22}" \
  ${SSL_CERT_FILE:+--ca-cert "$SSL_CERT_FILE"} "$@"
