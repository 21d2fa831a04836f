"""The bytes on the wire, read without an SDK: event order and framing that SDKs tolerate but other
clients (Claude Code, Codex, our own parsers) may depend on."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sandbox.testing import ErrorSpec, ToolCall, Turn
from sandbox.testing.pytest_plugin import LLMServerFactory

ARGS = {"query": "where is the config file?", "limit": 10}


def sse_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body, parsed by the spec's rules (blank line ends an event)."""
    events: list[tuple[str | None, str]] = []
    event: str | None = None
    data: list[str] = []
    for line in response.text.split("\n"):
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = None, []
        elif line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
    return events


def post(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(url, json=body, headers=headers, timeout=10)


def test_anthropic_stream_event_sequence(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("Looking.", thinking="I should search.", tool_calls=[ToolCall("search", ARGS)])])
    response = post(
        srv.base_url + "/v1/messages",
        {"model": "m", "max_tokens": 9, "stream": True, "messages": [{"role": "user", "content": "q"}]},
        **{"anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    for name, data in events:  # every data payload names its own event type
        assert json.loads(data)["type"] == name
    names = [name for name, _ in events]
    compact = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
    assert compact == [
        "message_start",
        "ping",
        "content_block_start",  # 0: thinking
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # 1: text
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # 2: tool_use
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(d) for _, d in events]
    starts = [p["content_block"] for p in payloads if p["type"] == "content_block_start"]
    assert [s["type"] for s in starts] == ["thinking", "text", "tool_use"]
    assert starts[2] == {"type": "tool_use", "id": "toolu_sbx_0_0", "name": "search", "input": {}}
    deltas = [p["delta"] for p in payloads if p["type"] == "content_block_delta"]
    assert [d["type"] for d in deltas if d["type"] == "signature_delta"] == ["signature_delta"]
    fragments = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert fragments[0] == "" and len(fragments) > 3
    assert json.loads("".join(fragments)) == ARGS
    start = payloads[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["role"] == "assistant"
    final = next(p for p in payloads if p["type"] == "message_delta")
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"]["output_tokens"] > 1


def test_anthropic_mid_stream_error_event(llm_server: LLMServerFactory) -> None:
    srv = llm_server(
        [Turn("some words that will not all arrive", error=ErrorSpec.overloaded(mid_stream=True))]
    )
    response = post(
        srv.base_url + "/v1/messages", {"model": "m", "max_tokens": 9, "stream": True, "messages": []}
    )
    assert response.status_code == 200
    events = sse_events(response)
    assert events[-1][0] == "error"
    assert json.loads(events[-1][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded (scripted)."},
    }
    assert "message_stop" not in [e for e, _ in events]


def test_openai_stream_framing(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn(tool_calls=[ToolCall("search", ARGS), ToolCall("other", {"x": 1})])])
    response = post(
        srv.openai_base_url + "/chat/completions",
        {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "messages": []},
        authorization="Bearer k",
    )
    events = sse_events(response)
    assert all(name is None for name, _ in events)  # Chat Completions uses bare data: lines
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    tool_deltas = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    firsts = [d for d in tool_deltas if "id" in d]
    assert firsts == [
        {
            "index": 0,
            "id": "call_sbx_0_0",
            "type": "function",
            "function": {"name": "search", "arguments": ""},
        },
        {
            "index": 1,
            "id": "call_sbx_0_1",
            "type": "function",
            "function": {"name": "other", "arguments": ""},
        },
    ]
    rest = [d for d in tool_deltas if "id" not in d]
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in rest)
    by_index = {0: "", 1: ""}
    for d in tool_deltas:
        by_index[d["index"]] += d["function"]["arguments"]
    assert json.loads(by_index[0]) == ARGS and json.loads(by_index[1]) == {"x": 1}
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "tool_calls" and set(finish[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


def test_non_json_body_is_rejected_and_recorded(llm_server: LLMServerFactory) -> None:
    srv = llm_server(check=False)
    response = httpx.post(srv.openai_base_url + "/chat/completions", content=b"not json", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "request body must be a JSON object"
    assert srv.requests[0].body == "not json"
    assert [u.kind for u in srv.unexpected] == ["bad_request"]


def test_unknown_path_is_404_in_anthropic_shape_for_anthropic_clients(llm_server: LLMServerFactory) -> None:
    srv = llm_server(check=False)
    response = httpx.post(srv.base_url + "/v1/v1/messages", json={}, headers={"anthropic-version": "x"})
    assert response.status_code == 404
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "not_found_error"
    assert "without /v1" in response.json()["error"]["message"]


def test_wrong_method_on_a_known_path_is_recorded(llm_server: LLMServerFactory) -> None:
    srv = llm_server(check=False)
    assert httpx.get(srv.base_url + "/v1/messages").status_code == 404
    assert srv.unexpected[0].message == "no route GET /v1/messages; this path only takes POST"
