"""Runtime name resolution: `--runtime` beats perstack.toml, which beats the default `perstack`."""

from __future__ import annotations

from sandbox.config import RUNTIME_NAMES

from ._common import abort

__all__ = ["resolve_runtime"]

ALIASES = {"local": "perstack"}


def resolve_runtime(flag: str | None, from_file: str | None) -> str:
    """The canonical runtime id (`local` is an alias of `perstack`)."""
    name = flag or from_file or "perstack"
    if name not in RUNTIME_NAMES:
        import difflib

        close = difflib.get_close_matches(name, RUNTIME_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        abort(f"--runtime: unknown runtime {name!r} (one of {', '.join(RUNTIME_NAMES)}){hint}")
    return ALIASES.get(name, name)
