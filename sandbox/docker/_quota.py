"""The workspace write limit (`--workspace-quota`, `[sandbox].workspaceQuota`, default 10g).

Two bounds, because no single one is both kernel-enforced and total on a stock Docker host:

* **Per file, by the kernel:** the Expert's container gets RLIMIT_FSIZE = the quota (compose `ulimits:
  fsize`). A write or truncate past it fails with EFBIG (or SIGXFSZ kills a process that does not ignore
  it). This holds with no host process watching. Docker's own quota tooling does not help here: the
  workspace is a bind mount, not a volume on the storage driver, and overlay2's `--storage-opt size` (xfs
  pquota) bounds only the container's own layer, which is read-only anyway.
* **In total, by the host:** `QuotaWatcher` samples the free space of the workspace's filesystem
  (`statvfs`, one system call) every 0.1 s and stops the run once the filesystem lost more than the
  limit since just before the Expert started. The limit is the quota, or half the free space at that moment
  when that is less, so a run never fills the host's disk. Overshoot: what is written between two samples
  plus the kill (at 1 GB/s, about 0.1-0.2 GB). Anything else writing to the same filesystem meanwhile counts
  too (the measure errs on the side of stopping), and space freed by the Expert deleting files offsets it.

Why not measure the workspace itself: summing a big tree's sizes costs a walk per sample; free space costs
nothing and bounds exactly what matters, the host's disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.config._validators import size_bytes

__all__ = ["QuotaWatcher", "format_size", "size_bytes"]


def format_size(n: int) -> str:
    for unit, factor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f}{unit}".replace(".0", "")
    return f"{n}b"


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
    interval: float = 0.1
    limit: int = 0
    grown: int = 0
    exceeded: bool = False
    capped_by_free_space: bool = False

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = 0

    def start(self) -> None:
        """Take the baseline now (just before the Expert starts) and watch in a daemon thread."""
        try:
            self._base, free = _used(self.workspace)
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
            used, _ = _used(self.workspace)
        except OSError:
            return False
        self.grown = max(self.grown, used - self._base)
        if self.grown > self.limit and not self.exceeded:
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
