"""`sandbox run` dispatches through the runtime registry, and the docker runtime runs the CLI's own plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import sandbox.docker
from sandbox.cli import app


def test_docker_run_gets_the_plan_with_every_sandbox_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."e"]\ninstruction = "x"\n')
    seen: dict[str, Any] = {}

    def fake_run_in_docker(options: Any, plan: Any, emit: Any) -> int:
        seen["plan"] = plan
        seen["options_plan"] = options.plan
        return 7

    monkeypatch.setattr(sandbox.docker, "run_in_docker", fake_run_in_docker)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "run",
            "e",
            "q",
            "--runtime",
            "docker",
            "--base-image",
            "registry.corp/debian:12",
            "--memory",
            "3g",
            "--allow-private",
            "gw.corp:8443",
        ],
        env={"ANTHROPIC_API_KEY": "k"},
    )
    assert result.exit_code == 7, result.output
    plan = seen["plan"]
    assert plan is seen["options_plan"]
    assert plan.base_image == "registry.corp/debian:12"
    assert plan.limits.memory == "3g"
    assert plan.network.allow_private == ("gw.corp:8443",)
