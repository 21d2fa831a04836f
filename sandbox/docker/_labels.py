"""Labels on everything this tool creates, and the rule that decides what is a leftover.

Why labels carry an owner: teardown runs on every normal path, but a host process killed with SIGKILL (or a
machine that loses power) cannot clean up. Each container, network and temp dir therefore records who made it
(host name, pid and that pid's start time, so a recycled pid is not mistaken for the owner) and a deadline
(creation + the run's wall-clock guard + a grace period). The next run, or `sandbox clean`, removes what
belongs to a dead owner or has outlived its deadline, and never touches a live run's objects.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sandbox._owner import proc_start, proc_stat, process_alive

__all__ = [
    "CREATED_LABEL",
    "DEADLINE_LABEL",
    "HOST_LABEL",
    "JOB_LABEL",
    "OWNER_LABEL",
    "ROLE_LABEL",
    "RUN_LABEL",
    "TOOL_LABEL",
    "TOOL_NAME",
    "Owner",
    "is_leftover",
    "owner_alive",
    "owner_labels",
    "run_labels",
]

TOOL_LABEL = "sandbox.tool"
TOOL_NAME = "perstack-sandbox"
RUN_LABEL = "sandbox.run"
JOB_LABEL = "sandbox.job"
CREATED_LABEL = "sandbox.created"
DEADLINE_LABEL = "sandbox.deadline"
HOST_LABEL = "sandbox.host"
OWNER_LABEL = "sandbox.owner"
ROLE_LABEL = "sandbox.role"


_proc_stat = proc_stat
_proc_start = proc_start


@dataclass(frozen=True)
class Owner:
    """The process that owns a run's objects: `host` + `pid` + the pid's start time."""

    host: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(host=socket.gethostname(), pid=pid, start=_proc_start(pid) or "")

    def token(self) -> str:
        return f"{self.pid}:{self.start}"

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Owner | None:
        host, token = labels.get(HOST_LABEL), labels.get(OWNER_LABEL)
        if not host or not token or ":" not in token:
            return None
        pid, _, start = token.partition(":")
        if not pid.isdigit():
            return None
        return cls(host=host, pid=int(pid), start=start)


def owner_alive(owner: Owner) -> bool:
    """Whether the owning process still runs (on this host; other hosts' owners are presumed alive)."""
    return process_alive(owner.host, owner.pid, owner.start)


def run_labels(
    *, run_id: str, job_id: str, deadline: float, owner: Owner | None = None, now: float | None = None
) -> dict[str, str]:
    """The labels of one run's containers, networks and temp dir marker."""
    who = owner or Owner.current()
    return {
        TOOL_LABEL: TOOL_NAME,
        RUN_LABEL: run_id,
        JOB_LABEL: job_id,
        CREATED_LABEL: str(int(now if now is not None else time.time())),
        DEADLINE_LABEL: str(int(deadline)),
        HOST_LABEL: who.host,
        OWNER_LABEL: who.token(),
    }


def owner_labels(role: str, owner: Owner | None = None) -> dict[str, str]:
    """Labels for a short-lived helper object (e.g. an image probe) that belongs to no run."""
    who = owner or Owner.current()
    return {TOOL_LABEL: TOOL_NAME, ROLE_LABEL: role, HOST_LABEL: who.host, OWNER_LABEL: who.token()}


def is_leftover(
    labels: Mapping[str, str], *, now: float | None = None, alive: Callable[[Owner], bool] = owner_alive
) -> bool:
    """True for this tool's run objects whose owner is gone or whose deadline has passed.

    Objects without an owner label are left alone unless their deadline passed; images never carry one and
    are only removed by `sandbox clean --images`.
    """
    if labels.get(TOOL_LABEL) != TOOL_NAME:
        return False
    current = time.time() if now is None else now
    deadline = labels.get(DEADLINE_LABEL, "")
    if deadline.isdigit() and int(deadline) < current:
        return True
    owner = Owner.from_labels(labels)
    if owner is None:
        return False
    return not alive(owner)
