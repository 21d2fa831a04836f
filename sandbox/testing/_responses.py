"""OpenAI Responses API wire format (`POST /v1/responses`): the protocol current Codex speaks.

Output is a list of items (`reasoning`, `message`, `function_call`), each streamed as
`response.output_item.added`, its part/delta events, and `response.output_item.done`, between
`response.created`/`response.in_progress` and a closing `response.completed` (or
`response.incomplete` for a `max_tokens` turn). Every event carries a rising `sequence_number`.
A mid-stream error ends the stream with `response.failed`, whose `response.error` says why, as the
real API does once it has answered 200. HTTP errors use the Chat Completions error shape.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._openai import error_body
from ._wire import Reply, split, sse

__all__ = ["error_body", "response", "stream_events"]


def _usage(reply: Reply) -> dict[str, Any]:
    usage = reply.usage
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {
            "reasoning_tokens": min(len(reply.turn.thinking or "") // 4, usage.output_tokens)
        },
        "total_tokens": prompt + usage.output_tokens,
    }


def _envelope(reply: Reply, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    incomplete = status == "incomplete"
    return {
        "id": f"resp_sbx_{reply.request_number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": reply.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "metadata": {},
    }


def _items(reply: Reply) -> list[dict[str, Any]]:
    """The finished output items, in the order a model produces them."""
    turn = reply.turn
    n = reply.request_number
    items: list[dict[str, Any]] = []
    if turn.thinking is not None:
        summary = [{"type": "summary_text", "text": turn.thinking}]
        items.append({"id": f"rs_sbx_{n}", "type": "reasoning", "summary": summary})
    if turn.text is not None or not turn.tool_calls:
        part = {"type": "output_text", "text": turn.text or "", "annotations": []}
        items.append(
            {
                "id": f"msg_sbx_{n}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for position, call in enumerate(turn.tool_calls):
        items.append(
            {
                "id": f"fc_sbx_{reply.turn_index}_{position}",
                "type": "function_call",
                "status": "completed",
                "call_id": reply.tool_id(position, "call"),
                "name": call.name,
                "arguments": json.dumps(call.args),
            }
        )
    return items


def _final_status(reply: Reply) -> str:
    return "incomplete" if reply.turn.resolved_stop_reason == "max_tokens" else "completed"


def response(reply: Reply) -> dict[str, Any]:
    """The non-streaming `response` object for a turn."""
    body = _envelope(reply, _final_status(reply), _items(reply))
    body["usage"] = _usage(reply)
    return body


class _Events:
    """Numbers events as they are framed: `sequence_number` must rise by one per event."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": len(self.frames), **fields}
        self.frames.append(sse(payload, kind))


def stream_events(reply: Reply) -> list[bytes]:
    """The SSE frames of a streamed turn."""
    turn = reply.turn
    events = _Events()
    events.add("response.created", response=_envelope(reply, "in_progress", []))
    events.add("response.in_progress", response=_envelope(reply, "in_progress", []))
    if turn.error is not None and turn.error.mid_stream:
        failed = _envelope(reply, "failed", [])
        error = error_body(turn.error)["error"]
        failed["error"] = {"code": error["code"] or error["type"], "message": error["message"]}
        events.add("response.failed", response=failed)
        return events.frames
    items = _items(reply)
    for index, item in enumerate(items):
        _stream_item(events, index, item, reply.chunk_size)
    final = _envelope(reply, _final_status(reply), items)
    final["usage"] = _usage(reply)
    events.add(f"response.{final['status']}", response=final)
    return events.frames


def _stream_item(events: _Events, index: int, item: dict[str, Any], size: int) -> None:
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "reasoning":
        text = item["summary"][0]["text"]
        events.add("response.output_item.added", output_index=index, item={**item, "summary": []})
        part = {"type": "summary_text", "text": ""}
        events.add("response.reasoning_summary_part.added", **where, summary_index=0, part=part)
        for piece in split(text, size):
            events.add("response.reasoning_summary_text.delta", **where, summary_index=0, delta=piece)
        events.add("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
        events.add(
            "response.reasoning_summary_part.done", **where, summary_index=0, part={**part, "text": text}
        )
    elif item["type"] == "message":
        text = item["content"][0]["text"]
        started = {**item, "status": "in_progress", "content": []}
        events.add("response.output_item.added", output_index=index, item=started)
        text_part: dict[str, Any] = {"type": "output_text", "text": "", "annotations": []}
        events.add("response.content_part.added", **where, content_index=0, part=text_part)
        for piece in split(text, size):
            events.add("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
        events.add("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
        events.add("response.content_part.done", **where, content_index=0, part={**text_part, "text": text})
    else:
        arguments = item["arguments"]
        started = {**item, "status": "in_progress", "arguments": ""}
        events.add("response.output_item.added", output_index=index, item=started)
        for piece in split(arguments, size):
            events.add("response.function_call_arguments.delta", **where, delta=piece)
        events.add("response.function_call_arguments.done", **where, name=item["name"], arguments=arguments)
    events.add("response.output_item.done", output_index=index, item=item)
