"""The defaults table: what a run uses when neither the command line nor perstack.toml says.

Why a module of its own that imports nothing: every runtime reads these (through `sandbox.settings`, which
applies them), never as literals of its own, and the Expert container's entry (`sandbox.container_entry`)
needs the provider default before pydantic and the config models have loaded, to start the provider's
imports early. The public names are `sandbox.config`'s (`DEFAULT_MODEL`, ...) and `sandbox.settings`'s.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CLI_TIMEOUT_MS",
    "DEFAULT_ENV_PATH",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MODEL",
    "DEFAULT_PERSTACK_API_BASE_URL",
    "DEFAULT_PROVIDER",
    "DEFAULT_REASONING_BUDGET",
    "DEFAULT_TIMEOUT_MS",
]

DEFAULT_PROVIDER = "anthropic"
DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_MAX_STEPS = 100
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT_MS = 5 * 60 * 1000
"""Per generation (Perstack's `timeout`)."""
DEFAULT_CLI_TIMEOUT_MS = 30 * 60 * 1000
"""A CLI runtime's whole run (`--timeout`): the CLIs have no wall-clock limit of their own."""
DEFAULT_REASONING_BUDGET = "low"
DEFAULT_ENV_PATH = (".env", ".env.local")
DEFAULT_PERSTACK_API_BASE_URL = "https://api.perstack.ai"
