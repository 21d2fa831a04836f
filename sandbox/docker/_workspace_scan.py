"""After a run: what the Expert left in the workspace that a later host process could trip on.

The workspace is the one place where the Expert's writes outlive the sandbox, and the host's own tools
(a shell, an editor, `git`, a backup job, another user) read it next. Some kinds of entry are dangerous
to them rather than to the sandbox:

* set-uid/set-gid files: whoever runs one gets the Expert's uid (root's, when the Expert ran as root);
* device nodes (the Expert has no CAP_MKNOD, so only a kernel or engine bug would make one);
* FIFOs and sockets: a host tool that opens one blocks or talks to whatever the Expert left listening;
* symlinks pointing outside the workspace (`/etc/passwd`, `~/.ssh/authorized_keys`): harmless inside the
  sandbox, followed by host tools afterwards.

Set-id bits are removed (nothing else is touched: the workspace is left as the Expert left it); every
finding is one stderr line, bounded, plus a summary.

Cheap for big workspaces: one `lstat` per entry (`_walk.Walk`, which never follows symlinks), and only
entries whose ctime is at or after the run's start are considered. ctime is set by the kernel on every
change to an inode (create, chmod, rename, link) and cannot be set back by an unprivileged process, so an
entry the run created or changed cannot hide with an old ctime; an older entry is the user's own. Directories
cannot be pruned by ctime (a chmod deep in the tree changes only that file's ctime), so the walk visits
everything but does no work for old entries. The hidden job store (`perstack/`, the host's) is not entered:
the executor prunes it, with the run's own dir.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._walk import Walk

__all__ = ["Finding", "ScanReport", "report_lines", "scan_workspace"]

_SLACK_NS = 1_000_000_000
"""Filesystem timestamps come from a coarse clock (one tick, up to ~10 ms, behind `time.time_ns()`): entries
changed within a second before the run's start are scanned too, rather than missed."""

MAX_ENTRIES = 2_000_000
"""Stop walking after this many entries (then the summary says the scan was cut short)."""


@dataclass(frozen=True)
class Finding:
    """One entry worth a line: its path relative to the workspace, what it is, and what was done."""

    path: str
    kind: str  # "setuid", "setgid", "device", "fifo", "socket", "symlink-outside"
    detail: str = ""
    fixed: bool = False


@dataclass
class ScanReport:
    findings: list[Finding] = field(default_factory=list)
    scanned: int = 0
    truncated: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> int:
        return sum(1 for f in self.findings if f.fixed)


def _outside(root: str, link_dir: str, target: str) -> bool:
    """Whether a symlink's target, resolved lexically on the host, leaves `root` (never follows a link)."""
    resolved = os.path.normpath(os.path.join(link_dir, target))
    return not (resolved == root or resolved.startswith(root.rstrip("/") + "/"))


def _strip_setid(path: str, st: os.stat_result) -> bool:
    """Remove the set-uid/set-gid bits of the regular file at `path`, if it is still the file scanned."""
    mode = stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
                return False
            os.fchmod(fd, mode)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
    # Not readable by the host user (mode 4300, say): the container is gone, nothing swaps the entry now.
    try:
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            return False
        os.chmod(path, mode)
        return True
    except OSError:
        return False


def scan_workspace(
    workspace: Path,
    since_ns: int,
    *,
    prune: Iterable[str] = (),
    fix: bool = True,
    max_entries: int = MAX_ENTRIES,
) -> ScanReport:
    """Walk `workspace` (never following symlinks: `_walk.Walk`) for the entries above, changed at or after
    `since_ns`.

    `prune`: absolute directories not to enter (the run's own dir and the host's hidden ones, the job store
    among them). `fix`: remove set-id bits.
    """
    report = ScanReport()
    threshold = since_ns - _SLACK_NS
    walk = Walk(workspace, prune=prune, max_entries=max_entries)
    root = walk.root
    for directory, entry, st in walk:
        if st.st_ctime_ns < threshold:
            continue
        mode = st.st_mode
        rel = os.path.relpath(entry.path, root)
        # (A set-gid directory only makes new files inherit its group: not reported.)
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            kind = "setuid" if mode & stat.S_ISUID else "setgid"
            detail = f"mode {stat.S_IMODE(mode):04o}, owner {st.st_uid}:{st.st_gid}"
            fixed = fix and _strip_setid(entry.path, st)
            report.findings.append(Finding(rel, kind, detail, fixed))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            what = "char" if stat.S_ISCHR(mode) else "block"
            detail = f"{what} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            report.findings.append(Finding(rel, "device", detail))
        elif stat.S_ISFIFO(mode):
            report.findings.append(Finding(rel, "fifo"))
        elif stat.S_ISSOCK(mode):
            report.findings.append(Finding(rel, "socket"))
        elif stat.S_ISLNK(mode):
            target = ""
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
            if target and _outside(root, directory, target):
                report.findings.append(Finding(rel, "symlink-outside", f"-> {target!r}"))
    report.scanned, report.truncated = walk.visited, walk.truncated
    if walk.root_error is not None:
        report.errors.append(f"{root}: {walk.root_error.strerror}")
    return report


_WHAT = {
    "setuid": "a set-uid file",
    "setgid": "a set-gid file",
    "device": "a device node",
    "fifo": "a FIFO (named pipe)",
    "socket": "a Unix socket",
    "symlink-outside": "a symlink pointing outside the workspace",
}


def report_lines(report: ScanReport, *, limit: int = 20) -> list[str]:
    """One line per finding (at most `limit`), then a summary; nothing when there is nothing to say."""
    lines: list[str] = []
    for finding in report.findings[:limit]:
        detail = f" ({finding.detail})" if finding.detail else ""
        done = "; set-id bits removed" if finding.fixed else ""
        lines.append(f"sandbox: workspace: {finding.path!r} is {_WHAT[finding.kind]}{detail}{done}")
    if len(report.findings) > limit:
        lines.append(f"sandbox: workspace: ... and {len(report.findings) - limit} more")
    if report.findings:
        kinds = sorted({f.kind for f in report.findings})
        lines.append(
            f"sandbox: the run left {len(report.findings)} item(s) in the workspace that a host process "
            f"could trip on ({', '.join(kinds)}); set-id bits removed from {report.fixed} file(s)"
        )
    if report.truncated:
        lines.append(f"sandbox: workspace scan stopped after {MAX_ENTRIES} entries; the rest was not checked")
    return lines
