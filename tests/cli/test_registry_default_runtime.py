"""Someone else's Expert never runs outside the sandbox by default (red-team issue, hole 8).

Without `--runtime`, the runtime is `perstack` (the CLI reference), so `sandbox run @org/their-expert` ran a
registry Expert, its skills and delegates natively on the host. Now an Expert graph with a registry Expert in
it runs in the docker sandbox unless the command line says otherwise; the file's `runtime` cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import sandbox.runtimes
from sandbox.cli import app

LOCAL = '[experts."mine"]\ninstruction = "x"\n'
DELEGATING = (
    '[experts."lead"]\ninstruction = "x"\ndelegates = ["helper"]\n'
    '[experts."helper"]\ninstruction = "y"\ndelegates = ["@org/their-expert"]\n'
)


def _runtime_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, args: list[str]
) -> tuple[str, str]:
    (tmp_path / "perstack.toml").write_text(toml)
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []

    def fake(options: Any, writer: Any) -> int:
        seen.append(options.runtime)
        return 0

    monkeypatch.setattr(sandbox.runtimes, "run_with_runtime", fake)
    result = CliRunner().invoke(app, ["run", *args, "q"], env={"ANTHROPIC_API_KEY": "k"})
    assert result.exit_code == 0, result.output
    return seen[0], result.output


def test_a_graph_with_a_registry_expert_defaults_to_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _runtime_of(tmp_path, monkeypatch, DELEGATING, ["lead"])[0] == "docker"


def test_the_files_runtime_setting_cannot_take_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, output = _runtime_of(tmp_path, monkeypatch, 'runtime = "perstack"\n' + DELEGATING, ["lead"])
    assert runtime == "docker"
    assert "--runtime perstack" in output  # says how to choose native


def test_native_takes_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _runtime_of(tmp_path, monkeypatch, DELEGATING, ["lead", "--runtime", "perstack"])[0] == "perstack"


def test_local_experts_keep_the_reference_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _runtime_of(tmp_path, monkeypatch, LOCAL, ["mine"])[0] == "perstack"  # the control
    assert _runtime_of(tmp_path, monkeypatch, 'runtime = "docker"\n' + LOCAL, ["mine"])[0] == "docker"
