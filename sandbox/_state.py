"""Where this tool keeps what must outlive a process and stay out of every workspace: the user's state dir.

One rule for every record of that kind (accepted sandbox policies, the steering-file records of runs in
progress): `$XDG_STATE_HOME/sandbox`, default `~/.local/state/sandbox`, read from the process environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["state_dir"]


def state_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/sandbox` (default `~/.local/state/sandbox`) of the process environment `env`."""
    home = Path(env.get("HOME") or Path.home())
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "sandbox"
