"""The audit's catalogue: every probe, in report order, assembled from one module per threat.

What a probe is, how it is judged and the verdict rule are `_catalog_model`; the repeated shapes (a real spec
and its control, a proxy refusal checked in the proxy's own log) are `_catalog_judges`. The threats, in the
order the report lists them:

* `_catalog_egress`: the proxy, its allowlist, names, IP literals, ports, plain HTTP (and, after the network
  probes, what may travel through an allowed tunnel);
* `_catalog_network`: every way around the proxy (rebinding, metadata, direct TCP, UDP, DNS, ICMP, IPv6);
* `_catalog_filesystem`, `_catalog_steering` (the host's steering files), `_catalog_secrets`,
  `_catalog_peers` (same-uid peers), `_catalog_privilege`, `_catalog_workspace` (workspace hygiene, the root
  invoker, the one plain-HTTP exception), `_catalog_resources`;
* `audit.same-sandbox` (here): the audit tested the sandbox `sandbox run` would start.

The catalogue is pure: no Docker, no I/O; `_run` gathers the evidence, the catalogue judges it.
"""

from __future__ import annotations

from ._catalog_egress import proxy_probes, spellings, tunnel_probes
from ._catalog_filesystem import filesystem_probes
from ._catalog_model import (
    AuditProbe,
    Evidence,
    Judgement,
    Outcome,
    Site,
    Verdict,
    evidence_from_json,
    evidence_to_json,
    judge_all,
    site_from_json,
    site_to_json,
)
from ._catalog_network import HOST_PORTS, network_probes
from ._catalog_peers import peer_probes
from ._catalog_privilege import privilege_probes
from ._catalog_resources import resource_probes
from ._catalog_secrets import secrets_probes
from ._catalog_steering import steering_probes
from ._catalog_workspace import workspace_probes

__all__ = [
    "HOST_PORTS",
    "AuditProbe",
    "Evidence",
    "Judgement",
    "Outcome",
    "Site",
    "Verdict",
    "build_catalog",
    "evidence_from_json",
    "evidence_to_json",
    "judge_all",
    "site_from_json",
    "site_to_json",
    "spellings",
]


def build_catalog(site: Site) -> list[AuditProbe]:
    """Every probe for this site, in report order."""
    return [
        *proxy_probes(site),
        *network_probes(site),
        *tunnel_probes(site),
        *filesystem_probes(site),
        *steering_probes(site),
        *secrets_probes(site),
        *peer_probes(site),
        *privilege_probes(site),
        *workspace_probes(site),
        *resource_probes(site),
        _self_check(),
    ]


def _self_check() -> AuditProbe:
    def judge(ev: Evidence) -> Judgement:
        s = ev.host.get("same_sandbox") or {}
        ok = bool(s.get("images")) and bool(s.get("compose")) and bool(s.get("additions_only"))
        return Judgement(
            ok,
            f"same images: {s.get('images')}; same compose.yaml: {s.get('compose')}; proxy policy "
            f"additions: {', '.join(s.get('additions') or []) or '-'}",
        )

    return AuditProbe(
        "audit.same-sandbox",
        "The audit tests the sandbox `sandbox run` would start",
        "the same images and compose.yaml; the proxy policy differs only by the audit's own test names",
        "-",
        judge,
    )
