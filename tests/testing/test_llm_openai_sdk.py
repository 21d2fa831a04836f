"""The official `openai` SDK, sync and async, streaming and not, against the scripted server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pytest

from sandbox.testing import ErrorSpec, ScriptedLLMServer, ToolCall, Turn, Usage
from sandbox.testing.pytest_plugin import LLMServerFactory

MODEL = "gpt-scripted"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]
ARGS = {"command": ["ls", "-la", "/workspace"], "timeout": 30, "env": {"LANG": "C.UTF-8"}}


def client(srv: ScriptedLLMServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key="sk-openai-test", max_retries=0, **kwargs)


def aclient(srv: ScriptedLLMServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="sk-openai-test", max_retries=0)


def test_text_turn_non_streaming(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Hello from the script.", usage=Usage(40, 6, cache_read_input_tokens=2))])
    completion = client(srv).chat.completions.create(model=MODEL, messages=HELLO)
    choice = completion.choices[0]
    assert choice.message.content == "Hello from the script."
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None
    # OpenAI counts cached tokens inside prompt_tokens.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (42, 6)
    assert completion.usage.total_tokens == 48
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 2
    assert srv.requests[0].api_key == "sk-openai-test"
    assert srv.requests[0].headers["authorization"] == "Bearer sk-openai-test"
    assert srv.requests[0].protocol == "openai"


def test_tool_calls_non_streaming(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn(tool_calls=[ToolCall("bash", ARGS, id="call_custom"), ToolCall("noop", {})])])
    message = client(srv).chat.completions.create(model=MODEL, messages=HELLO).choices[0].message
    assert message.content is None
    calls = message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("call_custom", "bash", ARGS),
        ("call_sbx_0_1", "noop", {}),
    ]


def test_tool_calls_streaming_accumulate_scripted_args(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Running it.", tool_calls=[ToolCall("bash", ARGS), ToolCall("read", {"p": "x"})])])
    with client(srv).chat.completions.stream(model=MODEL, messages=HELLO) as stream:
        fragments = 0
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                fragments += 1
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Running it."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("bash", ARGS),
        ("read", {"p": "x"}),
    ]
    assert [c.id for c in calls] == ["call_sbx_0_0", "call_sbx_0_1"]
    assert fragments > 4  # arguments were split across chunks


def test_raw_stream_chunks_and_usage_chunk(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("abcdefghijklmnopqrstuvwxyz", usage=Usage(11, 5)), Turn("no usage")])
    c = client(srv)
    chunks = list(
        c.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "abcdefghijklmnopqrstuvwxyz"
    assert len([ch for ch in chunks if ch.choices and ch.choices[0].delta.content]) >= 3
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 5)
    plain = list(c.chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert all(ch.usage is None for ch in plain)
    assert all(ch.choices for ch in plain)


def test_thinking_is_sent_as_reasoning_content(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("4", thinking="2+2"), Turn("5", thinking="2+3")])
    message = client(srv).chat.completions.create(model=MODEL, messages=HELLO).choices[0].message
    assert (message.model_extra or {})["reasoning_content"] == "2+2"
    chunks = list(client(srv).chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    reasoning = "".join((ch.choices[0].delta.model_extra or {}).get("reasoning_content", "") for ch in chunks)
    assert reasoning == "2+3"


def test_length_finish_reason(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("trunc", stop_reason="max_tokens")])
    choice = client(srv).chat.completions.create(model=MODEL, messages=HELLO).choices[0]
    assert choice.finish_reason == "length"


def test_async_client(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("first"), Turn(tool_calls=[ToolCall("search", {"q": "x"})])])

    async def go() -> tuple[str | None, str]:
        async with aclient(srv) as c:
            first = await c.chat.completions.create(model=MODEL, messages=HELLO)
            async with c.chat.completions.stream(model=MODEL, messages=HELLO) as stream:
                second = await stream.get_final_completion()
        calls = second.choices[0].message.tool_calls or []
        return first.choices[0].message.content, calls[0].function.arguments

    content, arguments = asyncio.run(go())
    assert content == "first"
    assert json.loads(arguments) == {"q": "x"}


@pytest.mark.parametrize(
    ("spec", "error", "error_type"),
    [
        (ErrorSpec.rate_limit(retry_after=3), openai.RateLimitError, "requests"),
        (ErrorSpec.server_error(), openai.InternalServerError, "server_error"),
        (ErrorSpec(529), openai.InternalServerError, "server_error"),
        (ErrorSpec(404, type="model_not_found"), openai.NotFoundError, "model_not_found"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_http_errors_surface_as_sdk_errors(
    llm_server: LLMServerFactory,
    spec: ErrorSpec,
    error: type[openai.APIStatusError],
    error_type: str,
    stream: bool,
) -> None:
    srv = llm_server([Turn(error=spec)])
    with pytest.raises(error) as raised:
        if stream:
            list(client(srv).chat.completions.create(model=MODEL, messages=HELLO, stream=True))
        else:
            client(srv).chat.completions.create(model=MODEL, messages=HELLO)
    assert raised.value.status_code == spec.status
    assert isinstance(raised.value.body, dict)  # the SDK unwraps {"error": {...}}
    assert raised.value.body["type"] == error_type
    assert raised.value.request_id == "req_sbx_0"
    if spec.status == 429:
        assert raised.value.code == "rate_limit_exceeded"
        assert raised.value.response.headers["retry-after"] == "3"


def test_mid_stream_error(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("partial answer before the failure", error=ErrorSpec(500, mid_stream=True))])
    received: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in client(srv).chat.completions.create(model=MODEL, messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert not isinstance(raised.value, openai.APIStatusError)  # HTTP said 200; the body said error
    assert isinstance(raised.value.body, dict) and raised.value.body["type"] == "server_error"
    assert "".join(received) and "".join(received) != "partial answer before the failure"


def test_delay_beyond_client_timeout_raises_timeout(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("late", delay_s=5), Turn("on time")])
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(srv, timeout=0.3).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert time.monotonic() - started < 3
    assert (
        client(srv).chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content
        == "on time"
    )


def test_models_list(llm_server: LLMServerFactory) -> None:
    srv = llm_server(models=["gpt-a", "gpt-b"])
    c = client(srv)
    assert [m.id for m in c.models.list()] == ["gpt-a", "gpt-b"]
    assert c.models.retrieve("gpt-a").owned_by == "sandbox-testing"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("gpt-unknown")
    assert [u.kind for u in srv.unexpected] == ["route"]
    srv.set_script([])  # forget the deliberate 404 so the teardown check passes


def test_required_key(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("ok")], require_key="sk-right", check=False)
    with pytest.raises(openai.AuthenticationError) as raised:
        client(srv).chat.completions.create(model=MODEL, messages=HELLO)
    assert raised.value.code == "invalid_api_key"
    assert [u.kind for u in srv.unexpected] == ["auth"]
    assert srv.pending == [(0, Turn("ok"))]  # the rejected request consumed no turn


def test_wrong_base_url_is_recorded_with_a_hint(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("unused")], check=False)
    wrong = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)  # missing /v1
    with pytest.raises(openai.NotFoundError):
        wrong.chat.completions.create(model=MODEL, messages=HELLO)
    (problem,) = srv.unexpected
    assert problem.kind == "route"
    assert "/v1" in problem.message and "openai_base_url" in problem.message
