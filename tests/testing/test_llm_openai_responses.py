"""The OpenAI Responses API (what current Codex speaks) through the official `openai` SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest

from sandbox.testing import ErrorSpec, Expectation, ScriptedLLMServer, ToolCall, Turn, Usage
from sandbox.testing.pytest_plugin import LLMServerFactory

MODEL = "gpt-scripted"
ARGS = {"command": ["bash", "-lc", "ls -la"], "workdir": "/workspace", "timeout_ms": 1000}
TOOLS: list[Any] = [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}]


def client(srv: ScriptedLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key="sk-codex", max_retries=0)


def test_text_non_streaming(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Hi from the script.", usage=Usage(30, 4, cache_read_input_tokens=6))])
    response = client(srv).responses.create(model=MODEL, instructions="Be brief.", input="hello")
    assert response.output_text == "Hi from the script."
    assert response.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (36, 4)
    assert response.usage.input_tokens_details.cached_tokens == 6
    request = srv.requests[0]
    assert request.protocol == "openai-responses"
    assert request.system == "Be brief."
    assert request.messages == (("user", "hello"),)
    assert request.api_key == "sk-codex"


def test_streamed_tool_call_and_reasoning_accumulate(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Listing.", thinking="Use the shell.", tool_calls=[ToolCall("shell", ARGS)])])
    kinds: list[str] = []
    with client(srv).responses.stream(model=MODEL, input="list files", tools=TOOLS) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    call = final.output[2]
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments), call.call_id) == ("shell", ARGS, "call_sbx_0_0")
    assert final.output_text == "Listing."
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Use the shell."
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.count("response.function_call_arguments.delta") > 3
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 3


def test_tool_round_trip_with_expectations(llm_server: LLMServerFactory) -> None:
    srv = llm_server(
        [
            Turn(tool_calls=[ToolCall("shell", {"command": ["ls"]})], expect=Expectation(tools=["shell"])),
            Turn(
                "Two files.",
                expect=Expectation(
                    protocol="openai-responses",
                    tool_result_contains=["a.txt"],
                    system_contains=["coding agent"],
                ),
            ),
        ]
    )
    c = client(srv)
    first = c.responses.create(model=MODEL, instructions="You are a coding agent.", input="ls", tools=TOOLS)
    call = first.output[0]
    assert call.type == "function_call"
    follow_up: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "ls"}]},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "a.txt\nb.txt"},
    ]
    second = c.responses.create(model=MODEL, instructions="You are a coding agent.", input=follow_up)
    assert second.output_text == "Two files."
    assert srv.requests[1].tool_results == ("a.txt\nb.txt",)


def test_max_tokens_is_incomplete(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("cut", stop_reason="max_tokens"), Turn("cut again", stop_reason="max_tokens")])
    response = client(srv).responses.create(model=MODEL, input="x")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    events = [e.type for e in client(srv).responses.create(model=MODEL, input="x", stream=True)]
    assert events[-1] == "response.incomplete"


def test_async_streaming(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("async text")])

    async def go() -> str:
        async with (
            openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0) as c,
            c.responses.stream(model=MODEL, input="x") as stream,
        ):
            final = await stream.get_final_response()
        return final.output_text

    assert asyncio.run(go()) == "async text"


def test_http_error(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn(error=ErrorSpec.rate_limit(retry_after=2))])
    with pytest.raises(openai.RateLimitError) as raised:
        client(srv).responses.create(model=MODEL, input="x", stream=True)
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after"] == "2"


def test_mid_stream_failure_is_response_failed(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("never", error=ErrorSpec(500, mid_stream=True, message="boom"))])
    events = list(client(srv).responses.create(model=MODEL, input="x", stream=True))
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert (failed.response.error.code, failed.response.error.message) == ("server_error", "boom")


def test_sequence_numbers_rise_by_one(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("abc " * 10, tool_calls=[ToolCall("shell", ARGS)])])
    response = httpx.post(
        srv.openai_base_url + "/responses", json={"model": MODEL, "input": "x", "stream": True}, timeout=10
    )
    payloads = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names == [p["type"] for p in payloads]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    deltas = "".join(p["delta"] for p in payloads if p["type"] == "response.function_call_arguments.delta")
    assert json.loads(deltas) == ARGS
