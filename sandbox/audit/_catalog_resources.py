"""Audit probes for the plan's resource limits: the cgroup's values, and bombs that must stop at them.

Each bomb's control is that it really pushed (forked, allocated, wrote) up to a large part of the limit, so
a stop is the limit's doing; the host's responsiveness during the bombs is measured from the host.
"""

# ruff: noqa: S108 - /tmp here is a path inside the container, never the host's
from __future__ import annotations

from ._catalog_judges import reading
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site

__all__ = ["resource_probes"]


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _pushed(done: int, needed: int, words: str) -> tuple[bool, str]:
    """A bomb's control: it got at least `needed` far (half the limit, most of the tmpfs) before it stopped,
    so the stop is the limit's doing, not a bomb that gave up early; `words` say how far it got."""
    return done >= needed, words


def resource_probes(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    mib = 1 << 20

    pid = "res.limits"

    def j_limits(r: Result) -> Judgement:
        mem, pids = _int(r.get("memory")), _int(r.get("pids"))
        quota, period = _int(r.get("cpuQuota")), _int(r.get("cpuPeriod"))
        cpus = quota / period if quota and period and quota > 0 else None
        ok = (
            mem == site.memory_bytes
            and pids == site.pids
            and cpus is not None
            and abs(cpus - site.cpus) < 0.01
        )
        return Judgement(
            ok,
            f"memory {mem // mib if mem else mem} MiB, pids {pids}, cpus {cpus} (cgroup v{r.get('version')})",
        )

    P.append(
        reading(
            pid,
            "The kernel enforces the plan's limits",
            f"memory {site.memory_bytes // mib} MiB, pids {site.pids}, cpus {site.cpus}",
            "-",
            part="cgroup",
            kind="cgroup_limits",
            verdict=j_limits,
        )
    )

    pid = "res.fork-bomb"

    def j_fork(r: Result) -> Judgement:
        forked = int(r.get("forked") or 0)
        ok = r.get("stoppedBy") == "EAGAIN" and forked < site.pids
        return Judgement(
            ok,
            f"fork() failed with {r.get('stoppedBy')} after {forked} processes",
            *_pushed(forked, site.pids // 2, f"the bomb really forked ({forked} of a {site.pids} limit)"),
        )

    P.append(
        reading(
            pid,
            "A fork bomb stops at the pids limit",
            f"fork() fails (EAGAIN) before {site.pids} processes",
            "the bomb forked up to the limit",
            part="bomb",
            kind="fork_bomb",
            verdict=j_fork,
            maxProcs=site.pids + 64,
        )
    )

    pid = "res.memory-bomb"

    def j_mem(r: Result) -> Judgement:
        got = int(r.get("allocated") or 0)
        killed = r.get("returncode") == -9
        ok = killed and got <= site.memory_bytes and not r.get("reachedCap")
        how = "killed (SIGKILL, out of memory)" if killed else f"exit {r.get('returncode')}"
        return Judgement(
            ok,
            f"{how} after {got // mib} MiB",
            *_pushed(
                got,
                site.memory_bytes // 2,
                f"the bomb really allocated ({got // mib} of {site.memory_bytes // mib} MiB)",
            ),
        )

    P.append(
        reading(
            pid,
            "A memory bomb is killed at the memory limit",
            f"killed by the OOM killer at no more than {site.memory_bytes // mib} MiB (no swap)",
            "the bomb allocated a large part of the limit first",
            part="bomb",
            kind="memory_bomb",
            verdict=j_mem,
            maxBytes=site.memory_bytes * 3 // 2 + 256 * mib,
        )
    )

    pid = "res.tmpfs-fill"
    bounded_by_memory = site.tmpfs_bytes >= site.memory_bytes

    def j_fill(r: Result) -> Judgement:
        size, written = int(r.get("size") or 0), int(r.get("written") or 0)
        if bounded_by_memory:
            ok = r.get("returncode") == -9 or r.get("stoppedBy") == "ENOSPC"
        else:
            ok = r.get("stoppedBy") == "ENOSPC" and written <= size and abs(size - site.tmpfs_bytes) <= mib
        return Judgement(
            ok,
            f"stopped by {r.get('stoppedBy') or r.get('returncode')} after {written // mib} MiB "
            f"(tmpfs size {size // mib} MiB)",
            *_pushed(
                written, size * 9 // 10, f"the writes filled it ({written // mib} of {size // mib} MiB)"
            ),
        )

    P.append(
        reading(
            pid,
            "Filling the tmpfs stops at its size",
            f"ENOSPC at {site.tmpfs_bytes // mib} MiB"
            + (" (or the memory limit, which is smaller)" if bounded_by_memory else ""),
            "the writes did fill it",
            part="fill",
            kind="fill_tmpfs",
            verdict=j_fill,
            path="/tmp",
            maxBytes=site.tmpfs_bytes + 64 * mib,
        )
    )

    pid = "res.host-responsive"

    def j_host(ev: Evidence) -> Judgement:
        h = ev.host.get("responsiveness") or {}
        worst, base = h.get("max_s"), h.get("baseline_s")
        if worst is None:
            return Judgement(False, "not measured", False)
        ok = worst < 5.0
        return Judgement(
            ok,
            f"worst host response {worst * 1000:.0f} ms over {h.get('samples')} samples during the bombs",
            base is not None,
            f"baseline before: {base * 1000:.0f} ms" if base is not None else "-",
        )

    P.append(
        AuditProbe(
            pid,
            "The host stays responsive while the limits are hit",
            "a process spawn and a Docker API call on the host answer within 5 s throughout",
            "the same measurement before the bombs",
            j_host,
        )
    )
    return P
