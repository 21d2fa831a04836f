"""Whether a process that recorded itself (host name, pid, the pid's start time) still runs.

Why the start time: pids are recycled; a record naming pid 4242 must not be taken for alive because some
other process now has that pid. Shared by the docker executor's leftover rule (`docker._labels`) and the
steering-file records (`sandbox.steering_guard`), which both outlive the process that wrote them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["current_owner", "proc_start", "proc_stat", "process_alive"]


def proc_stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/<pid>/stat (Linux); empty when there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # The command name (field 2) may contain spaces and parentheses, so split after the last ')'.
    return stat.rsplit(")", 1)[-1].split()


def proc_start(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (Linux), which tells a recycled pid apart."""
    fields = proc_stat(pid)
    return fields[19] if len(fields) > 19 else None  # field 22


def current_owner() -> tuple[str, int, str]:
    """(host name, pid, start time) of this process."""
    pid = os.getpid()
    return socket.gethostname(), pid, proc_start(pid) or ""


def process_alive(host: str, pid: int, start: str) -> bool:
    """Whether that process still runs (on this host; other hosts' processes are presumed alive)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = proc_stat(pid)
    if fields and fields[0] == "Z":
        return False  # exited; only its parent has not collected it yet
    recycled = bool(start) and len(fields) > 19 and fields[19] != start
    return not recycled
