#!/usr/bin/env bash
# Run the example Expert (examples/time-keeper) in the Docker sandbox and summarise what it did.
# With ANTHROPIC_API_KEY (environment or examples/time-keeper/.env) the real provider answers; without one the
# package's scripted model server does, reached only through the sandbox's proxy (scripts/demo.py says which).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/demo.py "$@"
