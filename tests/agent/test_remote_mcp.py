"""`mcpSseSkill` endpoints: streamable HTTP and legacy SSE, against the probe server over HTTP.

The config layer only accepts public https endpoints, so the skill config is constructed directly here
(the transport code is what is under test, not the endpoint policy)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.agent.skills.mcp import McpSkill, SkillContext
from sandbox.config import McpSseSkill
from sandbox.events import EventBase

PROBE = Path(__file__).parent / "fixtures" / "mcp_probe.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=[("streamable-http", "/mcp"), ("sse", "/sse")], ids=["streamable-http", "sse"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    transport, path = request.param
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(PROBE), transport, str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_remote_skill_lists_and_calls_tools(endpoint: str, tmp_path: Path) -> None:
    events: list[EventBase] = []

    async def scenario() -> tuple[list[str], str]:
        ctx = SkillContext("j", "r", events.append, {}, tmp_path, asyncio.get_running_loop())
        cfg = McpSseSkill.model_construct(type="mcpSseSkill", endpoint=endpoint, pick=("echo",), omit=())
        skill = McpSkill("remote", cfg, ctx)
        try:
            await skill.start()
            names = [t.name for t in skill.tools()]
            out = await skill.call("echo", {"text": "over-http"})
        finally:
            await skill.close()
        return names, out.parts[0].text  # type: ignore[union-attr]

    names, text = asyncio.run(scenario())
    assert names == ["echo"]
    assert text == "echo:over-http"
    assert [e.type for e in events] == ["skillStarting", "skillConnected", "skillDisconnected"]
