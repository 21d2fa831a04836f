"""The environment a skill subprocess (or the base skill's `exec`) gets: a safe set plus what it declares.

Why a filter at all: the runtime holds provider keys and everything from `.env` files in its private env map;
an MCP server is third-party code and must see none of it unless the Expert says so (`requiredEnv`). The
sets are Perstack's (`packages/core/src/utils/env-filter.ts`, shared/reference/perstack.md §2.9), plus the
CA-bundle variables so TLS keeps working behind an intercepting proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sandbox._errors import UserError

__all__ = ["PROTECTED_ENV_VARS", "SAFE_ENV_VARS", "filtered_env", "skill_env"]

SAFE_ENV_VARS: tuple[str, ...] = (
    "PATH",
    "HOME",
    "SHELL",
    "TERM",
    "NODE_PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "PERSTACK_PROXY_URL",
    "NPM_CONFIG_PROXY",
    "NPM_CONFIG_HTTPS_PROXY",
    # Not in Perstack's list: without them npx/uvx cannot verify TLS behind an intercepting proxy.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "LANG",
    "LC_ALL",
    "TMPDIR",
)

PROTECTED_ENV_VARS: frozenset[str] = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "NODE_PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "PERL5LIB",
        "RUBYLIB",
    }
)


def _is_protected(name: str) -> bool:
    return name.upper() in PROTECTED_ENV_VARS


def filtered_env(source: Mapping[str, str], additional: Mapping[str, str] | None = None) -> dict[str, str]:
    """The safe variables present in `source`, plus `additional` minus protected names (case-insensitive)."""
    env = {k: source[k] for k in SAFE_ENV_VARS if k in source and not source[k].startswith("()")}
    for key, value in (additional or {}).items():
        if not _is_protected(key):
            env[key] = value
    return env


def skill_env(skill_name: str, source: Mapping[str, str], required: Iterable[str]) -> dict[str, str]:
    """`filtered_env` for one skill; a missing `requiredEnv` is an error naming the skill."""
    extra: dict[str, str] = {}
    for name in required:
        if name not in source:
            raise UserError(f"Skill {skill_name} requires environment variable {name}")
        extra[name] = source[name]
    return filtered_env(source, extra)
