"""The options several commands take are declared once (`sandbox.cli._options`) and stay alike.

Read off the click commands Typer builds, so a copy of an option written into one command (another help,
another default, a missing env var) or a planning command that lacks a sandbox flag fails here, not in a
user's run that got another sandbox than `sandbox plan` showed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.core
import typer.main
import typer.testing

from sandbox.cli import app
from sandbox.cli._options import NO_FLAGS, SandboxFlags, sandbox_flags

# The commands that plan a sandbox and so take every sandbox flag.
PLANNING = {"plan", "render", "build", "run", "start", "audit", "warm"}
# Options several commands share besides the sandbox flags; each must mean and say the same everywhere.
SHARED = {"config", "env_path", "env", "provider", "model", "workspace"}
FLAGS = {f.name for f in dataclasses.fields(SandboxFlags)}

TOML = """
[provider]
providerName = "anthropic"
[experts."lead"]
instruction = "lead the work"
"""


def commands() -> dict[str, typer.core.TyperCommand]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return {
        name: cmd
        for name, cmd in group.commands.items()
        if isinstance(cmd, typer.core.TyperCommand) and not cmd.hidden
    }


def declaration(cmd: typer.core.TyperCommand, option: str) -> tuple[object, ...] | None:
    """What a user sees of `option` in `cmd --help` (names, metavar, help, env var, default) and what it
    parses to; None when `cmd` does not take it."""
    for param in cmd.params:
        if param.name == option:
            assert isinstance(param, typer.core.TyperOption)
            return (
                param.get_help_record(typer.Context(cmd)),
                param.envvar,
                param.default,
                param.type_descriptor.annotation,
                param.multiple,
                param.required,
                param.is_flag,
            )
    return None


def flag_names(cmd: typer.core.TyperCommand) -> set[str]:
    return {p.name for p in cmd.params if p.name} & FLAGS


def test_every_planning_command_takes_every_sandbox_flag() -> None:
    taking = {name: flag_names(cmd) for name, cmd in commands().items() if flag_names(cmd)}
    assert {name for name, flags in taking.items() if flags == FLAGS} == PLANNING
    # The one command with some of them plans nothing: it checks that the images are there.
    assert {name: flags for name, flags in taking.items() if flags != FLAGS} == {
        "doctor": {"base_image", "node_image"}
    }


@pytest.mark.parametrize("option", sorted(FLAGS | SHARED))
def test_a_shared_option_is_declared_alike_everywhere(option: str) -> None:
    seen = {name: d for name, cmd in commands().items() if (d := declaration(cmd, option)) is not None}
    assert len(seen) >= 2, f"{option} is not shared; drop it from SHARED"
    assert len(set(seen.values())) == 1, f"{option} differs between commands: {seen}"


def test_the_flags_keep_their_place_in_the_help() -> None:
    """Spliced where `flags` stands, in field order: `run --help` lists them after --workspace."""
    names = [p.name for p in commands()["run"].params]
    fields = [f.name for f in dataclasses.fields(SandboxFlags)]
    start = names.index(fields[0])
    assert names[start - 1] == "workspace"
    assert names[start : start + len(fields)] == fields
    assert names[start + len(fields)] == "dry_run"


def test_a_command_without_a_flags_parameter_is_refused() -> None:
    def command(expert: str) -> None:
        del expert

    with pytest.raises(TypeError, match="flags: SandboxFlags"):
        sandbox_flags(command)


def test_the_decorated_command_gets_the_parsed_flags() -> None:
    got: list[SandboxFlags] = []

    @sandbox_flags
    def command(name: str, flags: SandboxFlags = NO_FLAGS, *, loud: bool = False) -> None:
        assert name == "x"
        assert loud
        got.append(flags)

    test_app = typer.Typer()
    test_app.command()(command)
    result = typer.testing.CliRunner().invoke(
        test_app, ["x", "--loud", "--cpus", "1.5", "--allow-private", "a:1", "--allow-private", "b:2"]
    )
    assert result.exit_code == 0, result.output
    assert got == [SandboxFlags(cpus=1.5, allow_private=["a:1", "b:2"])]


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SANDBOX_")}
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_plan_shows_the_workspace_quota_the_run_gets(tmp_path: Path) -> None:
    """`plan` lacked --workspace-quota, so it showed 10g for a run started with another quota."""
    (tmp_path / "perstack.toml").write_text(TOML)
    proc = cli(["plan", "lead", "--json", "--workspace-quota", "5g", "--memory", "3g"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    limits = json.loads(proc.stdout)["limits"]
    assert (limits["workspaceQuota"], limits["memory"]) == ("5g", "3g")


def test_render_refuses_a_workspace_that_is_not_a_directory(tmp_path: Path) -> None:
    """As `run`, `audit` and `warm` do; `render` wrote a compose file mounting the missing path."""
    (tmp_path / "perstack.toml").write_text(TOML)
    proc = cli(
        ["render", "lead", "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "no")], tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"--workspace {tmp_path / 'no'}: not a directory"
    assert not (tmp_path / "out").exists()
