"""render_context: deterministic build contexts, content-addressed tags, hostile input rendered safely."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sandbox.config import parse_config_text
from sandbox.plan import PlanInputs, compute_plan
from sandbox.render import RunSite, render_context

BASE = """
[provider]
providerName = "anthropic"

[experts."hostile"]
description = "desc with ${HOME} and $(id) and {{ 7*7 }}"
instruction = '''
Ignore {{ config }} and {% raw %} ${ANTHROPIC_API_KEY} $(curl evil) `id`
http_access allow all
'''
[experts."hostile".skills."time"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "mcp-server-time"
allowedDomains = ["api.example.com", "*.wild.example"]

[experts."hostile".skills."everything"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@modelcontextprotocol/server-everything@2026.8.31"
"""


def _render(tmp: Path, toml: str = BASE, expert: str = "hostile", **site_kw: object):  # type: ignore[no-untyped-def]
    config, _ = parse_config_text(toml, "perstack.toml")
    plan = compute_plan(
        config,
        PlanInputs(expert_key=expert, base_image="sandbox-base:bookworm", node_image="sandbox-node:22"),
    )
    site = RunSite(project="sandbox-test", workspace=tmp, uid=1000, gid=1000, **site_kw)  # type: ignore[arg-type]
    return render_context(plan, config, site)


def test_same_inputs_give_identical_bytes_and_tags(tmp_path: Path) -> None:
    a = _render(tmp_path)
    b = _render(tmp_path)
    assert a.files == b.files
    assert a.expert_image == b.expert_image and a.proxy_image == b.proxy_image
    assert a.expert_image.startswith("sandbox-expert:")


def test_tag_follows_image_inputs_only(tmp_path: Path) -> None:
    a = _render(tmp_path)
    other_instruction = BASE.replace("Ignore", "Please ignore")
    b = _render(tmp_path, other_instruction)
    assert a.expert_image == b.expert_image  # the config is mounted at run time, not baked in
    other_pkg = BASE.replace("server-everything@2026.8.31", "server-everything@2026.8.30")
    c = _render(tmp_path, other_pkg)
    assert c.expert_image != a.expert_image


def test_dockerfile_installs_packages_quoted_and_uses_the_base(tmp_path: Path) -> None:
    ctx = _render(tmp_path)
    dockerfile = ctx.files["Dockerfile"].decode()
    assert "FROM sandbox-node:22 AS node" in dockerfile
    assert "FROM sandbox-base:bookworm" in dockerfile
    assert "@modelcontextprotocol/server-everything@2026.8.31" in dockerfile
    assert "uv tool install --quiet --python python3 mcp-server-time" in dockerfile
    # Instructions never reach the Dockerfile or compose.yaml.
    for name in ("Dockerfile", "compose.yaml"):
        text = ctx.files[name].decode()
        assert "curl evil" not in text and "7*7" not in text


def test_compose_parses_back_with_the_hardening(tmp_path: Path) -> None:
    ctx = _render(tmp_path)
    doc = yaml.safe_load(ctx.files["compose.yaml"])
    expert = doc["services"]["expert"]
    proxy = doc["services"]["proxy"]
    assert expert["networks"] == {"internal": {}}
    assert set(proxy["networks"]) == {"internal", "egress"}
    assert doc["networks"]["internal"]["internal"] is True
    for svc in (expert, proxy):
        assert svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        assert svc["security_opt"] == ["no-new-privileges:true"]
    assert expert["user"] == "1000:1000"
    assert expert["environment"]["HTTPS_PROXY"] == expert["environment"]["https_proxy"]
    assert expert["environment"]["HTTPS_PROXY"].startswith("http://10.213.0.2:")
    assert not any("KEY" in k or "TOKEN" in k for k in expert["environment"])
    assert expert["dns"] == ["127.0.0.1"]


def test_workspace_with_dollar_and_quotes_is_escaped_for_compose(tmp_path: Path) -> None:
    weird = tmp_path / "we$ird ${HOME} 'q' \"dq\": x"
    weird.mkdir()
    ctx = _render(weird)
    doc = yaml.safe_load(ctx.files["compose.yaml"])
    source = doc["services"]["expert"]["volumes"][0]["source"]
    assert source == str(weird).replace("$", "$$")


def test_expert_config_contains_only_planned_experts(tmp_path: Path) -> None:
    toml = BASE + '\n[experts."other"]\ninstruction = "secret plans"\n'
    ctx = _render(tmp_path, toml)
    data = json.loads(ctx.files["expert/perstack.json"])
    assert set(data["experts"]) == {"hostile"}
    assert data["runtime"] == "perstack"
    assert "${ANTHROPIC_API_KEY}" in data["experts"]["hostile"]["instruction"]  # data, not interpolated


def test_squid_allowlist_is_rendered_from_the_plan(tmp_path: Path) -> None:
    ctx = _render(tmp_path)
    names = {k for k in ctx.files if k.startswith("proxy/config/")}
    assert "proxy/config/squid.conf" in names
    joined = b"".join(ctx.files[n] for n in names).decode()
    assert "api.example.com" in joined and ".wild.example" in joined and "api.anthropic.com" in joined
    assert "http_access allow all" not in joined


@pytest.mark.docker
def test_rendered_compose_passes_docker_compose_config(tmp_path: Path) -> None:
    assert shutil.which("docker")
    (tmp_path / "ws").mkdir()
    ctx = _render(tmp_path / "ws")
    assert ctx is not None
    out = tmp_path / "ctx"
    ctx.write(out)
    proc = subprocess.run(
        ["docker", "compose", "-f", str(out / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert cfg["services"]["expert"]["read_only"] is True
    assert cfg["networks"]["internal"]["internal"] is True
