"""What the audit changes in the Expert's policy (as little as possible) and the control proxy's policy.

The audit must test the *real* sandbox, yet its controls need a destination that works. So the proxy
under test gets the plan's policy plus exactly these names, all under the reserved `.test` TLD (RFC 6761:
never delegated, so they can never collide with a real allowlisted host), each resolved only by the proxy
through its hosts file:

* `upstream.sandbox-audit.test` -> the audit's own upstream on a public-looking TEST-NET address: the
  allowed destination every control builds on;
* `rebind.sandbox-audit.test` -> the same upstream's private address, and
  `metadata.sandbox-audit.test` -> 169.254.169.254: allowlisted names that resolve to private and
  metadata addresses, which the proxy must refuse anyway (DNS rebinding).

`check_additions()` proves that the audit's proxy policy equals the plan's except for those names; the
audit refuses to run otherwise. The *control* proxy (`control_policy`) is a second, looser proxy the audit
starts next to the real one, so each refused path can be shown to work when it is allowed.
"""

from __future__ import annotations

from dataclasses import fields

from sandbox._errors import PlanError
from sandbox.plan import SandboxPlan
from sandbox.render import ProxyPolicy, proxy_policy

__all__ = [
    "AUDIT_ZONE",
    "BLOCKED",
    "METADATA_REBIND",
    "REBIND",
    "UPSTREAM",
    "audit_names",
    "audit_plan",
    "check_additions",
    "control_policy",
    "in_audit_zone",
]

AUDIT_ZONE = "sandbox-audit.test"
UPSTREAM = f"upstream.{AUDIT_ZONE}"
BLOCKED = f"blocked.{AUDIT_ZONE}"
REBIND = f"rebind.{AUDIT_ZONE}"
METADATA_REBIND = f"metadata.{AUDIT_ZONE}"
METADATA_IP = "169.254.169.254"


def in_audit_zone(name: str) -> bool:
    """Whether `name` (an allowlist entry, possibly `.wild`) lies in the audit's reserved zone."""
    bare = name.lower().strip(".")
    return bare == AUDIT_ZONE or bare.endswith("." + AUDIT_ZONE)


def audit_names() -> tuple[str, ...]:
    """Every name the audit's upstream certificate is issued for."""
    return (UPSTREAM, BLOCKED, REBIND, METADATA_REBIND)


def audit_plan(plan: SandboxPlan, *, upstream_ip: str, private_ip: str) -> SandboxPlan:
    """`plan` plus the audit's allowlisted names and their static addresses (see the module docstring).

    Raises PlanError if the plan already uses the reserved zone: the audit could not then tell its own
    additions from the Expert's policy.
    """
    used = [d for d in plan.allowed_domains if in_audit_zone(d)]
    used += [e for e in plan.network.add_hosts if in_audit_zone(e.partition(":")[0])]
    used += [e for e in plan.network.allow_private if in_audit_zone(e.rpartition(":")[0].strip("[]"))]
    if used:
        raise PlanError(f"the plan uses the audit's reserved zone {AUDIT_ZONE}: {', '.join(used)}")
    added = (UPSTREAM, REBIND, METADATA_REBIND)
    allowed = tuple(sorted({*plan.allowed_domains, *added}, key=lambda s: (s.lstrip("."), s)))
    hosts = (
        *plan.network.add_hosts,
        f"{UPSTREAM}:{upstream_ip}",
        f"{REBIND}:{private_ip}",
        f"{METADATA_REBIND}:{METADATA_IP}",
    )
    network = plan.network.model_copy(update={"allowed_domains": allowed, "add_hosts": hosts})
    return plan.model_copy(update={"allowed_domains": allowed, "network": network})


def check_additions(real: ProxyPolicy, audited: ProxyPolicy) -> list[str]:
    """The audit policy's additions to the real one; PlanError if anything else differs.

    Allowed differences: extra allowlist entries and extra static hosts, all in the audit zone. Every other
    field (ports, SNI check, private opt-ins, client networks) must be identical.
    """
    problems: list[str] = []
    for f in fields(ProxyPolicy):
        if f.name in ("allowed_domains", "add_hosts"):
            continue
        if getattr(real, f.name) != getattr(audited, f.name):
            problems.append(f"{f.name} differs")
    additions: list[str] = []
    missing = set(real.allowed_domains) - set(audited.allowed_domains)
    if missing:
        problems.append(f"allowlist entries dropped: {sorted(missing)}")
    for entry in sorted(set(audited.allowed_domains) - set(real.allowed_domains)):
        (additions if in_audit_zone(entry) else problems).append(f"allow {entry}")
    missing_hosts = set(real.add_hosts) - set(audited.add_hosts)
    if missing_hosts:
        problems.append(f"static hosts dropped: {sorted(missing_hosts)}")
    for name, ip in sorted(set(audited.add_hosts) - set(real.add_hosts)):
        (additions if in_audit_zone(name) else problems).append(f"host {name} -> {ip}")
    if problems:
        raise PlanError(
            "the audit would change the Expert's proxy policy beyond its own test names: "
            + "; ".join(problems)
        )
    return additions


def audited_policies(
    real_plan: SandboxPlan, audit: SandboxPlan, subnet: str
) -> tuple[ProxyPolicy, ProxyPolicy]:
    """The (real, audit) proxy policies for the internal `subnet`, as `render_context` builds them."""
    return proxy_policy(real_plan, (subnet,)), proxy_policy(audit, (subnet,))


def control_policy(*, subnet: str, upstream_ip: str, private_ip: str) -> ProxyPolicy:
    """The control proxy: what the real proxy refuses, allowed, so each refusal has a working twin.

    The blocked name is allowlisted; ports 22, 80 and 8443 are open; plain HTTP to the upstream (port 80)
    and the rebinding name (private address, port 443) are explicit opt-ins; SNI is not checked.
    """
    return ProxyPolicy(
        allowed_domains=(BLOCKED, REBIND, UPSTREAM),
        allow_private=((REBIND, 443), (UPSTREAM, 80)),
        add_hosts=((UPSTREAM, upstream_ip), (BLOCKED, upstream_ip), (REBIND, private_ip)),
        allowed_ports=(22, 80, 443, 8443),
        check_sni=False,
        client_networks=(subnet,),
    )
