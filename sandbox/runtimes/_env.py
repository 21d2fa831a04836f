"""The environment a CLI child gets: an allowlist, never the whole host environment.

Why: a CLI launched with everything `sandbox` can see would receive unrelated secrets (every API key in the
user's shell) and may pick the wrong credential (Codex prefers `OPENAI_API_KEY` over a ChatGPT login when
it is inherited). Markers that coding agents set for their own children are stripped, because a CLI that
sees them refuses to start or believes it is nested (Claude Code: "cannot be launched inside another
Claude Code session").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["BASE_ENV", "NESTING_MARKERS", "filter_env"]

BASE_ENV: frozenset[str] = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TERM",
        "COLORTERM",
        "NO_COLOR",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
        "XDG_RUNTIME_DIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "CI",
    }
)
"""Variables every CLI may see: where things are, how to reach the network, which locale."""

_BASE_PREFIXES = ("LC_",)

NESTING_MARKERS: frozenset[str] = frozenset(
    {
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SIMPLE",
        "CLAUDE_CODE_SSE_PORT",
        "CLAUDE_CODE_SESSION_ID",
        "CLAUDE_AGENT_SDK_VERSION",
        "CODEX_SANDBOX",
        "CODEX_SANDBOX_NETWORK_DISABLED",
        "CODEX_THREAD_ID",
        "GEMINI_CLI",
        "COPILOT_CLI",
        "COPILOT_AGENT_SESSION_ID",
        "OPENCODE",
        "OPENCODE_SESSION",
        "CURSOR_AGENT",
    }
)
"""Set by coding agents in the shells they spawn; a child CLI seeing them may refuse to start."""


def filter_env(
    source: Mapping[str, str],
    *,
    names: Iterable[str] = (),
    prefixes: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Keep `BASE_ENV`, `names` and variables starting with `prefixes`; drop nesting markers; add `extra`.

    `extra` wins over `source` and is never filtered: it is what the adapter itself decided to set.
    """
    wanted = BASE_ENV | frozenset(names)
    starts = _BASE_PREFIXES + tuple(prefixes)
    env = {
        key: value
        for key, value in source.items()
        if (key in wanted or key.startswith(starts)) and key not in NESTING_MARKERS
    }
    if extra:
        env.update(extra)
    return env
