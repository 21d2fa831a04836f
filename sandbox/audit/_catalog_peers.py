"""Audit probes for same-uid peers inside the sandbox (issue #12 items 3 and 5), each with its control.

* `secrets.runtime-memory`: a runtime stand-in put through the runtime's own hardening function
  (`sandbox._hardening.harden_runtime`) is closed to a sibling process: no /proc/<pid>/mem scan, environ,
  fd/ open or PTRACE_SEIZE (and no prlimit raise of its core limit). Control: the same attacks on an
  un-hardened stand-in find its canaries.
* `secrets.skill-isolation`: an attacker started the way the runtime starts skills and `exec` programs
  (`confined_command`) cannot read a skill stand-in's environ or memory, nor open the container init's
  stdout (PID 1 holds it). Control: the same attacker unconfined can.
* `secrets.core-dumps`: the hard RLIMIT_CORE is 0 and cannot be raised. Control: lowering a soft limit
  works, and the control runner outside the sandbox has a non-zero hard core limit.
* `secrets.forged-events`: lines written to the container's stdout through /proc/1/fd/1 are judged by the
  host's own pump code with the audit's event key (`_run` feeds them to `EventPump`): a `proxyAccess`
  event, unsigned and wrongly signed runtime events and a replay are dropped. Control: a line signed with
  the key that came on stdin is accepted.

One of the catalogue's threat modules (`_catalog` assembles them in report order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.events import ProxyAccess, SkillStderr, event_to_json

from ._catalog_judges import _r, _spec, mirrored
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site

__all__ = ["FORGE_JOB", "peer_probes"]

FORGE_JOB = "audit-wire"
"""The job id of the lines the forged-events probe writes (the host's pump is set to this job)."""

_METHODS = ("mem", "environ", "fd", "ptrace")


def _refused(r: Result, name: str) -> bool:
    return not (r.get(name) or {"ok": True}).get("ok", True)


def _worked(r: Result, name: str) -> bool:
    entry = r.get(name) or {}
    return bool(entry.get("ok")) and entry.get("value") != "read, canary not found"


def _describe(r: Result, names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        entry = r.get(name)
        if entry is None:
            parts.append(f"{name}: no result")
        elif entry.get("ok"):
            parts.append(f"{name}: {entry.get('value')}")
        else:
            parts.append(f"{name}: {str(entry.get('error', '')).split(':', 1)[0]}")
    return "; ".join(parts)


def forge_lines() -> dict[str, str]:
    """The event JSON the forged-events probe writes (signed or not by the probe, as its name says)."""

    def stderr(message: str) -> str:
        return event_to_json(SkillStderr(job_id=FORGE_JOB, run_id="r", skill_name="audit", message=message))

    proxy = event_to_json(
        ProxyAccess(
            job_id=FORGE_JOB, run_id="r", action="allowed", domain="forged.sandbox-audit.test", port=443
        )
    )
    return {
        "proxy_unsigned": proxy,
        "proxy_signed": proxy,
        "runtime_unsigned": stderr("forged: unsigned"),
        "runtime_wrong_key": stderr("forged: wrong key"),
        "control": stderr("control: signed with the run key"),
    }


def peer_probes(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806 - reads as the catalogue
    spec = _spec("secrets.peers", "all", "peer_memory")
    key = "secrets.peers/all"

    def j_runtime(ev: Evidence) -> Judgement:
        r = _r(ev, key)
        hardened, plain = r["hardened"], r["plain"]
        names = (*_METHODS, "prlimit")
        ok = all(_refused(hardened, n) for n in names)
        # prlimit is allowed between same-uid processes (dumpable or not); what it cannot do is raise a hard
        # core limit of 0, so its control is lowering another limit of the un-hardened stand-in.
        controls = (*_METHODS, "prlimit_lower")
        c_ok = all(_worked(plain, n) for n in controls)
        return Judgement(
            ok, _describe(hardened, names), c_ok, "un-hardened stand-in: " + _describe(plain, controls)
        )

    P.append(
        AuditProbe(
            "secrets.runtime-memory",
            "The runtime's memory is closed to the processes it starts",
            "a stand-in hardened like the runtime: /proc/<pid>/mem, environ, fd/, PTRACE_SEIZE and a prlimit "
            "raise of its core limit are refused to a same-uid sibling",
            "the same attacks on an un-hardened stand-in find its canaries",
            j_runtime,
            inside=(spec,),
        )
    )

    def j_skills(ev: Evidence) -> Judgement:
        r = _r(ev, key)
        skill, init, open_init = r["confined_vs_skill"], r["confined_vs_init"], r["unconfined_vs_init"]
        ok = all(_refused(skill, n) for n in _METHODS) and _refused(init, "fd") and _refused(init, "environ")
        c_ok = all(_worked(r["plain"], n) for n in _METHODS) and _worked(open_init, "fd")
        text = (
            f"Landlock ABI {r.get('landlock_abi')}, launcher {'present' if r.get('launcher') else 'absent'}; "
            f"vs a skill: {_describe(skill, _METHODS)}; vs PID 1: {_describe(init, ('environ', 'fd'))}"
        )
        control = (
            f"unconfined: vs the skill {_describe(r['plain'], _METHODS)}; "
            f"vs PID 1 {_describe(open_init, ('environ', 'fd'))}"
        )
        return Judgement(ok, text, c_ok, control)

    P.append(
        AuditProbe(
            "secrets.skill-isolation",
            "A skill or tool program cannot read another's environ or memory, nor the container's stdout",
            "started as the runtime starts skills and exec programs (a Landlock domain each): a skill "
            "stand-in's environ, mem, fd/ and ptrace, and PID 1's environ and fd/1, are refused",
            "the same attacker, not confined, reads them",
            j_skills,
        )
    )

    pid = "secrets.core-dumps"

    def j_core(inside: Result, outside: Result) -> Judgement:
        ok = (
            inside["hard"] == 0
            and inside["soft"] == 0
            and not inside["raise_hard"]["ok"]
            and not inside["raise_soft"]["ok"]
        )
        c_ok = bool(inside["lower_soft"]["ok"]) and outside["hard"] != 0 and bool(outside["raise_soft"]["ok"])
        text = (
            f"RLIMIT_CORE {inside['soft']}/{inside['hard']}; raising it: "
            f"{inside['raise_hard']['error'] or 'ALLOWED'}; "
            f"soft: {inside['raise_soft']['error'] or 'ALLOWED'}"
        )
        control = (
            f"lowering a soft limit inside: {'works' if inside['lower_soft']['ok'] else 'fails'}; "
            f"outside the sandbox RLIMIT_CORE {outside['soft']}/{outside['hard']}, raising the soft "
            f"limit {'works' if outside['raise_soft']['ok'] else 'fails'}"
        )
        return Judgement(ok, text, c_ok, control)

    P.append(
        mirrored(
            pid,
            "No process in the sandbox can dump a core",
            "hard RLIMIT_CORE 0 for every process, not raisable (a core is process memory: keys, tokens)",
            "lowering a soft limit works; outside the sandbox the same probe raises its core limit",
            part="limit",
            kind="core_limit",
            verdict=j_core,
        )
    )

    pid = "secrets.forged-events"

    def j_forged(ev: Evidence, pid: str = pid) -> Judgement:
        _r(ev, f"{pid}/write")
        wire: Mapping[str, Any] = ev.host["event_wire"]
        accepted = list(wire["accepted"])
        counts = dict(wire["counts"])
        forged = [a for a in accepted if not str(a).startswith("control")]
        ok = (
            not forged
            and counts.get("infrastructure", 0) == 1
            and counts.get("unsigned", 0) == 2
            and counts.get("bad_mac", 0) == 2
            and counts.get("out_of_sequence", 0) == 1
        )
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v and k != "events")
        text = (
            ("accepted forged: " + ", ".join(map(str, forged)))
            if forged
            else f"all forged lines dropped ({dropped})"
        )
        c_ok = any(str(a).startswith("control") for a in accepted)
        return Judgement(
            ok, text, c_ok, "a line signed with the run's key: " + ("accepted" if c_ok else "DROPPED")
        )

    P.append(
        AuditProbe(
            pid,
            "The host accepts only the runtime's signed events from the Expert's stream",
            "written to the container's stdout via /proc/1/fd/1: a proxyAccess event (unsigned and signed), "
            "unsigned and wrongly signed runtime events and a replay are all dropped by the host's pump",
            "a line signed with the run's key is accepted",
            j_forged,
            inside=(_spec(pid, "write", "forge_events", lines=forge_lines()),),
        )
    )
    return P
