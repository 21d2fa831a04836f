"""Workspace containment for the base skill: every path the model names must resolve inside the workspace.

Rules (Perstack's `validatePath`, shared/reference/perstack.md §2.11 item 19):
* the path is resolved against the workspace and `realpath`'d; the result must be the workspace or below it,
  so `..` and symlinked parents that lead out are refused;
* the final component may not itself be a symlink (`lstat`), in or out: what is read or written is what
  the model named;
* `<workspace>/perstack` (where job files live) is off limits, so an Expert cannot rewrite its own history.

Known limit: a check-then-use race (a symlink swapped in between) is possible, as in Perstack (SEC-002);
writes use `O_NOFOLLOW` on the final component to narrow it.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox._errors import ToolError

__all__ = ["PathDeniedError", "Workspace"]


class PathDeniedError(ToolError):
    """A path the base skill refuses to touch; the message is shown to the model."""


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._reserved = self.root / "perstack"

    def resolve(self, path: str, *, must_exist: bool = False, allow_root: bool = True) -> Path:
        if not isinstance(path, str) or not path or "\x00" in path:
            raise PathDeniedError("Path must be a non-empty string")
        candidate = Path(path)
        joined = candidate if candidate.is_absolute() else self.root / candidate
        if joined.is_symlink():
            raise PathDeniedError(f"Refusing symlink: {path}")
        real = Path(os.path.realpath(joined))
        if real != self.root and self.root not in real.parents:
            raise PathDeniedError(f"Path is outside the workspace: {path}")
        if real == self._reserved or self._reserved in real.parents:
            raise PathDeniedError(f"Path is reserved for job storage: {path}")
        if real == self.root and not allow_root:
            raise PathDeniedError("This operation is not allowed on the workspace root")
        if must_exist and not real.exists():
            raise PathDeniedError(f"No such file or directory: {path}")
        return real

    def relative(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return str(rel) or "."
