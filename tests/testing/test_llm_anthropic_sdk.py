"""The official `anthropic` SDK, sync and async, streaming and not, against the scripted server.

If the SDK can parse what the server sends (and its stream accumulator rebuilds the scripted tool
input and thinking), then clients built on the SDK, like our runtime, see the same bytes they would
see from the real API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anthropic
import pytest

from sandbox.testing import ErrorSpec, ScriptedLLMServer, ToolCall, Turn, Usage
from sandbox.testing.pytest_plugin import LLMServerFactory

MODEL = "claude-scripted"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]
ARGS = {"path": "notes/today.md", "lines": [1, 2, 3], "options": {"follow": True, "encoding": "utf-8"}}


def client(srv: ScriptedLLMServer, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.base_url, api_key="sk-ant-test", max_retries=0, **kwargs)


def aclient(srv: ScriptedLLMServer, **kwargs: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=srv.base_url, api_key="sk-ant-test", max_retries=0, **kwargs)


def test_text_turn_non_streaming(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Hello from the script.", usage=Usage(42, 7, cache_read_input_tokens=5))])
    message = client(srv).messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == "Hello from the script."
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == (42, 7)
    assert message.usage.cache_read_input_tokens == 5
    assert srv.requests[0].api_key == "sk-ant-test"
    assert srv.requests[0].protocol == "anthropic"


def test_tool_use_streaming_accumulates_scripted_input(llm_server: LLMServerFactory) -> None:
    srv = llm_server(
        [Turn("Let me look.", tool_calls=[ToolCall("read_file", ARGS), ToolCall("list_dir", {})])]
    )
    deltas: list[str] = []
    with client(srv).messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas.append(event.delta.partial_json)
        final = stream.get_final_message()
    tools = [b for b in final.content if b.type == "tool_use"]
    assert [(t.name, t.input) for t in tools] == [("read_file", ARGS), ("list_dir", {})]
    assert [t.id for t in tools] == ["toolu_sbx_0_0", "toolu_sbx_0_1"]
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "text" and final.content[0].text == "Let me look."
    # The input really arrived in pieces, so a client that parsed one delta alone would break.
    assert len([d for d in deltas if d]) > 3


def test_thinking_streaming_and_signature(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Answer: 4", thinking="Two plus two is four, obviously.")])
    kinds: list[str] = []
    with client(srv).messages.stream(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=HELLO,
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                kinds.append(event.delta.type)
        final = stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking" and thinking.thinking == "Two plus two is four, obviously."
    assert thinking.signature.startswith("sig_sbx_")
    assert text.type == "text" and text.text == "Answer: 4"
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds
    assert kinds.index("signature_delta") < kinds.index("text_delta")


def test_streaming_usage_and_max_tokens(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("cut o", stop_reason="max_tokens", usage=Usage(100, 3, 10, 20))])
    with client(srv).messages.stream(model=MODEL, max_tokens=3, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    usage = final.usage
    assert (usage.input_tokens, usage.output_tokens) == (100, 3)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (10, 20)


def test_default_usage_is_estimated(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("x" * 40), Turn("y")])
    small = client(srv).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    big = client(srv).messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "z" * 400}]
    )
    assert small.usage.output_tokens == 10
    assert big.usage.output_tokens == 1
    assert big.usage.input_tokens > small.usage.input_tokens + 90


def test_async_client_streaming_and_not(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("one"), Turn(tool_calls=[ToolCall("search", {"q": "scripted servers"})])])

    async def go() -> tuple[str, dict[str, object]]:
        async with aclient(srv) as c:
            first = await c.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
            async with c.messages.stream(model=MODEL, max_tokens=8, messages=HELLO) as stream:
                second = await stream.get_final_message()
        assert first.content[0].type == "text" and second.content[0].type == "tool_use"
        return first.content[0].text, dict(second.content[0].input)

    assert asyncio.run(go()) == ("one", {"q": "scripted servers"})
    assert [r.stream for r in srv.requests] == [False, True]


@pytest.mark.parametrize(
    ("spec", "error", "error_type"),
    [
        (ErrorSpec.rate_limit(retry_after=7), anthropic.RateLimitError, "rate_limit_error"),
        (ErrorSpec.overloaded(), anthropic.OverloadedError, "overloaded_error"),
        (ErrorSpec.server_error(), anthropic.InternalServerError, "api_error"),
        (ErrorSpec(403, message="nope"), anthropic.PermissionDeniedError, "permission_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_http_errors_surface_as_sdk_errors(
    llm_server: LLMServerFactory,
    spec: ErrorSpec,
    error: type[anthropic.APIStatusError],
    error_type: str,
    stream: bool,
) -> None:
    srv = llm_server([Turn(error=spec)])
    with pytest.raises(error) as raised:
        if stream:
            with client(srv).messages.stream(model=MODEL, max_tokens=8, messages=HELLO) as s:
                s.get_final_message()
        else:
            client(srv).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert raised.value.status_code == spec.status
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "error"
    assert raised.value.body["error"]["type"] == error_type
    assert raised.value.request_id == "req_sbx_0"
    if spec.retry_after is not None:
        assert raised.value.response.headers["retry-after"] == "7"
    assert srv.requests[0].status == spec.status
    assert srv.unexpected == []  # a scripted error is part of the plan, not a surprise


def test_mid_stream_error_event(llm_server: LLMServerFactory) -> None:
    srv = llm_server(
        [Turn("This answer will be cut off halfway through.", error=ErrorSpec.overloaded(mid_stream=True))]
    )
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client(srv).messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert raised.value.status_code == 200  # the HTTP response had already started
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["error"]["type"] == "overloaded_error"
    assert seen[0] == "message_start" and "content_block_delta" in seen
    assert "message_stop" not in seen


def test_mid_stream_error_on_non_streaming_request_is_plain_http_error(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("x", error=ErrorSpec.overloaded(mid_stream=True))])
    with pytest.raises(anthropic.OverloadedError):
        client(srv).messages.create(model=MODEL, max_tokens=8, messages=HELLO)


def test_delay_beyond_client_timeout_raises_timeout(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("too late", delay_s=5), Turn("in time")])
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        client(srv, timeout=0.3).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert time.monotonic() - started < 3
    # The server is not stuck on the abandoned request: the next turn is served right away.
    reply = client(srv).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert reply.content[0].type == "text" and reply.content[0].text == "in time"


def test_delay_within_timeout_is_served(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("slow but fine", delay_s=0.3)])
    started = time.monotonic()
    reply = client(srv, timeout=5).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert time.monotonic() - started >= 0.3
    assert reply.content[0].type == "text" and reply.content[0].text == "slow but fine"


def test_models_list_and_count_tokens_do_not_consume_turns(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("only turn")], models=["claude-a", "claude-b"])
    c = client(srv)
    assert [m.id for m in c.models.list()] == ["claude-a", "claude-b"]
    assert c.models.retrieve("claude-b").id == "claude-b"
    counted = c.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens > 0
    assert c.messages.create(model=MODEL, max_tokens=8, messages=HELLO).content[0].type == "text"
    assert [r.path for r in srv.requests] == [
        "/v1/models",
        "/v1/models/claude-b",
        "/v1/messages/count_tokens",
        "/v1/messages",
    ]
    assert [r.turn_index for r in srv.requests] == [None, None, None, 0]


def test_required_key_rejects_wrong_key_in_anthropic_shape(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("secret")], require_key="sk-right", check=False)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        client(srv).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["error"]["type"] == "authentication_error"
    assert "sk-right" not in raised.value.body["error"]["message"]
    assert [u.kind for u in srv.unexpected] == ["auth"]
    ok = anthropic.Anthropic(base_url=srv.base_url, api_key="sk-right", max_retries=0)
    assert ok.messages.create(model=MODEL, max_tokens=8, messages=HELLO).content[0].type == "text"


def test_bearer_token_counts_as_key(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("ok")], require_key="sk-bearer")
    c = anthropic.Anthropic(base_url=srv.base_url, auth_token="sk-bearer", max_retries=0)
    assert c.messages.create(model=MODEL, max_tokens=8, messages=HELLO).content[0].type == "text"
    assert srv.requests[0].headers["authorization"] == "Bearer sk-bearer"


def test_client_giving_up_is_recorded(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("never delivered", delay_s=30), Turn("fast")])
    with pytest.raises(anthropic.APITimeoutError):
        client(srv, timeout=0.2).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    client(srv).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    deadline = time.monotonic() + 2
    while not srv.requests[0].abandoned and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.abandoned for r in srv.requests] == [True, False]


def test_stop_cuts_short_a_delay_with_a_client_still_waiting() -> None:
    srv = ScriptedLLMServer([Turn("never delivered", delay_s=30)]).start()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            client(srv, timeout=20).messages.create(model=MODEL, max_tokens=8, messages=HELLO)
        except anthropic.APIError as err:
            errors.append(err)

    waiter = threading.Thread(target=wait)
    waiter.start()
    while not srv.requests:
        time.sleep(0.01)
    started = time.monotonic()
    srv.stop()
    waiter.join(timeout=5)
    assert time.monotonic() - started < 1.5
    assert not waiter.is_alive() and errors  # the client got an error, not a hang
