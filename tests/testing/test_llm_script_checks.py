"""Expectations, script exhaustion, `assert_all_served()` and `match` routing under concurrency."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import anthropic
import openai
import pytest

from sandbox.testing import ErrorSpec, Expectation, ScriptedLLMServer, ToolCall, Turn
from sandbox.testing.pytest_plugin import LLMServerFactory

TOOLS: list[Any] = [
    {"name": "read_file", "description": "read", "input_schema": {"type": "object", "properties": {}}},
    {"name": "write_file", "description": "write", "input_schema": {"type": "object", "properties": {}}},
]
OPENAI_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
    for n in ("read_file", "write_file")
]


def anthropic_client(srv: ScriptedLLMServer, key: str = "sk-a") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.base_url, api_key=key, max_retries=0)


def openai_client(srv: ScriptedLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key="sk-o", max_retries=0)


def test_expectations_pass_across_a_tool_round_trip_in_both_protocols(llm_server: LLMServerFactory) -> None:
    first = Expectation(
        system_contains=["You are the reader"],
        tools=["write_file", "read_file"],
        last_message_contains=["summarise"],
        headers={"anthropic-version": None},
        api_key="sk-a",
        body_includes={"max_tokens": 100},
    )
    second = Expectation(tool_result_contains=["file body 42"], messages_contain=["summarise", "read_file"])
    script = [
        Turn(tool_calls=[ToolCall("read_file", {"path": "a"})], expect=first),
        Turn("Summary: 42.", expect=second),
        Turn(
            tool_calls=[ToolCall("read_file", {"path": "b"}, id="call_b")],
            expect=Expectation(protocol="openai"),
        ),
        Turn("done", expect=Expectation(tool_result_contains=["contents of b"], system_contains=["reader"])),
    ]
    srv = llm_server(script)
    c = anthropic_client(srv)
    system = "You are the reader."
    reply = c.messages.create(
        model="m",
        max_tokens=100,
        system=system,
        tools=TOOLS,
        messages=[{"role": "user", "content": "summarise a"}],
    )
    tool_use = reply.content[0]
    assert tool_use.type == "tool_use"
    history: list[Any] = [
        {"role": "user", "content": "summarise a"},
        {"role": "assistant", "content": [tool_use.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_use.id,
                    "content": [{"type": "text", "text": "file body 42"}],
                }
            ],
        },
    ]
    c.messages.create(
        model="m", max_tokens=100, system=[{"type": "text", "text": system}], tools=TOOLS, messages=history
    )
    o = openai_client(srv)
    messages: list[Any] = [{"role": "system", "content": system}, {"role": "user", "content": "read b"}]
    call = o.chat.completions.create(model="m", messages=messages, tools=OPENAI_TOOLS).choices[0].message
    assert call.tool_calls is not None
    messages += [
        call.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_b", "content": "contents of b"},
    ]
    assert o.chat.completions.create(model="m", messages=messages).choices[0].message.content == "done"
    assert srv.unexpected == []
    assert [r.status for r in srv.requests] == [200, 200, 200, 200]
    assert srv.requests[1].tool_results == ("file body 42",)
    assert srv.requests[3].tool_results == ("contents of b",)
    assert srv.requests[2].tool_names == ("read_file", "write_file")


def test_failed_expectation_answers_400_and_is_recorded(llm_server: LLMServerFactory) -> None:
    expect = Expectation(system_contains=["SECRET MARKER"], tools=["read_file"], api_key="sk-expected")
    srv = llm_server([Turn("unreachable", expect=expect, label="planner")], check=False)
    with pytest.raises(anthropic.BadRequestError) as raised:
        anthropic_client(srv).messages.create(
            model="m", max_tokens=8, system="plain system", messages=[{"role": "user", "content": "hi"}]
        )
    message = raised.value.message
    assert "turn 0 ('planner') expectation failed" in message
    assert "system prompt does not contain 'SECRET MARKER'" in message
    assert "'plain system'" in message
    assert "tools are [], expected ['read_file']" in message
    assert "API key is 'sk-a', expected 'sk-expected'" in message
    (problem,) = srv.unexpected
    assert problem.kind == "expectation" and problem.request_number == 0
    with pytest.raises(AssertionError, match="expectation failed"):
        srv.assert_all_served()


def test_failed_expectation_on_openai_is_bad_request(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("x", expect=Expectation(tool_result_contains=["ok"], stream=True))], check=False)
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert "stream is False, expected True" in raised.value.message
    assert "last message has no tool result" in raised.value.message


def test_script_exhaustion_is_500_and_recorded(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("only")], check=False)
    c = anthropic_client(srv)
    c.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "one"}])
    with pytest.raises(anthropic.InternalServerError) as raised:
        c.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "two please"}])
    assert "script exhausted" in raised.value.message
    assert "two please" in raised.value.message
    assert [u.kind for u in srv.unexpected] == ["exhausted"]
    assert srv.requests[1].turn_index is None and srv.requests[1].status == 500
    with pytest.raises(AssertionError, match=r"request #1: exhausted: script exhausted"):
        srv.assert_all_served()


def test_assert_all_served_names_unserved_turns(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("a"), Turn("b", label="wrap-up"), Turn("c", match="[delegate:x]")], check=False)
    anthropic_client(srv).messages.create(
        model="m", max_tokens=8, messages=[{"role": "user", "content": "q"}]
    )
    with pytest.raises(AssertionError) as raised:
        srv.assert_all_served()
    text = str(raised.value)
    assert "turn 1 ('wrap-up') was never served" in text
    assert "turn 2 was never served, waiting for a request containing '[delegate:x]'" in text
    assert "turn 0" not in text


def test_enqueue_appends_turns(llm_server: LLMServerFactory) -> None:
    srv = llm_server()
    srv.enqueue(Turn("later 1"), Turn("later 2"))
    c = openai_client(srv)
    hello: list[Any] = [{"role": "user", "content": "x"}]
    got = [c.chat.completions.create(model="m", messages=hello).choices[0].message.content for _ in range(2)]
    assert got == ["later 1", "later 2"]


def test_scripted_error_then_success_is_not_unexpected(llm_server: LLMServerFactory) -> None:
    """The retry pattern an agent must handle: a 429, then the real answer."""
    srv = llm_server([Turn(error=ErrorSpec.rate_limit(retry_after=0)), Turn("after retry")])
    c = anthropic.Anthropic(base_url=srv.base_url, api_key="k", max_retries=1)  # the SDK's own retry
    reply = c.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert reply.content[0].type == "text" and reply.content[0].text == "after retry"
    assert [r.status for r in srv.requests] == [429, 200]
    assert srv.requests[1].headers["x-stainless-retry-count"] == "1"


def test_match_routes_concurrent_agents_to_their_own_turns(llm_server: LLMServerFactory) -> None:
    """Five 'delegates' talk at once, each in its own conversation; each must get only its turns.

    Delays are scripted so that the delegates' requests interleave (and arrive in a different order
    from the script); without routing, turns would be handed out in arrival order and mixed up.
    """
    names = [f"delegate-{n}" for n in range(5)]
    rng = random.Random(7)
    script: list[Turn] = [Turn("main agent: start")]
    for name in reversed(names):  # scripted in the opposite order to how they are started
        script.append(Turn(f"{name} step 1", match=f"[agent:{name}]", delay_s=rng.uniform(0, 0.2)))
        script.append(Turn(f"{name} step 2", match=f"[agent:{name}]", delay_s=rng.uniform(0, 0.2)))
    script.append(Turn("main agent: done"))
    srv = llm_server(script)

    async def delegate(c: anthropic.AsyncAnthropic, name: str) -> list[str]:
        history: list[Any] = [{"role": "user", "content": "go"}]
        texts: list[str] = []
        for _ in range(2):
            reply = await c.messages.create(
                model="m", max_tokens=8, system=f"You are [agent:{name}].", messages=history
            )
            assert reply.content[0].type == "text"
            texts.append(reply.content[0].text)
            history += [{"role": "assistant", "content": texts[-1]}, {"role": "user", "content": "next"}]
        return texts

    async def run() -> tuple[str, list[list[str]], str]:
        async with anthropic.AsyncAnthropic(base_url=srv.base_url, api_key="k", max_retries=0) as c:
            hello: list[Any] = [{"role": "user", "content": "plan"}]
            first = await c.messages.create(model="m", max_tokens=8, system="You are main.", messages=hello)
            results = await asyncio.gather(*(delegate(c, n) for n in names))
            last = await c.messages.create(model="m", max_tokens=8, system="You are main.", messages=hello)
        assert first.content[0].type == "text" and last.content[0].type == "text"
        return first.content[0].text, results, last.content[0].text

    first, results, last = asyncio.run(run())
    assert first == "main agent: start" and last == "main agent: done"
    assert results == [[f"{n} step 1", f"{n} step 2"] for n in names]
    arrival = [r.turn_index for r in srv.requests]
    assert sorted(i for i in arrival if i is not None) == list(range(len(script)))


def test_unmatched_turns_are_not_given_to_requests_with_markers_waiting(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("general"), Turn("for x", match="MARK-X")])
    c = anthropic_client(srv)

    def ask(system: str) -> str:
        reply = c.messages.create(
            model="m", max_tokens=8, system=system, messages=[{"role": "user", "content": "?"}]
        )
        assert reply.content[0].type == "text"
        return reply.content[0].text

    assert ask("I carry MARK-X") == "for x"  # served out of order, because it matches
    assert ask("plain") == "general"


def test_exhaustion_message_names_waiting_markers(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("for y", match="MARK-Y")], check=False)
    with pytest.raises(anthropic.InternalServerError) as raised:
        anthropic_client(srv).messages.create(
            model="m", max_tokens=8, messages=[{"role": "user", "content": "?"}]
        )
    assert "wait for markers ['MARK-Y']" in raised.value.message
