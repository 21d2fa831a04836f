"""The CLI: plan/render/run-dry-run output, and bad input as one clear line with no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SANDBOX = [sys.executable, "-m", "sandbox"]

GOOD = """
[provider]
providerName = "anthropic"

[experts."lead"]
instruction = "lead the work"
delegates = ["worker"]
[experts."lead".skills."time"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "mcp-server-time"
allowedDomains = ["*.github.com", "api.github.com"]

[experts."worker"]
instruction = "do the work"
[experts."worker".skills."sse"]
type = "mcpSseSkill"
endpoint = "https://tools.example.net/sse"
"""


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.update(env or {})
    return subprocess.run(
        [*SANDBOX, *args], cwd=cwd, capture_output=True, text=True, env=full_env, check=False
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "perstack.toml").write_text(GOOD)
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    return tmp_path


def test_plan_json_has_the_contract_keys(project: Path) -> None:
    proc = cli(["plan", "lead", "--json"], project / "sub" / "dir")  # found by walking up
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in ("expert", "experts", "runtimes", "packages", "allowedDomains", "env", "image", "baseImage"):
        assert key in data, key
    assert data["experts"] == ["lead", "worker"]
    assert data["packages"] == {"npm": [], "pypi": ["mcp-server-time"]}
    assert data["allowedDomains"] == ["api.anthropic.com", ".github.com", "tools.example.net"]
    assert data["env"]["required"] == ["ANTHROPIC_API_KEY"]
    assert data["env"]["missing"] == ["ANTHROPIC_API_KEY"]
    assert data["image"].startswith("sandbox-expert:")


def test_plan_table_is_readable(project: Path) -> None:
    proc = cli(["plan", "lead"], project, env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert ".github.com" in proc.stdout and "mcp-server-time" in proc.stdout
    assert "ANTHROPIC_API_KEY" in proc.stdout


def test_env_file_values_are_used_but_not_exported(project: Path) -> None:
    (project / ".env").write_text("ANTHROPIC_API_KEY=sk-from-dotenv\n")
    proc = cli(["plan", "lead", "--json"], project)
    data = json.loads(proc.stdout)
    assert data["env"]["missing"] == []
    assert "sk-from-dotenv" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[experts."a"]\ninstruction = "x"\nskils = {}\n', 'experts."a".skils'),
        (
            '[experts."a"]\ninstruction = "x"\n[experts."a".skills."w"]\ntype = "mcpStdioSkill"\n'
            'command = "npx"\npackageName = "x"\nallowedDomains = ["ok.example", "1.2.3.4"]\n',
            'experts."a".skills."w".allowedDomains[1]',
        ),
        ('[experts."a"\ninstruction = "x"\n', "perstack.toml"),
    ],
)
def test_bad_config_is_one_line_per_problem_without_traceback(
    project: Path, toml: str, expected: str
) -> None:
    (project / "perstack.toml").write_text(toml)
    proc = cli(["plan", "a"], project)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all("perstack.toml" in line for line in lines), proc.stderr
    assert expected in proc.stderr


def test_unknown_expert_and_runtime(project: Path) -> None:
    proc = cli(["plan", "nobody"], project)
    assert (
        proc.returncode == 1 and "unknown Expert 'nobody'" in proc.stderr and "Traceback" not in proc.stderr
    )
    proc = cli(["run", "lead", "q", "--runtime", "dokcer", "--dry-run"], project)
    assert proc.returncode == 1 and "did you mean 'docker'" in proc.stderr


def test_run_dry_run_reports_what_it_would_do(project: Path) -> None:
    proc = cli(
        ["run", "lead", "hello", "--runtime", "local", "--model", "m1", "--max-steps", "3", "--dry-run"],
        project,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["runtime"] == "perstack" and data["model"] == "m1" and data["query"] == "hello"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume-from", "cp1"], "--resume-from requires --continue-job"),
        (["--continue", "--continue-job", "j"], "cannot be used together"),
    ],
)
def test_run_flag_combinations(project: Path, args: list[str], message: str) -> None:
    proc = cli(["run", "lead", "q", *args, "--dry-run"], project)
    assert proc.returncode == 1 and message in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    proc = cli(["plan", "x", "--config", "nope.toml"], tmp_path)
    assert proc.returncode == 1 and "nope.toml" in proc.stderr and "Traceback" not in proc.stderr


def test_render_writes_the_build_context(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    proc = cli(["render", "lead", "--out", str(out)], project)
    assert proc.returncode == 0, proc.stderr
    for name in (
        "Dockerfile",
        "compose.yaml",
        "proxy/config/squid.conf",
        "expert/perstack.json",
        "proxy/Dockerfile",
    ):
        assert (out / name).is_file(), name
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    out2 = tmp_path / "ctx2"
    cli(["render", "lead", "--out", str(out2)], project)
    second = {p.relative_to(out2): p.read_bytes() for p in out2.rglob("*") if p.is_file()}
    assert first == second


def test_help_and_version(tmp_path: Path) -> None:
    proc = cli(["--help"], tmp_path)
    assert proc.returncode == 0
    for command in ("plan", "render", "doctor", "run", "start"):
        assert command in proc.stdout
    assert cli(["--version"], tmp_path).stdout.startswith("sandbox ")


def test_run_refuses_an_unknown_local_delegate(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text('[experts."a"]\ninstruction = "x"\ndelegates = ["ghost"]\n')
    proc = cli(["run", "a", "q", "--dry-run"], tmp_path)
    assert proc.returncode == 1
    assert "unknown local Experts: ghost" in proc.stderr and "Traceback" not in proc.stderr
    assert cli(["plan", "a", "--json"], tmp_path).returncode == 0


def test_runtimes_lists_every_runtime(tmp_path: Path) -> None:
    proc = cli(["runtimes", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    ids = [r["id"] for r in json.loads(proc.stdout)]
    assert ids[:2] == ["perstack", "docker"]
    assert {"claude-code", "cursor", "gemini", "codex", "opencode", "copilot"} <= set(ids)
