"""Judge the forged-events probe's lines with the host's own pump code (`docker/_pump.EventPump`).

The probe (`_probes.probe_forge_events`) writes forged, unsigned, wrongly signed, replayed and one correctly
signed line onto the Expert container's stdout. The audit reads that stdout like a run does; this feeds the
lines of the probe's job to an `EventPump` holding the audit's event key, exactly as `sandbox run` would,
and records what it accepted and what it dropped (`secrets.forged-events` judges it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

from sandbox._wire import PREFIX, WireReader
from sandbox.docker import EventPump
from sandbox.events import EventBase

from ._catalog_peers import FORGE_JOB

__all__ = ["judge_wire"]


def _of_probe(line: str) -> bool:
    if line.startswith(PREFIX + " "):
        return True
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("jobId") == FORGE_JOB


def judge_wire(lines: Iterable[str], key: str) -> dict[str, Any]:
    """What the host's pump made of the probe's lines: accepted events (by message or type), drop counts."""
    accepted: list[str] = []
    reports: list[str] = []

    def emit(event: EventBase) -> None:
        accepted.append(str(getattr(event, "message", None) or event.type))

    pump = EventPump(
        job_id=FORGE_JOB, expert_key="audit", emit=emit, store=None, diag=reports.append, wire=WireReader(key)
    )
    for line in lines:
        if _of_probe(line):
            pump.stdout_line(line)
    return {"accepted": accepted, "counts": dataclasses.asdict(pump.counts), "reports": reports[:10]}
