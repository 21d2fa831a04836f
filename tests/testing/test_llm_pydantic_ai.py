"""pydantic-ai, which the native runtime is built on, runs a full tool loop against the server.

This is the closest these tests get to the runtime itself: a real agent loop that sends the tool
result back, in both protocols, streamed and not.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from sandbox.testing import Expectation, ScriptedLLMServer, ToolCall, Turn
from sandbox.testing.pytest_plugin import LLMServerFactory

SCRIPT = [
    Turn(
        thinking="I need to add.",
        tool_calls=[ToolCall("add", {"a": 19, "b": 23})],
        expect=Expectation(system_contains=["You add numbers."], tools_include=["add"]),
    ),
    Turn("The sum is 42.", expect=Expectation(tool_result_contains=["42"])),
]


def model_for(protocol: str, srv: ScriptedLLMServer) -> Model:
    if protocol == "anthropic":
        return AnthropicModel(
            "claude-scripted", provider=AnthropicProvider(base_url=srv.base_url, api_key="sk-a")
        )
    return OpenAIChatModel(
        "gpt-scripted", provider=OpenAIProvider(base_url=srv.openai_base_url, api_key="sk-o")
    )


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
@pytest.mark.parametrize("stream", [False, True])
def test_agent_tool_loop(llm_server: LLMServerFactory, protocol: str, stream: bool) -> None:
    srv = llm_server(SCRIPT)
    agent = Agent(model_for(protocol, srv), system_prompt="You add numbers.")
    calls: list[tuple[int, int]] = []

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append((a, b))
        return a + b

    async def run() -> str:
        if stream:
            async with agent.run_stream("What is 19 + 23?") as result:
                return await result.get_output()
        return (await agent.run("What is 19 + 23?")).output

    assert asyncio.run(run()) == "The sum is 42."
    assert calls == [(19, 23)]
    assert [r.protocol for r in srv.requests] == [protocol, protocol]
    assert srv.requests[1].tool_results == ("42",)
