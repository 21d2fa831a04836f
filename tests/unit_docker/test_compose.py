"""compose.yaml -> specs: every security setting of the rendered file reaches the engine, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox._errors import RenderError
from sandbox.docker import parse_compose
from sandbox.render import RunSite, render_context

from .conftest import SECRET, config, plan_for


@pytest.fixture
def project(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = config()
    plan = plan_for(cfg, {"ANTHROPIC_API_KEY": SECRET}, memory="1g", cpus=1.5, pids=300)
    site = RunSite(
        project="sandbox-abc",
        workspace=tmp_path / "ws",
        uid=1001,
        gid=1002,
        internal_subnet="10.201.7.0/24",
        labels={"sandbox.run": "r1"},
    )
    ctx = render_context(plan, cfg, site)
    ctx.write(tmp_path / "ctx")
    return parse_compose((tmp_path / "ctx" / "compose.yaml").read_text(), tmp_path / "ctx"), ctx, tmp_path


def test_networks(project) -> None:  # type: ignore[no-untyped-def]
    compose, _, _ = project
    internal, egress = compose.networks["internal"], compose.networks["egress"]
    assert internal.name == "sandbox-abc_internal" and internal.internal
    assert internal.subnet == "10.201.7.0/24" and internal.ip_range == "10.201.7.128/25"
    # The egress side is one shared network (kept between runs), not a per-run one.
    assert egress.external and not egress.internal and egress.name == "sandbox-egress"
    assert not internal.external and not internal.enable_ipv6 and not egress.enable_ipv6
    assert internal.labels["sandbox.run"] == "r1" and internal.labels["sandbox.tool"] == "perstack-sandbox"


def test_expert_container(project) -> None:  # type: ignore[no-untyped-def]
    compose, ctx, tmp = project
    expert = compose.services["expert"]
    assert expert.name == "sandbox-abc-expert-1"
    assert expert.image == ctx.expert_image
    assert expert.user == "1001:1002"
    assert expert.read_only and expert.cap_drop == ("ALL",) and expert.cap_add == ()
    assert expert.security_opt == ("no-new-privileges:true",)
    assert expert.dns == ("127.0.0.1",)
    assert expert.stdin_open and expert.init
    assert expert.mem_limit == "1g" and expert.memswap_limit == "1g"
    assert expert.nano_cpus == 1_500_000_000 and expert.pids_limit == 300
    assert set(expert.tmpfs) == {"/tmp", "/home/sandbox"}
    mounts = {m.target: m for m in expert.mounts}
    assert mounts["/workspace"].source == str(tmp / "ws") and not mounts["/workspace"].read_only
    assert (
        mounts["/sandbox/expert"].source == str(tmp / "ctx" / "expert")
        and mounts["/sandbox/expert"].read_only
    )
    assert [(a.network, a.ipv4_address) for a in expert.networks] == [("sandbox-abc_internal", None)]
    assert expert.environment["HTTPS_PROXY"] == "http://10.201.7.2:3128"
    assert expert.environment["https_proxy"] == "http://10.201.7.2:3128"
    assert dict(expert.environment) == dict(ctx.environment)
    assert SECRET not in repr(expert)
    assert expert.labels["sandbox.role"] == "expert"


def test_proxy_container(project) -> None:  # type: ignore[no-untyped-def]
    compose, ctx, tmp = project
    proxy = compose.services["proxy"]
    assert proxy.image == ctx.proxy_image
    assert proxy.read_only and proxy.cap_drop == ("ALL",)
    assert proxy.security_opt == ("no-new-privileges:true",)
    assert proxy.user not in (None, "", "root", "0", "0:0")
    attachments = {a.network: a.ipv4_address for a in proxy.networks}
    assert attachments == {"sandbox-abc_internal": "10.201.7.2", "sandbox-egress": None}
    assert [m.target for m in proxy.mounts] == ["/etc/squid/sandbox"] and proxy.mounts[0].read_only
    assert proxy.mounts[0].source == str(tmp / "ctx" / "proxy" / "config")


def test_dollar_is_unescaped_and_interpolation_refused(tmp_path: Path) -> None:
    base = """
name: p
services:
  s:
    image: "img"
    environment:
      A: "{value}"
networks: {{}}
"""
    ok = parse_compose(base.format(value="pa$$word"), tmp_path)
    assert ok.services["s"].environment["A"] == "pa$word"
    with pytest.raises(RenderError, match="interpolation"):
        parse_compose(base.format(value="${HOME}"), tmp_path)


@pytest.mark.parametrize(
    "extra",
    [
        "    privileged: true\n",
        "    network_mode: host\n",
        "    pid: host\n",
        "    devices: ['/dev/kvm']\n",
    ],
)
def test_unknown_service_keys_are_refused(tmp_path: Path, extra: str) -> None:
    text = "name: p\nservices:\n  s:\n    image: img\n" + extra
    with pytest.raises(RenderError, match="unsupported keys"):
        parse_compose(text, tmp_path)


def test_environment_passthrough_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="passthrough"):
        parse_compose("name: p\nservices:\n  s:\n    image: img\n    environment:\n      SECRET:\n", tmp_path)
    with pytest.raises(RenderError, match="passthrough"):
        parse_compose("name: p\nservices:\n  s:\n    image: img\n    environment: [SECRET]\n", tmp_path)


def test_volumes_must_be_bind_long_syntax(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="bind"):
        parse_compose("name: p\nservices:\n  s:\n    image: img\n    volumes: ['/:/host']\n", tmp_path)


def test_unknown_network_reference_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="unknown network"):
        parse_compose("name: p\nservices:\n  s:\n    image: img\n    networks: [nope]\n", tmp_path)


def test_external_network_takes_a_name_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = "name: p\nservices: {}\nnetworks:\n  egress:\n    name: shared\n    external: true\n"
    assert parse_compose(text, tmp_path).networks["egress"].external
    with pytest.raises(RenderError, match="external network takes `name` only"):
        parse_compose(text + "    internal: true\n", tmp_path)
