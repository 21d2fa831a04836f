"""`sandbox.resolve`: the destinations a plan opens, its CA bundle, and tags that need no run site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox._errors import UserError
from sandbox.config import parse_config_text
from sandbox.plan import PlanInputs, compute_plan
from sandbox.render import RunSite
from sandbox.resolve import PRIVATE_OPT_IN, Destination, ResolvedSandbox, resolve_sandbox

TOML = """
[provider]
providerName = "anthropic"

[experts."e"]
instruction = "x"
[experts."e".skills."s"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "some-tool"
allowedDomains = ["*.github.com", "llm.corp", "intranet.corp"]
"""
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _resolve(**kw: Any) -> ResolvedSandbox:
    cfg, _ = parse_config_text(TOML, "perstack.toml")
    return resolve_sandbox(cfg, PlanInputs(expert_key="e", runtime="docker", **kw))


def test_allowlist_is_https_on_443_with_its_sources() -> None:
    resolved = _resolve()
    by_host = {d.host: d for d in resolved.destinations}
    assert set(by_host) == {"api.anthropic.com", ".github.com", "intranet.corp", "llm.corp"}
    assert by_host[".github.com"] == Destination(".github.com", 443, ("https",), ('experts."e".skills."s"',))
    assert by_host["api.anthropic.com"].sources == ("provider anthropic",)


def test_opt_ins_add_plain_http_and_add_hosts_their_address() -> None:
    resolved = _resolve(
        allow_private=("llm.corp:443", "ollama.lan:11434"),
        add_hosts=("llm.corp:10.0.0.7", "ollama.lan:192.168.1.5", "intranet.corp:10.0.0.9"),
    )
    by_key = {(d.host, d.port): d for d in resolved.destinations}
    # Allowlisted and opted in on the same port: one destination, both reasons, plain HTTP too.
    assert by_key[("llm.corp", 443)] == Destination(
        "llm.corp", 443, ("https", "http"), ('experts."e".skills."s"', PRIVATE_OPT_IN), "10.0.0.7"
    )
    assert by_key[("ollama.lan", 11434)].schemes == ("https", "http")
    assert by_key[("ollama.lan", 11434)].address == "192.168.1.5"
    # Allowlisted but pointed at a private address without an opt-in: the proxy refuses it.
    assert ("intranet.corp", 443) not in by_key
    assert by_key[("ollama.lan", 11434)].describe() == (
        f"ollama.lan:11434 (https, http) -> 192.168.1.5  <- {PRIVATE_OPT_IN}"
    )


def test_a_public_add_host_address_is_shown_on_the_allowlisted_name() -> None:
    resolved = _resolve(add_hosts=("llm.corp:203.0.113.7",))
    (llm,) = [d for d in resolved.destinations if d.host == "llm.corp"]
    assert llm.address == "203.0.113.7" and llm.schemes == ("https",)


def test_ca_bundle_is_read_once_checked_and_in_the_tags(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CA)
    plain, with_ca = _resolve(), _resolve(ca_cert=str(ca))
    assert with_ca.ca_bundle == CA
    assert with_ca.expert_image != plain.expert_image
    assert with_ca.proxy_image == plain.proxy_image
    # Any run site renders the resolution's tags: they hash nothing of the site.
    site = RunSite(project="p", workspace=tmp_path, uid=1234, gid=1234, internal_subnet="10.9.8.0/24")
    ctx = with_ca.render(site)
    assert (ctx.expert_image, ctx.proxy_image) == (with_ca.expert_image, with_ca.proxy_image)
    ca.write_bytes(b"not pem")
    with pytest.raises(UserError, match="not a PEM certificate bundle"):
        _ = _resolve(ca_cert=str(ca)).ca_bundle


def test_a_computed_plan_resolves_to_the_same_sandbox() -> None:
    cfg, _ = parse_config_text(TOML, "perstack.toml")
    inputs = PlanInputs(expert_key="e", runtime="docker", allow_private=("llm.corp:443",))
    from_inputs = resolve_sandbox(cfg, inputs)
    from_plan = resolve_sandbox(cfg, compute_plan(cfg, inputs))
    assert from_plan.to_json() == from_inputs.to_json()
