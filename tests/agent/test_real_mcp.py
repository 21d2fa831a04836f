"""Real MCP servers started through the runtime's stdio skills: the npm `server-everything` (via npx)
and the PyPI `mcp-server-time` (via uvx). Both need the registries the first time, hence `slow`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sandbox.testing import Expectation, ToolCall, Turn
from tests.agent.conftest import Harness, host_env

pytestmark = pytest.mark.slow

VENV_BIN = str(Path(sys.executable).parent)


def _env(harness: Harness) -> dict[str, str]:
    env = host_env(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=harness.server.base_url)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def test_server_everything_via_npx(harness: Harness) -> None:
    toml = """
[experts."main"]
instruction = "Use everything."
[experts."main".skills."everything"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@modelcontextprotocol/server-everything"
pick = ["echo", "get-sum"]
"""
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("echo", {"message": "ping-42"})],
            expect=Expectation(tools=["echo", "get-sum"]),
        ),
        Turn("done", expect=Expectation(tool_result_contains=["ping-42"])),
    )
    result = harness.run(harness.options(toml, env=_env(harness), timeout_ms=120_000))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    starting = result.last("skillStarting")
    assert starting.command == "npx" and starting.args == ["-y", "@modelcontextprotocol/server-everything"]
    assert result.last("skillConnected").server_info is not None


def test_mcp_server_time_via_uvx(harness: Harness) -> None:
    toml = """
[experts."main"]
instruction = "Tell the time."
[experts."main".skills."time"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "mcp-server-time"
"""
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("get_current_time", {"timezone": "UTC"})],
            expect=Expectation(tools_include=["get_current_time"]),
        ),
        Turn("it is now", expect=Expectation(tool_result_contains=["UTC"])),
    )
    result = harness.run(harness.options(toml, env=_env(harness), timeout_ms=120_000))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    assert result.last("skillStarting").args == ["mcp-server-time"]
    assert result.last("skillConnected").server_info.name


def test_example_time_keeper_runs(harness: Harness) -> None:
    """The Expert a new user runs first (examples/time-keeper), end to end with a scripted model."""
    import tomllib

    from sandbox.config import PerstackConfig
    from sandbox.options import RunOptions

    path = Path(__file__).parents[2] / "examples" / "time-keeper" / "perstack.toml"
    config = PerstackConfig.model_validate(tomllib.loads(path.read_text()))
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("get_current_time", {"timezone": "Asia/Tokyo"})],
            expect=Expectation(tools_include=["get_current_time", "echo", "attemptCompletion", "think"]),
        ),
        Turn(
            tool_calls=[ToolCall("attemptCompletion", {})],
            expect=Expectation(tool_result_contains=["Asia/Tokyo"]),
        ),
        Turn("It is late evening in Tokyo."),
    )
    options = RunOptions(
        config=config,
        config_path=path,
        expert_key="time-keeper",
        query="What time is it in Tokyo?",
        env=_env(harness),
        workspace=harness.workspace,
        jobs_dir=harness.jobs_dir,
        timeout_ms=120_000,
    )
    result = harness.run(options)
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0, result.last("stopRunByError").error
    assert result.last("completeRun").text == "It is late evening in Tokyo."
