"""The workspace write limit (`--workspace-quota`, `[sandbox].workspaceQuota`, default 10g).

Two bounds, because no single one is both kernel-enforced and total on a stock Docker host:

* **Per file, by the kernel:** the Expert's container gets RLIMIT_FSIZE = the quota (compose `ulimits:
  fsize`). A write or truncate past it fails with EFBIG (or SIGXFSZ kills a process that does not ignore
  it). This holds with no host process watching. Docker's own quota tooling does not help here: the
  workspace is a bind mount, not a volume on the storage driver, and overlay2's `--storage-opt size` (xfs
  pquota) bounds only the container's own layer, which is read-only anyway.
* **In total, by the host:** `QuotaWatcher` stops the run once the workspace grew by more than the limit
  since just before the Expert started. The limit is the quota, or half the free space on the workspace's
  filesystem at that moment when that is less, so a run never fills the host's disk. Measuring is two-step
  so it stays cheap for big workspaces on a busy disk: every 0.1 s the filesystem's used space (`statvfs`,
  one system call); only when that grew by more than the limit (anything on the host may have written),
  a walk of the workspace summing the blocks of regular files whose ctime is at or after the start (each
  inode once; a write sets ctime, which cannot be set back) confirms that the run itself wrote that much.
  Confirming walks run at most once a second (more rarely when a walk is slow). Overshoot: what is written
  between two samples plus the kill, and up to a confirming interval more on a disk others are filling (at
  1 GB/s, about 0.1-0.2 GB, or ~1 GB then). A pre-existing file rewritten in place counts whole.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._walk import Walk

__all__ = ["QuotaWatcher", "format_size", "written_since"]


def format_size(n: int) -> str:
    for unit, factor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f}{unit}".replace(".0", "")
    return f"{n}b"


def written_since(workspace: Path, since_ns: int, *, prune: Iterable[str] = ()) -> int:
    """Bytes in blocks of the regular files under `workspace` changed at or after `since_ns` (each inode
    once, symlinks never followed, absolute directories in `prune` not entered: `_walk.Walk`)."""
    total, seen = 0, set()
    for _directory, _entry, st in Walk(workspace, prune=prune):
        if stat.S_ISREG(st.st_mode) and st.st_ctime_ns >= since_ns:
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total


def _used(path: Path) -> tuple[int, int]:
    """(bytes used, bytes free to unprivileged users) on the filesystem holding `path`."""
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize


@dataclass
class QuotaWatcher:
    """Stops the run (`on_exceeded`) once the workspace's filesystem grew by more than the limit."""

    workspace: Path
    quota: int
    on_exceeded: Callable[[], None]
    since_ns: int = 0
    prune: tuple[str, ...] = ()
    interval: float = 0.1
    usage: Callable[[Path], tuple[int, int]] = field(default=_used)
    limit: int = 0
    grown: int = 0
    exceeded: bool = False
    capped_by_free_space: bool = False

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = 0
        self._next_walk = 0.0

    def start(self) -> None:
        """Take the baseline now (just before the Expert starts) and watch in a daemon thread."""
        try:
            self._base, free = self.usage(self.workspace)
        except OSError:
            return  # nothing to measure against: the per-file bound still holds
        self.limit = self.quota
        if free // 2 < self.quota:
            self.limit, self.capped_by_free_space = free // 2, True
        self._thread = threading.Thread(target=self._watch, name="sandbox-quota", daemon=True)
        self._thread.start()

    def check(self) -> bool:
        """One sample; True (and `on_exceeded` called once) when the limit is passed."""
        try:
            used, _ = self.usage(self.workspace)
        except OSError:
            return False
        if used - self._base <= self.limit or self.exceeded:
            return self.exceeded
        now = time.monotonic()
        if now < self._next_walk:
            return False
        written = written_since(self.workspace, self.since_ns, prune=self.prune)
        took = time.monotonic() - now
        self._next_walk = time.monotonic() + max(1.0, 10 * took)
        self.grown = max(self.grown, written)
        if written > self.limit:
            self.exceeded = True
            self.on_exceeded()
        return self.exceeded

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if self.check():
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def message(self) -> str:
        """The one line a stopped run prints."""
        if self.capped_by_free_space:
            what = (
                f"half the free space on its filesystem at the start ({format_size(self.limit)}, below the "
                f"quota of {format_size(self.quota)})"
            )
        else:
            what = f"its quota of {format_size(self.limit)}"
        return (
            f"sandbox: the run was stopped: the workspace grew by more than {what}; nothing was deleted. "
            "Raise it with --workspace-quota SIZE or [sandbox] workspaceQuota (or free disk space)"
        )
