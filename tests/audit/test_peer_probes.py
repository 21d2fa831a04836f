"""The audit's same-uid-peer probes outside Docker (issue #12 items 3 and 5): the probe kinds run on this
machine and the judges read what they report, every refusal next to its control.

On a host the probe program is not the sandbox, so what matters here is that each method works where it is
allowed (the controls) and that the host's pump, judging the forged-events probe's own output, drops every
forged line and keeps the signed one.
"""

from __future__ import annotations

import json
import os
import resource

import pytest

from sandbox._wire import new_key
from sandbox.audit import _probes as probes
from sandbox.audit._catalog import Evidence, site_from_json
from sandbox.audit._catalog_peers import FORGE_JOB, forge_lines, peer_probes
from sandbox.audit._wire_check import judge_wire
from tests.audit.test_catalog import FIXTURE

AS_ROOT = os.getuid() == 0


def _judge(probe_id: str, evidence: Evidence) -> tuple[bool, bool, str]:
    site = site_from_json(json.loads(FIXTURE.read_text())["site"])
    probe = next(p for p in peer_probes(site) if p.id == probe_id)
    j = probe.judge(evidence)
    return j.ok, j.control_ok, j.observed


def test_forged_lines_are_dropped_by_the_hosts_pump_and_the_signed_one_kept(
    capfd: pytest.CaptureFixture[str],
) -> None:
    key = new_key()
    result = probes.probe_forge_events({"lines": forge_lines()}, key)
    assert result["written"] == 7 and "own stdout" in result["via"]  # never the host's init
    lines = capfd.readouterr().out.splitlines()
    wire = judge_wire(lines, key)
    assert wire["accepted"] == ["control: signed with the run key"]
    counts = wire["counts"]
    assert (counts["unsigned"], counts["bad_mac"], counts["infrastructure"], counts["out_of_sequence"]) == (
        2,
        2,
        1,
        1,
    )
    ok, control_ok, text = _judge(
        "secrets.forged-events",
        Evidence(inside={"secrets.forged-events/write": result}, host={"event_wire": wire}),
    )
    assert ok and control_ok, text
    # With another key (a pump that does not know the run's key), even the control is dropped: a fail.
    other = judge_wire(lines, new_key())
    assert other["accepted"] == []
    ok, control_ok, _ = _judge(
        "secrets.forged-events",
        Evidence(inside={"secrets.forged-events/write": result}, host={"event_wire": other}),
    )
    assert not control_ok


def test_forged_lines_name_the_probes_job() -> None:
    assert all(FORGE_JOB in line for line in forge_lines().values())


def test_core_limit_probe_reports_the_limit_and_the_controls() -> None:
    result = probes.probe_core_limit({})
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    assert (result["soft"], result["hard"]) == (soft, hard)
    assert result["lower_soft"]["ok"]
    # This machine is the "outside": with a non-zero hard limit the soft limit can be raised.
    if hard != 0:
        assert result["raise_soft"]["ok"]


def test_core_limit_probe_under_a_hard_zero_refuses_every_raise() -> None:
    """The sandbox's situation (hard 0), made here in a child that lowers its own limit first."""

    def inside() -> dict[str, object]:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        return probes.probe_core_limit({})

    result = probes._in_child(inside)
    assert (result["soft"], result["hard"]) == (0, 0)
    if not AS_ROOT:  # root keeps CAP_SYS_RESOURCE on a host; the sandbox's root has no capabilities
        assert not result["raise_hard"]["ok"] and not result["raise_soft"]["ok"]
    assert result["lower_soft"]["ok"]


def test_peer_memory_probe_on_this_machine() -> None:
    """Outside the sandbox: hardened vs plain stand-ins, confined vs unconfined attacker, all for real."""
    result = probes.probe_peer_memory({})
    plain, hardened = result["plain"], result["hardened"]
    for name in ("mem", "environ", "fd", "ptrace"):
        assert plain[name]["ok"], (name, plain)  # the control: every method works on an un-hardened peer
    assert plain["mem"]["value"] == "canary found" and plain["environ"]["value"] == "canary found"
    if not AS_ROOT:  # root's CAP_SYS_PTRACE passes every check on a host
        for name in ("mem", "environ", "fd", "ptrace"):
            assert not hardened[name]["ok"], (name, hardened)
    evidence = Evidence(inside={"secrets.peers/all": result})
    ok, control_ok, text = _judge("secrets.runtime-memory", evidence)
    assert control_ok, text
    assert ok == (not AS_ROOT), text  # as root on a host nothing is refused: the judge must say fail


def _recorded() -> Evidence:
    from sandbox.audit._catalog import evidence_from_json

    return evidence_from_json(json.loads(FIXTURE.read_text())["evidence"])


@pytest.mark.parametrize(
    ("probe_id", "path", "value", "verdict"),
    [
        ("secrets.runtime-memory", ("hardened", "mem"), {"ok": True, "value": "canary found"}, "fail"),
        ("secrets.runtime-memory", ("hardened", "prlimit"), {"ok": True, "value": "raised"}, "fail"),
        ("secrets.runtime-memory", ("plain", "mem"), {"ok": False, "error": "EACCES: x"}, "unproven"),
        (
            "secrets.skill-isolation",
            ("confined_vs_skill", "environ"),
            {"ok": True, "value": "canary found"},
            "fail",
        ),
        ("secrets.skill-isolation", ("confined_vs_init", "fd"), {"ok": True, "value": "opened"}, "fail"),
        (
            "secrets.skill-isolation",
            ("unconfined_vs_init", "fd"),
            {"ok": False, "error": "EACCES: x"},
            "unproven",
        ),
    ],
)
def test_recorded_evidence_with_one_hole_is_judged_so(
    probe_id: str, path: tuple[str, str], value: dict[str, object], verdict: str
) -> None:
    """The all-pass recording (a real audit) passes; with one method opened (or a control broken), not."""
    evidence = _recorded()
    ok, control_ok, _ = _judge(probe_id, evidence)
    assert ok and control_ok
    evidence.inside["secrets.peers/all"][path[0]][path[1]] = value
    ok, control_ok, text = _judge(probe_id, evidence)
    assert ("fail" if not ok else "pass" if control_ok else "unproven") == verdict, text


def test_recorded_core_and_wire_evidence_with_a_hole_fails() -> None:
    evidence = _recorded()
    assert _judge("secrets.core-dumps", evidence)[:2] == (True, True)
    evidence.inside["secrets.core-dumps/limit"]["hard"] = -1
    assert not _judge("secrets.core-dumps", evidence)[0]
    evidence = _recorded()
    assert _judge("secrets.forged-events", evidence)[:2] == (True, True)
    evidence.host["event_wire"]["accepted"].append("proxyAccess")
    assert not _judge("secrets.forged-events", evidence)[0]
