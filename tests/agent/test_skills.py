"""MCP stdio skills through the official SDK: events and timings, pick/omit, env filtering, requiredEnv,
lazyInit, a server crashing mid-run, and every process closed at the end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sandbox._errors import ToolError, UserError
from sandbox.testing import Expectation, ToolCall, Turn
from tests.agent.conftest import Harness, host_env

PROBE = Path(__file__).parent / "fixtures" / "mcp_probe.py"


def probe_expert(extra: str = "", *, required: str = "[]", skill_extra: str = "") -> str:
    return f"""
[experts."main"]
instruction = "Use the probe."
[experts."main".skills."probe"]
type = "mcpStdioSkill"
description = "Probe server"
rule = "Probe carefully"
command = "{sys.executable}"
args = ["{PROBE}"]
requiredEnv = {required}
{skill_extra}
{extra}
"""


def test_stdio_skill_events_pick_omit_and_call(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("echo", {"text": "hi"})],
            expect=Expectation(tools=["echo", "env_probe"], system_contains=["Probe carefully"]),
        ),
        Turn("done", expect=Expectation(tool_result_contains=["echo:hi"])),
    )
    toml = probe_expert(skill_extra='pick = ["echo", "env_probe", "crash"]\nomit = ["crash"]')
    result = harness.run(harness.options(toml))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    types = result.types()
    assert types.index("skillStarting") < types.index("skillConnected") < types.index("startRun")
    starting = result.last("skillStarting")
    assert (
        starting.skill_name == "probe"
        and starting.command == sys.executable
        and starting.args == [str(PROBE)]
    )
    connected = result.last("skillConnected")
    assert connected.server_info.name == "probe"
    for timing in (
        "spawn_duration_ms",
        "handshake_duration_ms",
        "tool_discovery_duration_ms",
        "total_duration_ms",
    ):
        assert getattr(connected, timing) >= 0
    assert any(e.message == "probe starting" for e in result.of("skillStderr"))
    assert types[-1] == "skillDisconnected"  # closed after the run


def test_env_is_filtered_and_required_env_passed(harness: Harness) -> None:
    env = host_env(
        ANTHROPIC_API_KEY="sk-ant-test",
        ANTHROPIC_BASE_URL=harness.server.base_url,
        SECRET_TOKEN="leak-me",
        MY_KEY="value-1",
        NODE_OPTIONS="--require evil.js",
    )
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("env_names", {}, id="a"), ToolCall("env_probe", {"name": "MY_KEY"}, id="b")]
        ),
        Turn("ok"),
    )
    result = harness.run(harness.options(probe_expert(required='["MY_KEY", "NODE_OPTIONS"]'), env=env))
    assert result.code == 0
    outputs = {r.id: r.result[0].text for r in result.last("resolveToolResults").tool_results}
    names = set(outputs["a"].split(","))
    assert outputs["b"] == "value-1"
    assert "SECRET_TOKEN" not in names and "ANTHROPIC_API_KEY" not in names
    assert "NODE_OPTIONS" not in names  # protected: cannot be passed even when required
    assert "PATH" in names


def test_missing_required_env_names_the_skill(harness: Harness) -> None:
    with pytest.raises(UserError, match="Skill probe requires environment variable NOT_SET_ANYWHERE"):
        harness.run(harness.options(probe_expert(required='["NOT_SET_ANYWHERE"]')))


def test_skill_crash_mid_run_is_reported_and_the_run_goes_on(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("crash", {})]),
        Turn(
            tool_calls=[ToolCall("echo", {"text": "again"})],
            expect=Expectation(tool_result_contains=["probe"]),
        ),
        Turn("recovered", expect=Expectation(tool_result_contains=["not available"])),
    )
    result = harness.run(harness.options(probe_expert()))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    first = result.of("resolveToolResults")[0].tool_results[0]
    assert "failed to run crash" in first.result[0].text
    assert len(result.of("skillDisconnected")) == 1
    assert any(e.message == "about to crash" for e in result.of("skillStderr"))


def test_skill_that_cannot_start_fails_the_run_before_it_starts(harness: Harness) -> None:
    toml = """
[experts."main"]
instruction = "x"
[experts."main".skills."broken"]
type = "mcpStdioSkill"
command = "/nonexistent/binary"
args = []
"""

    with pytest.raises(ToolError, match="Skill broken failed to start"):
        harness.run(harness.options(toml))


def test_lazy_skill_does_not_block_the_first_generation(harness: Harness) -> None:
    slow = (
        "import runpy, sys, time; time.sleep(3); sys.argv = [sys.argv[1]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    toml = f"""
[experts."main"]
instruction = "x"
[experts."main".skills."lazy"]
type = "mcpStdioSkill"
command = "{sys.executable}"
args = ["-c", "{slow}", "{PROBE}"]
lazyInit = true
"""
    harness.server.enqueue(Turn("no tools needed", expect=Expectation(tools=[])))
    result = harness.run(harness.options(toml))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    assert "skillStarting" in result.types()
    assert "skillConnected" not in result.types()
    assert not _probe_processes()


def _probe_processes() -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(PROBE).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_skill_processes_are_closed_after_the_run(harness: Harness) -> None:
    harness.server.enqueue(Turn("done"))
    result = harness.run(harness.options(probe_expert()))
    assert result.code == 0
    assert not _probe_processes()
