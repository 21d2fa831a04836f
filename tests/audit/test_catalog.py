"""The audit's judges, replayed on evidence recorded from a real audit (all passing), then broken on purpose.

`fixtures/evidence-all-pass.json` is what `run_audit(..., settings=AuditSettings(evidence_path=...))` wrote
for examples/time-keeper on a machine where every guarantee held. Each mutation below changes one
observation the way a broken sandbox (or a broken control) would, and the probe that owns it must then
say `fail` (the sandbox did not hold) or `unproven` (the control failed, so the refusal proves nothing).
Re-record the fixture with `python -m tests.audit.record_evidence` (on a machine where every probe passes).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.audit._catalog import (
    AuditProbe,
    Evidence,
    Judgement,
    Site,
    build_catalog,
    evidence_from_json,
    evidence_to_json,
    judge_all,
    site_from_json,
    site_to_json,
    spellings,
)
from sandbox.audit._catalog_egress import _lookalikes

FIXTURE = Path(__file__).parent / "fixtures" / "evidence-all-pass.json"

# Probes that check an allowed path or a value rather than a refusal: they need no control.
NO_CONTROL = {
    "egress.allowlisted",
    "egress.plan-allowlist",
    "egress.same-name.case",
    "egress.same-name.trailing-dot",
    "secrets.environ",
    "res.limits",
    "audit.same-sandbox",
}


def load() -> tuple[Site, Evidence]:
    data = json.loads(FIXTURE.read_text())
    return site_from_json(data["site"]), evidence_from_json(data["evidence"])


@pytest.fixture
def recorded() -> tuple[Site, list[AuditProbe], Evidence]:
    site, evidence = load()
    return site, build_catalog(site), evidence


def verdicts(catalog: list[AuditProbe], evidence: Evidence) -> dict[str, str]:
    return {o.id: o.verdict for o in judge_all(catalog, evidence)}


def test_recorded_evidence_passes_every_probe(recorded: tuple[Site, list[AuditProbe], Evidence]) -> None:
    _, catalog, evidence = recorded
    outcomes = judge_all(catalog, evidence)
    bad = [(o.id, o.observed, o.control_observed) for o in outcomes if o.verdict != "pass"]
    assert not bad
    assert len(outcomes) >= 60


def test_the_fixture_covers_every_spec(recorded: tuple[Site, list[AuditProbe], Evidence]) -> None:
    """If a probe was added or renamed, the fixture must be re-recorded (see the module docstring)."""
    _, catalog, evidence = recorded
    inside = {s["id"] for p in catalog for s in p.inside}
    outside = {s["id"] for p in catalog for s in p.outside}
    assert inside <= set(evidence.inside), sorted(inside - set(evidence.inside))
    assert outside <= set(evidence.control), sorted(outside - set(evidence.control))


def test_ids_are_unique_and_grouped(recorded: tuple[Site, list[AuditProbe], Evidence]) -> None:
    _, catalog, _ = recorded
    ids = [p.id for p in catalog]
    assert len(ids) == len(set(ids))
    specs = [s["id"] for p in catalog for s in p.inside]
    outside = [s["id"] for p in catalog for s in p.outside]
    assert len(specs) == len(set(specs)) and len(outside) == len(set(outside))
    assert {p.group for p in catalog} == {
        "egress",
        "dns",
        "fs",
        "secrets",
        "priv",
        "res",
        "audit",
        "config",
        "runtime",
    }


def test_every_refusal_has_a_control(recorded: tuple[Site, list[AuditProbe], Evidence]) -> None:
    _, catalog, _ = recorded
    missing = [p.id for p in catalog if p.id not in NO_CONTROL and p.control.strip() in ("", "-")]
    assert not missing
    assert {p.id for p in catalog} >= NO_CONTROL


def test_the_issue_list_is_covered(recorded: tuple[Site, list[AuditProbe], Evidence]) -> None:
    """Every probe issue 6 asks for exists (by id), so dropping one is a visible change."""
    _, catalog, _ = recorded
    ids = {p.id for p in catalog}
    required = {
        "egress.allowlisted",
        "egress.not-allowlisted",
        "egress.direct.allowlisted",
        "egress.direct.public",
        "egress.ip-literal.dotted",
        "egress.ip-literal.decimal",
        "egress.ip-literal.loopback-hex",
        "egress.ip-literal.loopback-short",
        "egress.ip-literal.v6-loopback",
        "egress.ip-literal.v6-mapped-loopback",
        "egress.port.22",
        "egress.port.80",
        "egress.port.8443",
        "egress.lookalike.prefix",
        "egress.lookalike.suffix",
        "egress.same-name.case",
        "egress.same-name.trailing-dot",
        "egress.plain-http",
        "egress.rebinding.private",
        "egress.rebinding.metadata",
        "egress.metadata.direct",
        "egress.metadata.proxy",
        "egress.host-services",
        "egress.udp.quic",
        "egress.udp.dns",
        "egress.icmp",
        "egress.ipv6",
        "dns.outside-names",
        "egress.sni-mismatch",
        "fs.etc-shadow",
        "fs.host-files",
        "fs.docker-socket",
        "fs.read-only",
        "fs.workspace-symlink",
        "secrets.environ",
        "priv.no-new-privileges",
        "priv.capabilities",
        "priv.mount",
        "priv.ptrace",
        "priv.raw-sockets",
        "res.fork-bomb",
        "res.memory-bomb",
        "res.tmpfs-fill",
        "res.host-responsive",
    }
    assert required <= ids, sorted(required - ids)


def test_site_and_evidence_round_trip() -> None:
    site, evidence = load()
    assert site_from_json(json.loads(json.dumps(site_to_json(site)))) == site
    again = evidence_from_json(json.loads(json.dumps(evidence_to_json(evidence))))
    assert again.proxy_log == evidence.proxy_log and again.inside == evidence.inside


# ---- mutations -------------------------------------------------------------------------------------------

Mutation = Callable[[Site, Evidence], None]


def allow_through(key: str) -> Mutation:
    """The proxy let a refused request through: a 200 and the upstream's real answer."""

    def mutate(site: Site, ev: Evidence) -> None:
        ev.inside[key] = {
            "status": 200,
            "statusLine": "HTTP/1.1 200 Connection established",
            "error": None,
            "tls": {"ok": True},
            "http": {"status": 200, "body": f"nonce={site.nonce}"},
        }

    return mutate


def drop_log(code: str) -> Mutation:
    """The client saw a 403, but the proxy logged no such decision (the 403 came from somewhere else)."""

    def mutate(site: Site, ev: Evidence) -> None:
        ev.proxy_log = [a for a in ev.proxy_log if a.code != code]

    return mutate


def set_inside(key: str, value: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.inside[key] = value

    return mutate


def set_control(key: str, value: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.control[key] = value

    return mutate


def patch_inside(key: str, **changes: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.inside[key] = {**ev.inside[key], **changes}

    return mutate


def patch_op(op: str, result: dict[str, Any]) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.inside["priv.ops/all"] = {**ev.inside["priv.ops/all"], op: result}

    return mutate


def set_host(key: str, value: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.host[key] = value

    return mutate


def extra_upstream_line(text: str) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.upstream_log.append(text)

    return mutate


def delete_inside(key: str) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        del ev.inside[key]

    return mutate


def env_extra(site: Site, ev: Evidence) -> None:
    env = copy.deepcopy(ev.inside["secrets.environ/env"])
    env["names"]["ANTHROPIC_API_KEY"] = "x"
    ev.inside["secrets.environ/env"] = env


def canary_leak(site: Site, ev: Evidence) -> None:
    env = copy.deepcopy(ev.inside["secrets.environ/env"])
    env["hits"] = [*env["hits"], "canary ANTHROPIC_API_KEY in /proc/7/environ"]
    ev.inside["secrets.environ/env"] = env


def no_control_hit(site: Site, ev: Evidence) -> None:
    env = copy.deepcopy(ev.inside["secrets.environ/env"])
    env["hits"] = []
    ev.inside["secrets.environ/env"] = env


def symlink_leak(site: Site, ev: Evidence) -> None:
    reads = copy.deepcopy(ev.inside["fs.workspace-symlink/read"])
    reads["/workspace/escape-file"] = {"ok": True, "size": 10, "sha256": "x", "markers": [site.marker]}
    ev.inside["fs.workspace-symlink/read"] = reads


def host_file_visible(site: Site, ev: Evidence) -> None:
    dev, ino = site.host_paths["home"]
    ev.inside["fs.host-files/home"] = {site.home: {"dev": dev, "ino": ino, "dir": True}}


def written(site: Site, ev: Evidence) -> None:
    r = copy.deepcopy(ev.inside["fs.read-only/real"])
    r["/etc"] = {"ok": True, "error": None}
    ev.inside["fs.read-only/real"] = r


def caps(site: Site, ev: Evidence) -> None:
    ev.inside["priv.capabilities/status"] = {
        **ev.inside["priv.capabilities/status"],
        "CapEff": "00000000a80425fb",
    }


def foreign_process(site: Site, ev: Evidence) -> None:
    procs = copy.deepcopy(ev.inside["priv.pid-namespace/list"])
    procs["processes"].append({"pid": 2, "ppid": "0", "argv0": "", "uid": "0", "capEff": "000001ffffffffff"})
    ev.inside["priv.pid-namespace/list"] = procs


MUTATIONS: list[tuple[str, Mutation, str, str]] = [
    ("blocked name answered", allow_through("egress.not-allowlisted/real"), "egress.not-allowlisted", "fail"),
    ("403 not in the proxy log", drop_log("not-allowlisted"), "egress.not-allowlisted", "fail"),
    (
        "control proxy broken",
        set_inside("egress.not-allowlisted/control", {"status": 503, "error": None}),
        "egress.not-allowlisted",
        "unproven",
    ),
    (
        "allowed path broken",
        set_inside("egress.allowlisted/connect", {"status": 503, "error": None}),
        "egress.allowlisted",
        "fail",
    ),
    (
        "allowed path broken -> literals unproven",
        set_inside("egress.allowlisted/connect", {"status": 503}),
        "egress.ip-literal.decimal",
        "unproven",
    ),
    ("IP literal tunnelled", allow_through("egress.ip-literal.hex/real"), "egress.ip-literal.hex", "fail"),
    ("IP refusals not logged", drop_log("ip-literal"), "egress.ip-literal.octal", "fail"),
    ("port 22 open", allow_through("egress.port.22/real"), "egress.port.22", "fail"),
    (
        "port control dead",
        set_inside("egress.port.22/control", {"status": 403, "after": ""}),
        "egress.port.22",
        "unproven",
    ),
    (
        "plain HTTP forwarded",
        set_inside("egress.plain-http/real", {"status": 200, "body": "x"}),
        "egress.plain-http",
        "fail",
    ),
    ("rebinding allowed", allow_through("egress.rebinding.private/real"), "egress.rebinding.private", "fail"),
    (
        "metadata via proxy",
        set_inside("egress.metadata.proxy/gcp-http", {"status": 200, "body": ""}),
        "egress.metadata.proxy",
        "fail",
    ),
    ("SNI not checked", allow_through("egress.sni-mismatch/real"), "egress.sni-mismatch", "fail"),
    ("SNI refusal not logged", drop_log("sni-mismatch"), "egress.sni-mismatch", "fail"),
    (
        "direct route out",
        patch_inside("egress.direct.allowlisted/real", connected=True),
        "egress.direct.allowlisted",
        "fail",
    ),
    (
        "direct control dead",
        set_control("egress.direct.allowlisted/control", {"connected": False, "error": "x"}),
        "egress.direct.allowlisted",
        "unproven",
    ),
    (
        "host service reached",
        patch_inside("egress.host-services/real", connected=["192.0.2.2:2375"]),
        "egress.host-services",
        "fail",
    ),
    ("host listener unreachable", set_host("listener_from_host", False), "egress.host-services", "unproven"),
    ("DNS answered", patch_inside("egress.udp.dns/1.1.1.1", answered=True), "egress.udp.dns", "fail"),
    (
        "DNS query leaked",
        lambda s, e: extra_upstream_line(
            f"sandbox-audit-upstream dns qname=inside-{s.nonce}.sandbox-audit.test from=x"
        )(s, e),
        "egress.udp.dns",
        "fail",
    ),
    ("QUIC echoed", patch_inside("egress.udp.quic/real", reply="00"), "egress.udp.quic", "fail"),
    (
        "ping answered",
        lambda s, e: patch_inside(
            f"egress.icmp/{s.upstream_ip}",
            dgram={"reply": True, "error": None},
            raw={"reply": False, "error": None},
        )(s, e),
        "egress.icmp",
        "fail",
    ),
    (
        "IPv6 route",
        lambda s, e: set_inside(
            "egress.ipv6/real", {**e.inside["egress.ipv6/real"], "global": ["2001:db8::5"]}
        )(s, e),
        "egress.ipv6",
        "fail",
    ),
    (
        "outside name resolves",
        patch_inside("dns.outside-names/pypi.org", addresses=["151.101.0.223"]),
        "dns.outside-names",
        "fail",
    ),
    ("etc/shadow host file", host_file_visible, "fs.host-files", "fail"),
    ("symlink leads out", symlink_leak, "fs.workspace-symlink", "fail"),
    ("symlink control", set_host("symlink_host_read", False), "fs.workspace-symlink", "unproven"),
    ("write outside", written, "fs.read-only", "fail"),
    ("extra variable", env_extra, "secrets.environ", "fail"),
    ("canary leaked", canary_leak, "secrets.not-in-processes", "fail"),
    ("scanner blind", no_control_hit, "secrets.not-in-processes", "unproven"),
    ("value in inspect", set_host("inspect_hits", ["value #1"]), "secrets.not-in-inspect", "fail"),
    ("capabilities", caps, "priv.capabilities", "fail"),
    ("mount allowed", patch_op("mount_tmpfs", {"ok": True, "error": None}), "priv.mount", "fail"),
    (
        "refused for another reason",
        patch_op("unshare_user", {"ok": False, "error": "EINVAL: Invalid argument"}),
        "priv.user-namespace",
        "unproven",
    ),
    ("raw socket", patch_op("raw_socket", {"ok": True, "error": None}), "priv.raw-sockets", "fail"),
    (
        "ptrace control",
        patch_op("ptrace_child", {"ok": False, "error": "EPERM: x"}),
        "priv.ptrace",
        "unproven",
    ),
    ("host PID namespace", foreign_process, "priv.pid-namespace", "fail"),
    (
        "fork bomb unbounded",
        set_inside("res.fork-bomb/bomb", {"forked": 576, "stoppedBy": None}),
        "res.fork-bomb",
        "fail",
    ),
    (
        "memory bomb survived",
        patch_inside("res.memory-bomb/bomb", returncode=0, reachedCap=True),
        "res.memory-bomb",
        "fail",
    ),
    ("tmpfs unbounded", patch_inside("res.tmpfs-fill/fill", stoppedBy="cap"), "res.tmpfs-fill", "fail"),
    (
        "host froze",
        set_host("responsiveness", {"max_s": 9.0, "samples": 5, "baseline_s": 0.01}),
        "res.host-responsive",
        "fail",
    ),
    (
        "different compose",
        set_host("same_sandbox", {"images": True, "compose": False, "additions_only": True}),
        "audit.same-sandbox",
        "fail",
    ),
    ("missing evidence", delete_inside("egress.port.80/real"), "egress.port.80", "fail"),
]


@pytest.mark.parametrize(("why", "mutate", "probe", "verdict"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_sandbox_or_control_is_caught(why: str, mutate: Mutation, probe: str, verdict: str) -> None:
    site, evidence = load()
    catalog = build_catalog(site)
    before = verdicts(catalog, evidence)
    mutate(site, evidence)
    after = verdicts(catalog, evidence)
    assert before[probe] == "pass"
    assert after[probe] == verdict, (why, after[probe])


def test_a_failing_row_keeps_its_raw_results() -> None:
    site, evidence = load()
    allow_through("egress.not-allowlisted/real")(site, evidence)
    row = next(o for o in judge_all(build_catalog(site), evidence) if o.id == "egress.not-allowlisted")
    assert row.details["raw"]["egress.not-allowlisted/real"]["status"] == 200
    assert row.to_json()["verdict"] == "fail"


def test_a_judge_that_raises_is_a_failure_not_a_crash() -> None:
    def boom(ev: Evidence) -> Judgement:
        raise KeyError("nothing")

    probe = AuditProbe("egress.x", "t", "e", "c", boom)
    [row] = judge_all([probe], Evidence())
    assert row.verdict == "fail" and "no evidence" in row.observed


# ---- helpers ---------------------------------------------------------------------------------------------


def test_spellings_all_mean_the_same_address() -> None:
    ip = "198.51.100.42"
    forms = spellings(ip)
    for name in ("dotted", "decimal", "hex", "hex-dotted", "octal", "short"):
        # inet_aton is what resolvers and Squid's own parser accept; every spelling must land on `ip`.
        assert socket.inet_ntoa(socket.inet_aton(_c_style(forms[name]))) == ip, name
    assert forms["trailing-dot"] == ip + "."
    mapped = ipaddress.ip_address(forms["v4-mapped-v6"].strip("[]"))
    assert isinstance(mapped, ipaddress.IPv6Address)
    assert mapped.ipv4_mapped == ipaddress.ip_address(ip)


def _c_style(text: str) -> str:
    """inet_aton in Python rejects 0x/octal parts; convert each part like C's inet_aton would."""
    parts = text.split(".")
    values = [
        int(p, 16)
        if p.lower().startswith("0x")
        else int(p, 8)
        if len(p) > 1 and p.startswith("0")
        else int(p)
        for p in parts
    ]
    if len(values) == 1:
        return str(ipaddress.IPv4Address(values[0]))
    if len(values) == 3:
        return ".".join(map(str, values[:2])) + "." + ".".join(str(b) for b in values[2].to_bytes(2, "big"))
    return ".".join(map(str, values))


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "api.example.com",
            {"api.example.com.sandbox-audit.test", "api-evil.example.com", "x.api.example.com"},
        ),
        (".example.com", {"example.com.sandbox-audit.test", "evilexample.com"}),
    ],
)
def test_lookalikes_never_match_their_entry(entry: str, expected: set[str]) -> None:
    names = set(_lookalikes(entry))
    assert names == expected
    apex = entry.lstrip(".")
    for name in names:
        covered = name == apex or (entry.startswith(".") and name.endswith("." + apex))
        assert not covered, name
