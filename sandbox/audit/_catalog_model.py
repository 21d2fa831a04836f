"""The audit's shared model: the site, the evidence, a probe, its judgement and outcome, and the verdict rule.

Each `AuditProbe` names one guarantee (`egress.not-allowlisted`, `fs.read-only`, ...). It contributes
probe specs to three batches (the Expert's container, the control runner outside the sandbox, and the
host itself) and judges the combined `Evidence`:

* `ok`: what was observed is what the sandbox promises (a refusal, a limit that held, ...);
* `control_ok`: the control showed that the same path works when it is allowed. Without that, a refusal
  proves nothing (on a machine where no outside name resolves, a broken proxy refuses everything too).

Verdict: `fail` when not ok; `unproven` when ok but the control failed; `pass` otherwise (`judge_all`, the
one place it is decided). The audit exits 1 unless every probe passes. This module and the catalogue built
on it (`_catalog`) are pure: no Docker, no I/O; `_run` gathers the evidence, the catalogue judges it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.docker import ProxyAccess

__all__ = [
    "AuditProbe",
    "Evidence",
    "Judgement",
    "Outcome",
    "Result",
    "Site",
    "Spec",
    "Verdict",
    "evidence_from_json",
    "evidence_to_json",
    "judge_all",
    "site_from_json",
    "site_to_json",
]

Verdict = Literal["pass", "fail", "unproven"]
Result = dict[str, Any]
"""What one probe spec observed (the probe program's JSON; its shape depends on the spec's kind)."""
Spec = dict[str, Any]
"""One probe spec: `{"id": "<probe>/<part>", "kind": ..., **parameters}`, run by `_probes` in one batch."""


@dataclass(frozen=True)
class Site:
    """Everything the probes need to know about the running audit topology (addresses, names, limits)."""

    nonce: str
    proxy: str
    control_proxy: str
    proxy_name: str
    proxy_ip: str
    gateway: str
    upstream_ip: str
    upstream_private_ip: str
    control_gateway: str
    listener_port: int
    cadata: str
    uid: int
    memory_bytes: int
    pids: int
    tmpfs_bytes: int
    cpus: float
    host_ipv4: tuple[str, ...] = ()
    host_ipv6: tuple[str, ...] = ()
    plan_domains: tuple[str, ...] = ()
    plan_opt_ins: tuple[tuple[str, int], ...] = ()
    host_paths: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """(st_dev, st_ino) on the host of: "workspace", "home", "shadow", "rundir", "canary"."""
    home: str = "/root"
    rundir: str = "/tmp"  # noqa: S108 - a path inside the container, never the host's
    marker: str = ""
    symlinks: Mapping[str, str] = field(default_factory=dict)
    expected_env: frozenset[str] | None = None
    control_hash: str = ""
    steering_masked: tuple[str, ...] = ()
    """Container paths of the host's steering files masked in the replica of the user's layout (`_layout`)."""
    steering_creatable: tuple[str, ...] = ()
    """Container paths of absent steering files the sandbox could create (the host must undo them)."""
    steering_control: str = ""
    steering_control_create: str = ""
    fsize_bytes: int = 0
    """The plan's workspace quota in bytes: the Expert's RLIMIT_FSIZE."""


@dataclass
class Evidence:
    """What the batches observed. Keys of `inside`/`control` are probe spec ids (`<probe>/<part>`)."""

    inside: dict[str, Result] = field(default_factory=dict)
    control: dict[str, Result] = field(default_factory=dict)
    proxy_log: list[ProxyAccess] = field(default_factory=list)
    control_proxy_log: list[ProxyAccess] = field(default_factory=list)
    upstream_log: list[str] = field(default_factory=list)
    host: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    """A judge's finding: what was observed and whether it holds, and the same for the control."""

    ok: bool
    observed: str
    control_ok: bool = True
    control_observed: str = "-"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One row of the report."""

    id: str
    group: str
    title: str
    expected: str
    observed: str
    control: str
    control_observed: str
    verdict: Verdict
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "expected": self.expected,
            "observed": self.observed,
            "control": self.control,
            "controlObserved": self.control_observed,
            "verdict": self.verdict,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class AuditProbe:
    """One guarantee: its specs for each batch, its expectation and control in words, and its judge."""

    id: str
    title: str
    expected: str
    control: str
    judge: Callable[[Evidence], Judgement]
    inside: tuple[Spec, ...] = ()
    outside: tuple[Spec, ...] = ()

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


def site_to_json(site: Site) -> dict[str, Any]:
    """A Site as JSON (for `--evidence` dumps and the replayed fixtures of the unit tests)."""
    out = dataclasses.asdict(site)
    out["expected_env"] = sorted(site.expected_env) if site.expected_env is not None else None
    return out


def site_from_json(data: Mapping[str, Any]) -> Site:
    values = dict(data)
    for name in ("host_ipv4", "host_ipv6", "plan_domains", "steering_masked", "steering_creatable"):
        values[name] = tuple(values.get(name) or ())
    values["plan_opt_ins"] = tuple((h, int(p)) for h, p in values.get("plan_opt_ins") or ())
    values["host_paths"] = {k: (int(v[0]), int(v[1])) for k, v in (values.get("host_paths") or {}).items()}
    env = values.get("expected_env")
    values["expected_env"] = frozenset(env) if env is not None else None
    return Site(**values)


def evidence_to_json(ev: Evidence) -> dict[str, Any]:
    return {
        "inside": ev.inside,
        "control": ev.control,
        "proxyLog": [dataclasses.asdict(a) for a in ev.proxy_log],
        "controlProxyLog": [dataclasses.asdict(a) for a in ev.control_proxy_log],
        "upstreamLog": ev.upstream_log,
        "host": ev.host,
    }


def evidence_from_json(data: Mapping[str, Any]) -> Evidence:
    return Evidence(
        inside=dict(data["inside"]),
        control=dict(data["control"]),
        proxy_log=[ProxyAccess(**a) for a in data["proxyLog"]],
        control_proxy_log=[ProxyAccess(**a) for a in data["controlProxyLog"]],
        upstream_log=list(data["upstreamLog"]),
        host=dict(data["host"]),
    )


def judge_all(catalog: Sequence[AuditProbe], evidence: Evidence) -> list[Outcome]:
    """Judge every probe; a judge that raises (missing evidence) is a failure, never a crash.

    A probe that does not pass carries its raw results in `details["raw"]`, to debug from the JSON report.
    """
    outcomes = []
    for probe in catalog:
        try:
            j = probe.judge(evidence)
        except Exception as exc:
            j = Judgement(False, f"no evidence ({type(exc).__name__}: {exc})", False, "-")
        verdict: Verdict = "fail" if not j.ok else ("pass" if j.control_ok else "unproven")
        details = dict(j.details)
        if verdict != "pass":
            raw = {s["id"]: evidence.inside.get(s["id"]) for s in probe.inside}
            raw.update({f"outside:{s['id']}": evidence.control.get(s["id"]) for s in probe.outside})
            details["raw"] = raw
        outcomes.append(
            Outcome(
                probe.id,
                probe.group,
                probe.title,
                probe.expected,
                j.observed,
                probe.control,
                j.control_observed,
                verdict,
                details,
            )
        )
    return outcomes
