"""The one walk of a workspace the host makes itself: the quota's confirming walk (`_quota.written_since`,
while the Expert runs) and the leftover scan (`_workspace_scan.scan_workspace`, after it).

Why not `os.walk` or `Path.rglob`, and why one copy: the tree is the Expert's, so the walk must not be
something the Expert can steer, and both callers need the same guarantees.

* **No symlink is followed.** Every entry is `lstat`ed once (`DirEntry.stat(follow_symlinks=False)`),
  and only real directories are entered: a link the Expert planted (to `/`, to the host user's home, to
  its own parent) cannot lead the host out of the workspace or round a loop. The caller gets that
  `lstat`, so it never stats an entry again (and cheaply: one system call per entry, nothing more).
* **Bounded.** `prune` keeps the walk out of host directories inside the workspace (the run's own dir, the
  job store); `max_entries` stops it after that many entries and sets `truncated`, for the caller to say
  so (None: no bound, for the quota, whose walk must see every byte).
* **Errors tolerated.** The Expert may delete, rename or `chmod 000` entries while the walk runs (it does
  run during the quota's), so a directory that cannot be listed and an entry gone before its `lstat` are
  skipped, never raised. Only a root that cannot be listed is kept (`root_error`): then nothing at all was
  walked, which the leftover scan reports and the quota ignores (the per-file bound still holds).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["Walk"]


class Walk:
    """Iterating yields `(directory, entry, lstat)` for every entry under `root`, depth first.

    `root` is resolved once (`os.path.realpath`) and every path yielded is under it; `prune` entries are
    resolved the same way and compared with each directory's path. `visited` counts the entries seen
    (those whose `lstat` failed too); once it passes `max_entries`, the walk stops with `truncated` set.
    """

    def __init__(
        self, root: str | Path, *, prune: Iterable[str | Path] = (), max_entries: int | None = None
    ) -> None:
        self.root = os.path.realpath(root)
        self.pruned = frozenset(os.path.realpath(p) for p in prune)
        self.max_entries = max_entries
        self.visited = 0
        self.truncated = False
        self.root_error: OSError | None = None

    def __iter__(self) -> Iterator[tuple[str, os.DirEntry[str], os.stat_result]]:
        stack = [self.root]
        while stack:
            directory = stack.pop()
            try:
                entries = os.scandir(directory)
            except OSError as exc:
                if directory == self.root:
                    self.root_error = exc
                continue
            with entries:
                for entry in entries:
                    self.visited += 1
                    if self.max_entries is not None and self.visited > self.max_entries:
                        self.truncated = True
                        return
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode) and entry.path not in self.pruned:
                        stack.append(entry.path)
                    yield directory, entry, st
