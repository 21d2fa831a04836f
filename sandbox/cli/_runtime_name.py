"""Runtime name resolution: `--runtime` beats perstack.toml, which beats the default `perstack`.

Which names exist is the runtime registry's to say (`sandbox.runtimes._registry.canonical_runtime`), so a
plugin runtime registered through the `sandbox.runtimes` entry points runs like a built-in one, and the CLI,
perstack.toml's validation and the registry cannot disagree again.
"""

from __future__ import annotations

from sandbox.runtimes import canonical_runtime, runtime_names

from ._common import abort

__all__ = ["resolve_runtime"]


def resolve_runtime(flag: str | None, from_file: str | None) -> str:
    """The canonical runtime id (an alias such as `local`, of `perstack`, resolved)."""
    name = flag or from_file or "perstack"
    canonical = canonical_runtime(name)
    if canonical is None:
        import difflib

        names = runtime_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        abort(f"--runtime: unknown runtime {name!r} (one of {', '.join(names)}){hint}")
    return canonical
