"""Registry and discovery: built-ins via the plugin hook, entry points, lazy import, `sandbox runtimes`."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox._errors import AdapterError, UserError
from sandbox.runtimes import RuntimeRegistry, get_runtime
from sandbox.runtimes._commands import runtimes_command
from sandbox.runtimes._registry import DEFAULT_PLUGINS

from .conftest import REPO, FakeCli

BUILTINS = ["perstack", "docker", "claude-code", "cursor", "gemini", "codex", "opencode", "copilot"]


def test_builtins_are_registered_through_the_plugin_hook() -> None:
    registry = RuntimeRegistry(entry_points=False)
    assert registry.ids() == BUILTINS
    assert {get_runtime(i).tier for i in BUILTINS} == {"native", "cli"}
    assert get_runtime("local").id == "perstack"  # Perstack's old name


def test_unknown_runtime_suggests_the_closest() -> None:
    with pytest.raises(UserError, match="did you mean 'claude-code'"):
        get_runtime("claude-cod")


def docs_example() -> types.ModuleType:
    """The worked example of docs/runtimes.md, loaded from the docs themselves so they cannot drift."""
    text = (REPO / "docs" / "runtimes.md").read_text()
    code = text.split("```python\n# echo_runtime.py\n", 1)[1].split("```", 1)[0]
    module = types.ModuleType("echo_runtime")
    exec(compile(code, "docs/runtimes.md", "exec"), module.__dict__)
    return module


def test_a_third_party_plugin_module_registers_like_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "echo_plugin", docs_example())
    registry = RuntimeRegistry(plugins=(*DEFAULT_PLUGINS, "echo_plugin"), entry_points=False)
    assert registry.ids()[-1] == "echo"
    assert registry.get("echo").tier == "cli"


def test_entry_point_plugins_load_and_broken_ones_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    monkeypatch.setitem(sys.modules, "echo_plugin", docs_example())
    good = metadata.EntryPoint("echo", "echo_plugin", "sandbox.runtimes")
    bad = metadata.EntryPoint("broken", "no_such_module_xyz", "sandbox.runtimes")
    monkeypatch.setattr("sandbox.runtimes._registry.entry_points", lambda group: [good, bad])
    monkeypatch.delattr(sys, "_called_from_test", raising=False)
    registry = RuntimeRegistry(plugins=())
    assert registry.ids() == ["echo"]
    assert "plugin 'broken'" in registry.errors[0]


def test_the_worked_example_runs(tmp_path: Path, fake_cli: Callable[[str], FakeCli]) -> None:
    from sandbox.runtimes._run import run_cli

    from .conftest import Collected, make_options

    echo = docs_example().Echo()
    cli = fake_cli("echo-agent")
    stream = tmp_path / "echo.jsonl"
    lines = [
        {"say": "Looking."},
        {"type": "tool", "id": "t1", "name": "ls", "args": {"path": "."}, "output": "a.txt"},
        {"type": "done", "text": "One file: a.txt", "in": 12, "out": 3},
    ]
    stream.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    cli.configure(stream=str(stream))
    collected = Collected()
    options = make_options(tmp_path, runtime="echo", env=cli.env(ECHO_API_KEY="k"), model="m1")
    assert run_cli(echo, options, collected, note=lambda _: None) == 0
    assert collected.types == [
        "initializeRuntime",
        "startRun",
        "callTools",
        "resolveToolResults",
        "completeRun",
    ]
    assert collected.of("callTools")[0].new_message.contents[0].text == "Looking."
    done = collected.of("completeRun")[0]
    assert done.text == "One file: a.txt" and done.usage.input_tokens == 12
    assert cli.recorded["argv"][:2] == ["--model", "m1"]

    with pytest.raises(AdapterError, match="ECHO_API_KEY"):
        run_cli(echo, make_options(tmp_path, runtime="echo", env=cli.env()), Collected(), note=lambda _: None)


def test_importing_sandbox_does_not_load_adapters_or_probe_path() -> None:
    code = (
        "import sys, shutil\n"
        "calls = []\n"
        "shutil.which = lambda *a, **k: calls.append(a)\n"
        "import sandbox, sandbox.runtimes\n"
        "loaded = [m for m in sys.modules\n"
        "          if m.startswith('sandbox.runtimes.') and not m.split('.')[-1].startswith('_')]\n"
        "print(loaded, calls)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[] []"


def test_runtimes_command_tells_the_truth(tmp_path: Path, fake_cli: Callable[[str], FakeCli]) -> None:
    claude = fake_cli("claude")
    claude.configure(version="2.1.197 (Claude Code)")
    fake_cli("codex").configure(version="codex-cli 0.169.0")
    env = claude.env(ANTHROPIC_API_KEY="k")
    code, text = runtimes_command(as_json=True, env=env)
    rows = {row["id"]: row for row in json.loads(text)}
    assert code == 0 and list(rows) == BUILTINS
    assert rows["claude-code"] == {
        "id": "claude-code",
        "name": "Claude Code",
        "tier": "cli",
        "available": True,
        "version": "2.1.197",
        "binary": str(claude.bin_dir / "claude"),
        "reason": None,
        "auth": "ANTHROPIC_API_KEY",
    }
    assert rows["codex"]["available"] is False and rows["codex"]["version"] == "0.169.0"
    assert (
        rows["codex"]["reason"] == "no credentials: set CODEX_API_KEY or OPENAI_API_KEY, or run `codex login`"
    )
    assert rows["gemini"]["binary"] is None
    assert (
        rows["gemini"]["reason"]
        == "`gemini` not found on PATH; install it with `npm install -g @google/gemini-cli`"
    )
    assert rows["perstack"]["available"] is True

    _, table = runtimes_command(env=env)
    lines = table.splitlines()
    assert lines[0].split() == ["RUNTIME", "TIER", "AVAILABLE", "VERSION", "BINARY", "/", "REASON"]
    assert any(line.startswith("claude-code") and " yes " in line for line in lines)


def test_binary_override_variable_wins_over_path(tmp_path: Path, fake_cli: Callable[[str], FakeCli]) -> None:
    cli = fake_cli("my-cursor-build")
    env = {
        "PATH": "/usr/bin:/bin",
        "SANDBOX_CURSOR_BIN": str(cli.bin_dir / "my-cursor-build"),
        "CURSOR_API_KEY": "k",
    }
    info = get_runtime("cursor").info(env)
    assert info.available and info.binary == str(cli.bin_dir / "my-cursor-build")


def install_docs_plugin(site: Path) -> None:
    """Install docs/runtimes.md's `echo` plugin into `site` as pip would: its module, and a distribution whose
    entry point in the `sandbox.runtimes` group names it (`[project.entry-points."sandbox.runtimes"]`)."""
    text = (REPO / "docs" / "runtimes.md").read_text()
    code = text.split("```python\n# echo_runtime.py\n", 1)[1].split("```", 1)[0]
    (site / "echo_runtime.py").write_text(code)
    dist = site / "echo_runtime-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-runtime\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sandbox.runtimes]\necho = echo_runtime\n")


def test_an_installed_plugin_runtime_runs_from_the_command_line(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli]
) -> None:
    """docs/runtimes.md: `sandbox run writer "hi" --runtime echo` runs the plugin, and a perstack.toml may
    name it. The CLI once checked names against its own list and refused every plugin."""
    import os

    site = tmp_path / "site"
    site.mkdir()
    install_docs_plugin(site)
    cli = fake_cli("echo-agent")
    stream = tmp_path / "echo.jsonl"
    stream.write_text(json.dumps({"type": "done", "text": "hi back", "in": 3, "out": 2}) + "\n")
    cli.configure(stream=str(stream))
    work = tmp_path / "work"
    work.mkdir()
    (work / "perstack.toml").write_text('[experts."writer"]\ninstruction = "Write."\n')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_LOAD_PLUGINS")},
        **cli.env(ECHO_API_KEY="k"),
        "PYTHONPATH": str(site),
    }

    def sandbox(*args: str, toml: str | None = None) -> subprocess.CompletedProcess[str]:
        if toml is not None:
            (work / "perstack.toml").write_text(toml + '[experts."writer"]\ninstruction = "Write."\n')
        argv = [sys.executable, "-m", "sandbox", *args]
        return subprocess.run(
            argv, check=False, capture_output=True, text=True, cwd=work, env=env, timeout=120
        )

    listed = sandbox("runtimes", "--json")
    assert "echo" in [row["id"] for row in json.loads(listed.stdout)], listed.stderr
    for run in (
        sandbox("run", "writer", "hi", "--runtime", "echo"),
        sandbox("run", "writer", "hi", toml='runtime = "echo"\n'),
    ):
        assert run.returncode == 0, run.stderr
        events = [json.loads(line) for line in run.stdout.splitlines()]
        assert events[0]["type"] == "initializeRuntime" and events[0]["runtime"] == "echo"
        assert events[-1]["type"] == "completeRun" and events[-1]["text"] == "hi back"
    refused = sandbox("run", "writer", "hi", "--runtime", "ehco")
    assert refused.returncode != 0 and "did you mean 'echo'?" in refused.stderr
    assert (
        "(one of perstack, local, docker, cursor, claude-code, gemini, codex, opencode, copilot, echo)"
        in (refused.stderr)
    )


def test_the_builtin_names_are_what_the_builtin_plugins_register() -> None:
    """`BUILTIN_NAMES` is data so that a config validates without importing adapters; this keeps it true."""
    from sandbox.runtimes._registry import ALIASES, BUILTIN_NAMES, canonical_runtime

    registered = RuntimeRegistry(entry_points=False).ids()
    assert set(BUILTIN_NAMES) - set(ALIASES) == set(registered)
    assert {canonical_runtime(n) for n in (*BUILTIN_NAMES, *ALIASES)} == set(registered)
    assert canonical_runtime("local") == "perstack" and canonical_runtime("nope") is None


def test_validating_a_config_imports_no_adapter() -> None:
    code = (
        "import sys\n"
        "from sandbox.config import parse_config_text\n"
        "parse_config_text('runtime = \"local\"\\n', 'perstack.toml')\n"
        "loaded = [m for m in sys.modules if m.startswith('sandbox.runtimes.')]\n"
        "print(sorted(set(loaded) - {'sandbox.runtimes._registry'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
