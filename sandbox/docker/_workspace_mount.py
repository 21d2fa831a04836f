"""A nosuid,nodev view of the workspace for the Expert's bind mount, made on the host when it can be.

Docker cannot mount a bind nosuid or nodev: the API's bind options are read-only and propagation only, and
the `local` volume driver's `type=none,o=bind,nosuid,nodev` passes the flags to one `mount(2)` call with
MS_BIND, where the kernel ignores every flag but MS_REC (moby/sys/mount remounts only to apply `ro`);
/proc/self/mountinfo inside such a container shows `rw,relatime`. A bind mount does inherit the per-mount
flags of the mount it copies, though. So when this process may mount (root on the host), it bind-mounts the
workspace at `<run dir>/workspace`, remounts that nosuid,nodev (keeping its other flags), and that path is
what compose.yaml binds to `/workspace`; inside, mountinfo shows `rw,nosuid,nodev,...`. Submounts of the
workspace are remounted the same way.

When this process may not mount (an ordinary user), the Expert runs as that user: a set-uid bit it sets
makes a file run as that same user, and without CAP_MKNOD it cannot create a device node. The host's scan
after the run (`_workspace_scan`) removes set-id bits in every case.

Removal: a run dir holding this mount must never be deleted recursively while mounted (that would delete the
user's workspace through it), so every removal of a run dir goes through `release_mounts` first, which
detaches every mount under it and says whether any is left.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

__all__ = ["can_mount", "mounts_under", "nosuid_workspace", "release_mounts"]

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8
# statvfs() reports a mount's flags with the same bits (ST_RDONLY = MS_RDONLY, ...) except relatime.
_ST_RELATIME = 4096
_KEEP = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME


@functools.cache
def _c() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount(source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source is not None else None
    if _c().mount(src, target.encode(), None, ctypes.c_ulong(flags), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _umount(target: str) -> bool:
    return bool(_c().umount2(target.encode(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0)


def can_mount() -> bool:
    """Whether this process may make the mount: root on the host (not merely uid 0 in a user namespace
    without CAP_SYS_ADMIN, where `mount` fails and the fallback applies)."""
    return os.geteuid() == 0


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 4 <= len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this process's mount namespace, deepest first."""
    root = os.path.realpath(path)
    found: list[str] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == root or point.startswith(root.rstrip("/") + "/"):
            found.append(point)
    return sorted(found, key=lambda p: (p.count("/"), len(p)), reverse=True)


def _remount_nosuid(point: str) -> None:
    flags = os.statvfs(point).f_flag
    keep = flags & _KEEP
    if flags & _ST_RELATIME:
        keep |= MS_RELATIME
    _mount(None, point, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | keep)


def nosuid_workspace(workspace: Path, run_dir: Path, *, name: str = "workspace") -> Path | None:
    """Bind-mount `workspace` at `run_dir/name`, nosuid,nodev; that path, or None when not possible.

    Raises OSError only when the mount was made but could not be made nosuid (it is released first).
    """
    if not can_mount():
        return None
    target = run_dir / name
    target.mkdir(mode=0o700)
    try:
        _mount(str(workspace), str(target), MS_BIND | MS_REC)
    except OSError:
        target.rmdir()
        return None
    try:
        for point in mounts_under(target):
            _remount_nosuid(point)
    except OSError:
        release_mounts(run_dir)
        raise
    return target


def release_mounts(path: Path) -> bool:
    """Detach every mount at or below `path`; True when none is left (then `path` may be removed)."""
    for point in mounts_under(path):
        _umount(point)
    return not mounts_under(path)
