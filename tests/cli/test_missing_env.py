"""The one missing-env check (`EnvPlan.values`): the native runtime and the docker executor refuse alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox._errors import UserError
from sandbox.config import parse_config_text
from sandbox.plan import PlanInputs, compute_plan
from sandbox.testing import ScriptedLLMServer, Turn

TOML = """
[provider]
providerName = "anthropic"

[experts."solo"]
instruction = "answer"
[experts."solo".skills."gh"]
type = "mcpStdioSkill"
command = "npx"
packageName = "some-mcp-server"
requiredEnv = ["GH_TOKEN"]
"""


def _run(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "solo", "hi", "--runtime", "perstack"],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_native_run_names_every_missing_variable_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    proc = _run(tmp_path, {})
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "error: missing required environment variables: GH_TOKEN, ANTHROPIC_API_KEY"
        " (set them in the environment or an env file, e.g. .env)"
    ), proc.stderr
    assert not (tmp_path / "perstack" / "jobs").exists()  # refused before anything was recorded


def test_control_with_the_variables_set_the_run_reaches_the_provider(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TOML.split('[experts."solo".skills', maxsplit=1)[0])
    with ScriptedLLMServer([Turn("done")], tls=True) as server:
        env = {
            "ANTHROPIC_API_KEY": "sk-test",
            "ANTHROPIC_BASE_URL": server.base_url,
            "SSL_CERT_FILE": str(server.ca_pem_path),
        }
        proc = _run(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["type"] == "completeRun"
    assert len(server.requests) == 1


def test_the_docker_executor_uses_the_same_check() -> None:
    cfg, _ = parse_config_text(TOML, "perstack.toml")
    plan = compute_plan(cfg, PlanInputs(expert_key="solo", runtime="docker", env={}))
    with pytest.raises(
        UserError, match=r"^missing required environment variables: GH_TOKEN, ANTHROPIC_API_KEY \("
    ):
        plan.env.values({"GH_TOKEN": ""})
    assert plan.env.values({"GH_TOKEN": "t", "ANTHROPIC_API_KEY": "k", "OTHER": "x"}) == {
        "GH_TOKEN": "t",
        "ANTHROPIC_API_KEY": "k",
    }
