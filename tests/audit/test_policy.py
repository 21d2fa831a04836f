"""The audit never weakens the Expert's policy beyond its own test names, and audits the run's sandbox."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from sandbox._errors import PlanError
from sandbox.audit._policy import (
    AUDIT_ZONE,
    METADATA_REBIND,
    REBIND,
    UPSTREAM,
    audit_plan,
    check_additions,
    control_policy,
    in_audit_zone,
)
from sandbox.config import parse_config_text
from sandbox.plan import PlanInputs, SandboxPlan, compute_plan
from sandbox.render import RunSite, proxy_policy, render_context
from sandbox.render._squid import render_squid

TOML = """
model = "claude-sonnet-4-5"
[provider]
providerName = "anthropic"
[experts."e"]
version = "1.0.0"
instruction = "i"
[experts."e".skills."web"]
type = "mcpStdioSkill"
command = "npx"
packageName = "some-mcp@1.0.0"
allowedDomains = ["api.example.com", "*.cdn.example.org"]
[sandbox]
allowPrivate = ["gateway.corp:8443"]
addHosts = ["gateway.corp:10.1.2.3"]
"""


def plan() -> tuple[SandboxPlan, object]:
    cfg, _ = parse_config_text(TOML, "t.toml")
    return compute_plan(
        cfg, PlanInputs(expert_key="e", runtime="docker", env={"ANTHROPIC_API_KEY": "k"})
    ), cfg


def test_audit_plan_adds_only_the_audit_names() -> None:
    real, _ = plan()
    audited = audit_plan(real, upstream_ip="198.51.100.10", private_ip="10.250.1.10")
    subnet = ("10.213.7.0/24",)
    additions = check_additions(proxy_policy(real, subnet), proxy_policy(audited, subnet))
    assert additions == [
        f"allow {METADATA_REBIND}",
        f"allow {REBIND}",
        f"allow {UPSTREAM}",
        f"host {METADATA_REBIND} -> 169.254.169.254",
        f"host {REBIND} -> 10.250.1.10",
        f"host {UPSTREAM} -> 198.51.100.10",
    ]
    # Everything else about the plan is untouched.
    assert audited.model_dump(exclude={"allowed_domains", "network"}) == real.model_dump(
        exclude={"allowed_domains", "network"}
    )
    assert set(real.allowed_domains) < set(audited.allowed_domains)
    assert audited.network.allow_private == real.network.allow_private


@pytest.mark.parametrize(
    "change",
    [
        {"allowed_ports": (443, 22)},
        {"check_sni": False},
        {"allow_private": (("gateway.corp", 8443), ("db.corp", 5432))},
        {"client_networks": ("10.0.0.0/8",)},
        {"allowed_domains": ("api.example.com", ".cdn.example.org", "evil.example")},
        {"allowed_domains": ("api.example.com",)},
        {"add_hosts": (("gateway.corp", "10.9.9.9"),)},
    ],
)
def test_any_other_change_is_refused(change: dict[str, object]) -> None:
    real, _ = plan()
    base = proxy_policy(real, ("10.213.7.0/24",))
    with pytest.raises(PlanError, match="beyond its own test names"):
        check_additions(base, dataclasses.replace(base, **change))  # type: ignore[arg-type]


def test_a_plan_using_the_reserved_zone_is_refused() -> None:
    real, _ = plan()
    hijacked = real.model_copy(update={"allowed_domains": (*real.allowed_domains, f"x.{AUDIT_ZONE}")})
    with pytest.raises(PlanError, match="reserved zone"):
        audit_plan(hijacked, upstream_ip="198.51.100.10", private_ip="10.250.1.10")
    assert in_audit_zone(f".{AUDIT_ZONE}") and in_audit_zone(UPSTREAM.upper() + ".")
    assert not in_audit_zone("sandbox-audit.test.evil.com") and not in_audit_zone("xsandbox-audit.test")


def test_the_audit_runs_the_same_images_and_compose_file_as_a_run(tmp_path: Path) -> None:
    real, cfg = plan()
    audited = audit_plan(real, upstream_ip="198.51.100.10", private_ip="10.250.1.10")
    site = RunSite(project="p", workspace=tmp_path, internal_subnet="10.213.7.0/24")
    a = render_context(real, cfg, site)  # type: ignore[arg-type]
    b = render_context(audited, cfg, site)  # type: ignore[arg-type]
    assert (a.expert_image, a.proxy_image) == (b.expert_image, b.proxy_image)
    assert a.files["compose.yaml"] == b.files["compose.yaml"]
    assert a.files["Dockerfile"] == b.files["Dockerfile"]
    changed = {name for name in a.files if a.files[name] != b.files.get(name)}
    assert changed == {
        "proxy/config/squid.conf",
        "proxy/config/allowed_domains.txt",
        "proxy/config/hosts",
        "expert/plan.json",
    }
    real_conf = a.files["proxy/config/squid.conf"].decode().splitlines()
    audit_conf = b.files["proxy/config/squid.conf"].decode().splitlines()

    def sni_names(conf: list[str]) -> set[str]:
        return {line.split()[-1] for line in conf if re.match(r"acl sni_\d+_connect ", line)}

    def rest(conf: list[str]) -> list[str]:
        return [line for line in conf if not re.search(r"\bsni_\d+_", line)]

    # The SNI stage lists one (CONNECT host, SNI) pair per name: the audit's names are added, none removed.
    assert sni_names(audit_conf) - sni_names(real_conf) == {UPSTREAM, REBIND, METADATA_REBIND}
    assert sni_names(real_conf) <= sni_names(audit_conf)
    # Everything else is the same file.
    assert rest(audit_conf) == rest(real_conf)


def test_the_control_policy_opens_what_the_real_one_refuses() -> None:
    policy = control_policy(subnet="10.213.7.0/24", upstream_ip="198.51.100.10", private_ip="10.250.1.10")
    conf = render_squid(policy)["squid.conf"]
    assert "acl allowed_ports port 22 80 443 8443" in conf
    assert "ssl_bump" not in conf  # no SNI check
    assert "blocked.sandbox-audit.test" in render_squid(policy)["allowed_domains.txt"]
