"""Who the Expert runs as: the invoking user, but never root unless root asked for it in a way the Expert
cannot forge.

Why this matters: the Expert's uid is the owner of everything it writes into the host's workspace. As uid 0
(even without capabilities) it can leave a set-uid-root binary there (`chmod 4755` on a file it owns needs
no capability), read the image's root-only files, and own files that the host's root then trusts. So when
the invoker is root:

* the Expert runs as the owner of the workspace directory when that is not root (`sudo sandbox run` in a
  user's project behaves as that user would);
* otherwise the run refuses with one line, unless root opted in explicitly: `SANDBOX_USER=0:0` (or any
  uid:gid) **in the process environment**. The env map a run gets also holds the env files (`.env` in the
  workspace, which the Expert may have written on an earlier run), so the root opt-in is checked against
  `os.environ` itself, never against that map.

Embedders and tests choose a user explicitly with `DockerSettings(uid=..., gid=...)`; that wins.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sandbox._errors import UserError

__all__ = ["UserChoice", "resolve_user"]


@dataclass(frozen=True)
class UserChoice:
    """The uid:gid the Expert runs as and why (`explicit`, `override`, `invoker`, `workspace-owner`)."""

    uid: int
    gid: int
    why: str


def _parse(text: str) -> tuple[int, int]:
    text_uid, _, text_gid = text.partition(":")
    if not text_uid.isdigit() or (text_gid and not text_gid.isdigit()):
        raise UserError(f"SANDBOX_USER={text!r}: expected UID or UID:GID (numbers)")
    return int(text_uid), int(text_gid or text_uid)


def _owner_group(uid: int, gid: int) -> int:
    """The workspace's group, unless that is root's: then the owner's primary group (or the uid), so the
    Expert never holds gid 0 by default (a set-gid-root file, root-group-readable files in the image)."""
    if gid != 0:
        return gid
    try:
        primary = pwd.getpwuid(uid).pw_gid
    except KeyError:
        primary = 0
    return primary or uid


def resolve_user(
    uid: int | None,
    gid: int | None,
    env: Mapping[str, str],
    workspace: Path,
    *,
    invoker: tuple[int, int] | None = None,
    process_env: Mapping[str, str] | None = None,
) -> UserChoice:
    """The Expert's uid:gid (see the module docstring). Raises UserError (one line) when root would run it.

    `invoker` and `process_env` default to this process's ids and `os.environ` (tests pass their own).
    """
    if uid is not None and gid is not None:
        return UserChoice(uid, gid, "explicit")
    process = os.environ if process_env is None else process_env
    me = (os.getuid(), os.getgid()) if invoker is None else invoker
    override = env.get("SANDBOX_USER")
    if override:
        o_uid, o_gid = _parse(override)
        chosen = (o_uid if uid is None else uid, o_gid if gid is None else gid)
        if chosen[0] != 0 or process.get("SANDBOX_USER") == override:
            return UserChoice(*chosen, "override")
        raise UserError(
            f"SANDBOX_USER={override!r} comes from an env file, which the Expert can write: to run the "
            "Expert as root, set SANDBOX_USER in the process environment"
        )
    if uid is not None or gid is not None:
        return UserChoice(me[0] if uid is None else uid, me[1] if gid is None else gid, "explicit")
    if me[0] != 0:
        return UserChoice(*me, "invoker")
    try:
        st = workspace.stat()
    except OSError:
        st = None
    if st is not None and st.st_uid != 0:
        return UserChoice(st.st_uid, _owner_group(st.st_uid, st.st_gid), "workspace-owner")
    raise UserError(
        f"refusing to run the Expert as root: you are root and the workspace {workspace} is root's; run "
        "sandbox as an ordinary user, or set SANDBOX_USER=UID:GID in the environment (0:0 to run it as root)"
    )
