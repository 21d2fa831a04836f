"""`sandbox build` on a real engine: prebuild and report versions, refuse to pull, name a failing step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sandbox._errors import BuildError, DockerError
from sandbox.cli.build import build_command
from sandbox.docker._testkit import llm_tls

pytestmark = pytest.mark.docker

BASE = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm")
NODE = os.environ.get("SANDBOX_TEST_NODE_IMAGE", "sandbox-node:22")
PROVIDER = '[provider]\nproviderName = "anthropic"\n[provider.setting]\nbaseUrl = "https://llm.test"\n'


def build(project: Path, *args: str) -> tuple[int, str, BaseException | None]:
    app = typer.Typer()
    app.command()(build_command)
    cwd = Path.cwd()
    os.chdir(project)
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout, result.exception


def test_missing_base_image_is_refused_before_any_build(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(PROVIDER + '[experts."e"]\ninstruction = "x"\n')
    _, _, exc = build(tmp_path, "e", "--base-image", "sandbox-no-such-base:0", "--node-image", NODE)
    assert isinstance(exc, DockerError), exc
    assert "sandbox-no-such-base:0 is not present locally" in str(exc) and "scripts/base-image.sh" in str(exc)


@pytest.mark.slow
def test_build_prints_tags_and_resolved_skill_versions(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(
        PROVIDER
        + '[experts."clock"]\ninstruction = "x"\n'
        + '[experts."clock".skills."time"]\ntype = "mcpStdioSkill"\ncommand = "uvx"\n'
        + 'packageName = "mcp-server-time"\n'
        + '[experts."clock".skills."everything"]\ntype = "mcpStdioSkill"\ncommand = "npx"\n'
        + 'packageName = "@modelcontextprotocol/server-everything"\n'
    )
    bundle = str(llm_tls().bundle)
    code, out, exc = build(
        tmp_path, "clock", "--json", "--base-image", BASE, "--node-image", NODE, "--ca-cert", bundle
    )
    assert code == 0, (out, exc)
    data = json.loads(out)
    assert data["expertImage"].startswith("sandbox-expert:") and data["proxyImage"].startswith(
        "sandbox-proxy:"
    )
    assert set(data["skills"]["npm"]) == {"@modelcontextprotocol/server-everything"}
    assert set(data["skills"]["pypi"]) == {"mcp-server-time"}
    assert all(
        v and v[0].isdigit() for v in [*data["skills"]["npm"].values(), *data["skills"]["pypi"].values()]
    )
    # Human output names the same tags and versions.
    code, out, exc = build(tmp_path, "clock", "--base-image", BASE, "--node-image", NODE, "--ca-cert", bundle)
    assert code == 0, (out, exc)
    assert data["expertImage"] in out or "expert image" in out
    assert "mcp-server-time" in out and "@modelcontextprotocol/server-everything" in out


@pytest.mark.slow
def test_a_failing_build_names_the_step_and_its_last_lines(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(
        PROVIDER
        + '[experts."broken"]\ninstruction = "x"\n'
        + '[experts."broken".skills."nope"]\ntype = "mcpStdioSkill"\ncommand = "npx"\n'
        + 'packageName = "@sandbox-test-nonexistent/definitely-not-a-package-4f2a"\n'
    )
    _, _, exc = build(tmp_path, "broken", "--base-image", BASE, "--node-image", NODE,
                         "--ca-cert", str(llm_tls().bundle))  # fmt: skip
    assert isinstance(exc, BuildError), exc
    assert exc.step is not None and "npm install" in exc.step
    assert "building the expert image" in str(exc) and "last log lines" in str(exc)
    assert any("404" in line or "E404" in line for line in exc.log_tail), exc.log_tail
