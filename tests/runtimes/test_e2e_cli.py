"""The real CLIs from npm, headless, against the scripted LLM server: normalized events and usage.

CI installs them into `.cache/clis` (see docs/runtimes.md for the npm command); `SANDBOX_TEST_CLI_BIN`
points elsewhere. A missing CLI fails the test with the install command: these tests never skip.

Each CLI reaches the scripted server through its own base-URL setting: Claude Code `ANTHROPIC_BASE_URL`;
Codex a custom Responses provider in `$CODEX_HOME/config.toml` (through `responses_shim`, since Codex no
longer speaks Chat Completions); Copilot BYOK `COPILOT_PROVIDER_BASE_URL`; OpenCode an
`@ai-sdk/openai-compatible` provider in its user config. Gemini speaks only Google's protocol, which no
local server here implements: its test runs the real binary to the point where it needs the network.

Turns the agent must get carry `match="MARKER-7Q"` (a string only the Expert's instruction contains), so
helper requests the CLIs make on their own (session titles) take the unmatched filler turn instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import parse_config_text
from sandbox.jobs import JobStore
from sandbox.options import RunOptions
from sandbox.runtimes import run_with_runtime
from sandbox.runtimes._commands import compare_command
from sandbox.testing import ScriptedLLMServer, ToolCall, Turn, Usage

from .conftest import Collected, cli_bin_dir
from .responses_shim import ResponsesShim

pytestmark = pytest.mark.slow

MARKER = "MARKER-7Q"
CONFIG = f"""
model = "claude-test"  # any claude-* name: the scripted server answers to every model

[experts."e2e"]
description = "Creates files"
instruction = "Keep answers short. {MARKER}"
delegates = ["helper"]

[experts."e2e".skills."time"]
type = "mcpStdioSkill"
description = "Clock"
command = "{sys.executable}"
args = ["-m", "mcp_server_time"]

[experts."helper"]
description = "Helps"
instruction = "Help with anything."
"""
FILLER = Turn("Session title", label="helper requests (titles)")


def binary(name: str) -> Path:
    path = cli_bin_dir() / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: install the CLIs with `npm install --prefix .cache/clis "
            "@anthropic-ai/claude-code @openai/codex @google/gemini-cli opencode-ai @github/copilot` "
            "(see docs/runtimes.md)"
        )
    return path


def options(tmp_path: Path, runtime: str, env: dict[str, str], **extra: Any) -> RunOptions:
    config, _ = parse_config_text(CONFIG, "perstack.toml")
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "config": config,
        "config_path": tmp_path / "perstack.toml",
        "expert_key": "e2e",
        "query": "create hello.txt",
        "runtime": runtime,
        "env": {"PATH": f"{cli_bin_dir()}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home(tmp_path)), **env},
        "workspace": workspace,
        "jobs_dir": tmp_path / "perstack" / "jobs",
        "timeout_ms": 180_000,
    }
    return RunOptions(**{**values, **extra})


def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(exist_ok=True)
    return path


def served(srv: ScriptedLLMServer) -> None:
    """Every matched turn was served and nothing unexpected arrived (the filler may stay unused)."""
    assert srv.unexpected == [] or all("HEAD /" in str(u) for u in srv.unexpected), srv.unexpected
    assert all(turn.match is None for _, turn in srv.pending), srv.pending


def tool_names(events: Collected) -> list[tuple[str, str]]:
    return [(c.skill_name, c.tool_name) for e in events.of("callTools") for c in e.tool_calls]


def outputs(events: Collected) -> str:
    return " ".join(p.text for e in events.of("resolveToolResults") for r in e.tool_results for p in r.result)


def assert_job(opts: RunOptions, events: Collected) -> None:
    done = events.of("completeRun")[0]
    job = JobStore(opts.jobs_dir).retrieve_job(done.job_id)
    assert job is not None and job.status == "completed"
    assert JobStore(opts.jobs_dir).list_checkpoints(done.job_id)[-1].status == "completed"


def test_claude_code(tmp_path: Path) -> None:
    binary("claude")
    ws = tmp_path / "ws"
    script = [
        FILLER,
        Turn(
            "I'll create the file.",
            tool_calls=[ToolCall("Write", {"file_path": str(ws / "hello.txt"), "content": "hi\n"})],
            usage=Usage(100, 20, cache_read_input_tokens=50),
            match=MARKER,
        ),
        Turn(
            tool_calls=[ToolCall("mcp__time__get_current_time", {"timezone": "UTC"})],
            usage=Usage(300, 15),
            match=MARKER,
        ),
        Turn("Created hello.txt.", usage=Usage(200, 10), match=MARKER),
    ]
    events = Collected()
    with ScriptedLLMServer(script) as srv:
        opts = options(
            tmp_path,
            "claude-code",
            {"ANTHROPIC_BASE_URL": srv.base_url, "ANTHROPIC_API_KEY": "sk-test", "CLAUDECODE": "1"},
        )
        assert run_with_runtime(opts, events) == 0, events.events[-1]
        served(srv)
        agent = [r for r in srv.requests if MARKER in r.system]
    assert events.types == [
        "initializeRuntime",
        "startRun",
        "callTools",
        "resolveToolResults",
        "callTools",
        "resolveToolResults",
        "completeRun",
    ]
    # instruction appended to Claude Code's system prompt, delegates described with it
    assert agent and "### helper" in agent[0].system and "You are Claude Code" in agent[0].system
    assert tool_names(events) == [("claude-code", "Write"), ("time", "get_current_time")]
    assert "File created successfully" in outputs(events) and '"timezone":"UTC"' in outputs(events).replace(
        " ", ""
    )
    assert (ws / "hello.txt").read_text() == "hi\n"
    init = events.init()
    assert init.runtime == "claude-code" and init.runtime_version and init.runtime_version != "unknown"
    done = events.of("completeRun")[0]
    assert done.text == "Created hello.txt."
    usage = done.checkpoint.metadata["usage"]
    assert usage["turns"] == 3 and usage["costUsd"] > 0
    assert usage["inputTokens"] >= 100 + 50 + 300 + 200 and usage["outputTokens"] >= 45
    assert done.checkpoint.usage.input_tokens == usage["inputTokens"]
    assert {s["name"]: s["applied"] for s in init.model_dump()["skills"]} == {"time": True}
    assert_job(opts, events)


def codex_home(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "codex-home"
    path.mkdir()
    (path / "config.toml").write_text(
        'model = "gpt-5"\nmodel_provider = "scripted"\n'
        f'[model_providers.scripted]\nname = "scripted"\nbase_url = "{base_url}"\n'
        'env_key = "OPENAI_API_KEY"\nwire_api = "responses"\n'
    )
    return path


def test_codex(tmp_path: Path) -> None:
    binary("codex")
    script = [
        Turn(
            "Running a command.",
            tool_calls=[ToolCall("exec_command", {"cmd": "echo hi > hello.txt && cat hello.txt"})],
            usage=Usage(100, 20, cache_read_input_tokens=50),
            match=MARKER,
        ),
        Turn(
            tool_calls=[ToolCall("mcp__time/get_current_time", {"timezone": "UTC"})],
            usage=Usage(150, 5),
            match=MARKER,
        ),
        Turn("Created hello.txt.", usage=Usage(200, 10), match=MARKER),
    ]
    events = Collected()
    with ScriptedLLMServer(script) as srv, ResponsesShim(srv.openai_base_url) as shim:
        env = {"OPENAI_API_KEY": "sk-test", "CODEX_HOME": str(codex_home(tmp_path, shim.base_url))}
        opts = options(tmp_path, "codex", env)
        assert run_with_runtime(opts, events) == 0, events.events[-1]
        served(srv)
        first = shim.requests[0]
    developer = [i for i in first["input"] if i.get("role") == "developer"]
    assert any(MARKER in json.dumps(i) and "### helper" in json.dumps(i) for i in developer)
    # The MCP skill took effect. Codex starts MCP servers without holding back its first request, so on a
    # loaded machine the first request may go out before `uvx mcp-server-time` is listed: any request counts.
    assert any(t.get("name") == "mcp__time" for r in shim.requests for t in r["tools"])
    assert events.types == [
        "initializeRuntime",
        "startRun",
        "callTools",
        "resolveToolResults",
        "callTools",
        "resolveToolResults",
        "completeRun",
    ]
    assert tool_names(events) == [("codex", "shell"), ("time", "get_current_time")]
    assert "hi" in outputs(events) and "UTC" in outputs(events)
    assert (tmp_path / "ws" / "hello.txt").read_text() == "hi\n"
    done = events.of("completeRun")[0]
    assert done.text == "Created hello.txt."
    usage = done.checkpoint.metadata["usage"]
    # Chat usage → Responses usage → Codex's thread total: (100+50) + 150 + 200 prompt tokens, 50 cached
    assert (usage["inputTokens"], usage["cachedInputTokens"], usage["outputTokens"]) == (500, 50, 35)
    assert usage["costUsd"] is None and usage["turns"] is None  # Codex reports neither
    assert_job(opts, events)


def test_copilot(tmp_path: Path) -> None:
    binary("copilot")
    script = [
        Turn(
            "Running a command.",
            tool_calls=[
                ToolCall("bash", {"command": "echo hi > hello.txt && cat hello.txt", "description": "write"})
            ],
            usage=Usage(100, 20, cache_read_input_tokens=50),
            match=MARKER,
        ),
        Turn(
            tool_calls=[ToolCall("time-get_current_time", {"timezone": "UTC"})],
            usage=Usage(120, 5),
            match=MARKER,
        ),
        Turn("Created hello.txt.", usage=Usage(200, 10), match=MARKER),
    ]
    events = Collected()
    with ScriptedLLMServer(script) as srv:
        env = {
            "COPILOT_PROVIDER_BASE_URL": srv.openai_base_url,
            "COPILOT_PROVIDER_TYPE": "openai",
            "COPILOT_PROVIDER_API_KEY": "sk-test",
            "COPILOT_MODEL": "gpt-4.1",
            "COPILOT_OFFLINE": "true",
            "COPILOT_HOME": str(tmp_path / "copilot-home"),
        }
        opts = options(tmp_path, "copilot", env)
        assert run_with_runtime(opts, events) == 0, events.events[-1]
        served(srv)
        first = next(r for r in srv.requests if MARKER in json.dumps(r.body))
    # no system-prompt flag: the instruction travels ahead of the query
    assert "## Instructions" in json.dumps(first.body) and "### helper" in json.dumps(first.body)
    assert tool_names(events) == [("copilot", "bash"), ("time", "get_current_time")]
    assert "UTC" in outputs(events)
    assert (tmp_path / "ws" / "hello.txt").read_text() == "hi\n"
    done = events.of("completeRun")[0]
    assert done.text == "Created hello.txt."
    usage = done.checkpoint.metadata["usage"]
    assert usage["turns"] == 3
    assert (usage["inputTokens"], usage["outputTokens"], usage["cachedInputTokens"]) == (
        150 + 120 + 200,
        35,
        50,
    )
    assert_job(opts, events)


def test_opencode(tmp_path: Path) -> None:
    binary("opencode")
    script = [
        FILLER,
        Turn(
            "Running a command.",
            tool_calls=[
                ToolCall("bash", {"command": "echo hi > hello.txt && cat hello.txt", "description": "write"})
            ],
            usage=Usage(100, 20, cache_read_input_tokens=50),
            match=MARKER,
        ),
        Turn(
            tool_calls=[ToolCall("time_get_current_time", {"timezone": "UTC"})],
            usage=Usage(120, 5),
            match=MARKER,
        ),
        Turn("Created hello.txt.", usage=Usage(200, 10), match=MARKER),
    ]
    events = Collected()
    with ScriptedLLMServer(script) as srv:
        config_dir = home(tmp_path) / ".config" / "opencode"
        config_dir.mkdir(parents=True)
        provider = {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Scripted",
            "options": {"baseURL": srv.openai_base_url, "apiKey": "sk-test"},
            "models": {"gpt-test": {"name": "gpt-test"}},
        }
        (config_dir / "opencode.json").write_text(json.dumps({"provider": {"scripted": provider}}))
        opts = options(tmp_path, "opencode", {"OPENAI_API_KEY": "sk-test"}, model="scripted/gpt-test")
        assert run_with_runtime(opts, events) == 0, events.events[-1]
        served(srv)
        agent = [r for r in srv.requests if MARKER in r.system]
    assert agent and agent[0].system.startswith(f"Keep answers short. {MARKER}")  # the custom agent's prompt
    assert tool_names(events) == [("opencode", "bash"), ("time", "get_current_time")]
    assert (tmp_path / "ws" / "hello.txt").read_text() == "hi\n"
    done = events.of("completeRun")[0]
    assert done.text == "Created hello.txt."
    usage = done.checkpoint.metadata["usage"]
    assert usage["turns"] == 3 and usage["outputTokens"] == 35
    assert usage["inputTokens"] == 150 + 120 + 200 and usage["cachedInputTokens"] == 50
    assert_job(opts, events)


def test_gemini_real_binary_accepts_the_invocation_then_reports_its_own_error(tmp_path: Path) -> None:
    """No Gemini-protocol server exists here: run until Gemini needs the network, which a dead proxy
    refuses, and check the real CLI took our flags (it printed `init`) and its failure became
    `stopRunByError` (timeout, as Gemini retries network errors with backoff)."""
    binary("gemini")
    events = Collected()
    env = {
        "GEMINI_API_KEY": "not-a-key",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    opts = options(tmp_path, "gemini", env, timeout_ms=12_000)
    assert run_with_runtime(opts, events) == 1
    assert events.types == ["initializeRuntime", "startRun", "stopRunByError"]
    stop = events.of("stopRunByError")[0]
    assert stop.checkpoint.metadata["sessionId"]  # the real `init` event was parsed
    assert stop.error.name in ("TimeoutError", "AdapterError")


def test_compare_native_claude_code_and_codex(tmp_path: Path) -> None:
    """`sandbox compare`'s engine on three runtimes, each answering from the same scripted server."""
    binary("claude")
    binary("codex")
    answer = [Turn("Done.", usage=Usage(40, 4), match=MARKER)]
    with (
        ScriptedLLMServer([FILLER, *answer, FILLER, *answer, *answer]) as srv,
        ResponsesShim(srv.openai_base_url) as shim,
    ):
        env = {
            "ANTHROPIC_BASE_URL": srv.base_url,
            "ANTHROPIC_API_KEY": "sk-test",
            "OPENAI_API_KEY": "sk-test",
            "CODEX_HOME": str(codex_home(tmp_path, shim.base_url)),
        }
        opts = options(tmp_path, "perstack", env)
        code, table = compare_command(opts, ["perstack", "claude-code", "codex"])
        rows = compare_rows(table)
    assert code == 0, table
    assert [r[:2] for r in rows] == [
        ["perstack", "completed"],
        ["claude-code", "completed"],
        ["codex", "completed"],
    ]
    jobs = [r[-1] for r in rows]
    assert len(set(jobs)) == 3 and all((opts.jobs_dir / job / "job.json").is_file() for job in jobs)
    assert rows[2][3:5] == ["40", "4"]  # Codex's input/output tokens, as the scripted turn reported them


def compare_rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[1:] if line.strip() and not line.startswith(" ")][:3]
