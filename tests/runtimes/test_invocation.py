"""Each adapter's headless invocation: prompt, model, system prompt channel, stream flag, approval, MCP."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from sandbox.runtimes import CliRequest, CliRuntime, SkillStatus
from sandbox.runtimes._expert import map_expert
from sandbox.runtimes.claude_code import ClaudeCode
from sandbox.runtimes.codex import Codex, toml_value
from sandbox.runtimes.copilot import USAGE_FILE, Copilot
from sandbox.runtimes.cursor import Cursor
from sandbox.runtimes.gemini import Gemini
from sandbox.runtimes.opencode import AGENT, OpenCode

from .conftest import load_config


def request(
    tmp_path: Path,
    *,
    expert: str = "writer",
    model: str | None = None,
    max_steps: int | None = None,
    flags: frozenset[str] = frozenset(),
    query: str = "-rf everything",
) -> CliRequest:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return CliRequest(
        query=query,
        expert=map_expert(load_config(), expert, {}),
        model=model,
        max_steps=max_steps,
        workspace=tmp_path / "ws",
        scratch=scratch,
        env={},
        flags=flags,
    )


def statuses(skills: list[SkillStatus]) -> dict[str, bool]:
    return {s.name: s.applied for s in skills}


def value_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_claude_code_invocation(tmp_path: Path) -> None:
    inv = ClaudeCode().build_invocation(request(tmp_path, model="sonnet", max_steps=1))
    args = inv.args
    assert args[0] == "-p" and args[-2:] == [
        "--",
        "-rf everything",
    ]  # a query starting with "-" stays a query
    assert value_after(args, "--output-format") == "stream-json" and "--verbose" in args
    system = value_after(args, "--append-system-prompt")
    assert system.startswith("You write files. MARKER-7Q") and "### reviewer" in system
    assert value_after(args, "--permission-mode") == "acceptEdits"
    assert "--dangerously-skip-permissions" not in args  # exits 1 as root
    allowed = value_after(args, "--allowedTools").split(",")
    assert {"Bash", "Edit", "Write", "Read"} <= set(allowed)
    assert (
        "mcp__time__get_current_time" in allowed and "mcp__search" in allowed
    )  # pick narrows, no pick = all
    assert value_after(args, "--disallowedTools") == "mcp__search__admin"
    assert value_after(args, "--model") == "sonnet"
    assert value_after(args, "--max-turns") == "2"  # 1 would fail before any work
    assert "--strict-mcp-config" in args
    config = json.loads(Path(value_after(args, "--mcp-config")).read_text())
    assert config == {
        "mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time"]},
            "search": {"type": "sse", "url": "https://search.example.com/sse"},
        }
    }
    assert statuses(inv.skills) == {"@perstack/base": True, "time": True, "search": True, "ask": False}


def test_codex_invocation(tmp_path: Path) -> None:
    inv = Codex().build_invocation(request(tmp_path, model="gpt-5", max_steps=3))
    args = inv.args
    assert args[:2] == ["exec", "--json"] and args[-2:] == ["--", "-rf everything"]
    assert "--skip-git-repo-check" in args and value_after(args, "-C") == str(tmp_path / "ws")
    assert value_after(args, "--sandbox") == "workspace-write"
    assert "--full-auto" not in args  # removed in current Codex (PanCode still passed it)
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "-c"]
    parsed = tomllib.loads("\n".join(overrides))
    assert parsed["developer_instructions"].startswith("You write files. MARKER-7Q")
    assert parsed["mcp_servers"] == {
        "time": {
            "command": "uvx",
            "args": ["mcp-server-time"],
            "enabled_tools": ["get_current_time"],
            "startup_timeout_sec": 60,  # not Codex's 10 s: a first uvx/npx start downloads the package
        }
    }
    assert statuses(inv.skills) == {"@perstack/base": True, "time": True, "search": False, "ask": False}
    assert any("step limit" in note for note in inv.notes)


def test_codex_can_bypass_its_own_sandbox_where_it_cannot_start(tmp_path: Path) -> None:
    req = request(tmp_path)
    req = CliRequest(**{**req.__dict__, "env": {"SANDBOX_CODEX_SANDBOX": "danger-full-access"}})
    args = Codex().build_invocation(req).args
    assert "--dangerously-bypass-approvals-and-sandbox" in args and "--sandbox" not in args


def test_toml_value_round_trips_awkward_strings() -> None:
    value = {"a-b": ['quote " and \\ backslash', "ünïcode\nnewline"], "@x/y": {"n": 1, "ok": True}}
    assert tomllib.loads("v = " + toml_value(value))["v"] == value


def test_gemini_invocation(tmp_path: Path) -> None:
    inv = Gemini().build_invocation(request(tmp_path, model="gemini-3-flash-preview", max_steps=7))
    args = inv.args
    assert value_after(args, "--output-format") == "stream-json"
    assert value_after(args, "--approval-mode") == "yolo" and "--yolo" not in args
    assert args[-1] == "--prompt=-rf everything"
    # the system prompt is a *file path* (PanCode passed the text)
    system_md = Path(inv.env["GEMINI_SYSTEM_MD"])
    assert system_md.read_text().startswith("You write files. MARKER-7Q")
    settings = json.loads(Path(inv.env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"]).read_text())
    assert settings["mcpServers"]["time"]["includeTools"] == ["get_current_time"]
    assert settings["mcpServers"]["search"] == {
        "url": "https://search.example.com/sse",
        "trust": True,
        "excludeTools": ["admin"],
    }
    assert settings["model"] == {"maxSessionTurns": 7}
    assert inv.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    assert statuses(inv.skills) == {"@perstack/base": True, "time": True, "search": True, "ask": False}


def test_cursor_invocation_puts_instructions_ahead_of_the_query(tmp_path: Path) -> None:
    inv = Cursor().build_invocation(request(tmp_path, model="gpt-5"))
    args = inv.args
    assert args[:3] == ["-p", "--output-format", "stream-json"]
    assert (
        "--force" in args and "--trust" in args and value_after(args, "--workspace") == str(tmp_path / "ws")
    )
    prompt = args[-1]
    assert prompt.startswith("## Instructions\nYou write files. MARKER-7Q")
    assert prompt.endswith("## User Request\n-rf everything")
    skills = {s.name: s for s in inv.skills}
    assert not skills["time"].applied and ".cursor/mcp.json" in skills["time"].detail


def test_opencode_invocation_uses_a_custom_agent(tmp_path: Path) -> None:
    inv = OpenCode().build_invocation(request(tmp_path, model="claude-sonnet-4-5", max_steps=4))
    args = inv.args
    assert args[:3] == ["run", "--format", "json"] and "--quiet" not in args
    assert value_after(args, "--agent") == AGENT and value_after(args, "--dir") == str(tmp_path / "ws")
    assert value_after(args, "--model") == "anthropic/claude-sonnet-4-5"
    assert args[-2:] == ["--", "-rf everything"]
    config = json.loads(inv.env["OPENCODE_CONFIG_CONTENT"])
    agent = config["agent"][AGENT]
    assert agent["prompt"].startswith("You write files. MARKER-7Q") and agent["steps"] == 4
    assert agent["tools"] == {"time_*": False, "time_get_current_time": True, "search_admin": False}
    assert config["mcp"]["time"] == {"type": "local", "command": ["uvx", "mcp-server-time"], "enabled": True}
    assert config["mcp"]["search"]["type"] == "remote"
    assert json.loads(inv.env["OPENCODE_PERMISSION"]) == {"*": "allow"}


def test_copilot_invocation(tmp_path: Path) -> None:
    flags = frozenset({"--usage-output-file", "--no-ask-user"})
    inv = Copilot().build_invocation(request(tmp_path, model="gpt-5", flags=flags))
    args = inv.args
    assert args[0].startswith("--prompt=## Instructions\nYou write files.")
    assert value_after(args, "--output-format") == "json"
    assert "--allow-all-tools" in args and "--no-ask-user" in args
    assert value_after(args, "--usage-output-file") == str(tmp_path / "scratch" / USAGE_FILE)
    config = json.loads(Path(value_after(args, "--additional-mcp-config").removeprefix("@")).read_text())
    assert config["mcpServers"]["time"] == {
        "type": "local",
        "command": "uvx",
        "args": ["mcp-server-time"],
        "tools": ["get_current_time"],
    }
    assert "--deny-tool=search(admin)" in args


def test_copilot_leaves_out_flags_an_older_build_lacks(tmp_path: Path) -> None:
    args = Copilot().build_invocation(request(tmp_path)).args
    assert "--usage-output-file" not in args and "--no-ask-user" not in args


@pytest.mark.parametrize(
    "runtime", [ClaudeCode(), Codex(), Gemini(), Cursor(), OpenCode(), Copilot()], ids=lambda r: r.id
)
def test_expert_without_skills_gets_the_default_base_skill_replaced(
    runtime: CliRuntime, tmp_path: Path
) -> None:
    inv = runtime.build_invocation(request(tmp_path, expert="plain"))
    assert [(s.name, s.applied) for s in inv.skills] == [("@perstack/base", True)]
    assert "built-in file and shell tools" in inv.skills[0].detail
    joined = " ".join(inv.args) + " ".join(inv.env.values())
    assert "MARKER-7Q" in joined or "MARKER-7Q" in (tmp_path / "scratch" / "system.md").read_text()


@pytest.mark.parametrize(
    ("runtime", "model", "accepted"),
    [
        (ClaudeCode(), "claude-sonnet-4-5", True),
        (ClaudeCode(), "gpt-5", False),
        (Codex(), "gpt-5-codex", True),
        (Codex(), "claude-sonnet-4-5", False),
        (Gemini(), "gemini-3-pro", True),
        (Gemini(), "claude-sonnet-4-5", False),
        (OpenCode(), "openrouter/x", True),
        (Copilot(), "claude-sonnet-4.5", True),
        (Cursor(), "sonnet-4.5", True),
        (Cursor(), "claude-sonnet-4-5", False),
    ],
)
def test_model_families(runtime: CliRuntime, model: str, accepted: bool) -> None:
    assert runtime.accepts_model(model) is accepted
