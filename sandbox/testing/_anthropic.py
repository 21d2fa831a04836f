"""Anthropic Messages API wire format: responses, SSE event sequences and error bodies.

Shapes follow the public API reference for `POST /v1/messages` (and what the official SDK parses):
a stream is `message_start`, `ping`, then per content block `content_block_start` / `..._delta` /
`content_block_stop`, then `message_delta` (stop reason and usage) and `message_stop`. Tool input
streams as `input_json_delta` fragments starting with an empty one, as the real API does, so
consumers that parse each fragment on its own break here rather than in production.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._script import ErrorSpec, Usage
from ._wire import Reply, split, sse

__all__ = ["error_body", "message", "models_page", "stream_events"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES = {
    429: "Rate limited (scripted): retry later.",
    500: "Internal server error (scripted).",
    529: "Overloaded (scripted).",
}


def error_body(spec: ErrorSpec) -> dict[str, Any]:
    """`{"type": "error", "error": {"type": ..., "message": ...}}` with the provider's type for the status."""
    kind = spec.type or _ERROR_TYPES.get(
        spec.status, "api_error" if spec.status >= 500 else "invalid_request_error"
    )
    text = spec.message or _DEFAULT_MESSAGES.get(spec.status, f"Scripted error {spec.status}.")
    return {"type": "error", "error": {"type": kind, "message": text}}


def _signature(thinking: str) -> str:
    # Real signatures are opaque; a digest keeps them stable so a test can check one is echoed back.
    return "sig_sbx_" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }


def _envelope(
    reply: Reply, content: list[dict[str, Any]], stop_reason: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": f"msg_sbx_{reply.request_number}",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def message(reply: Reply) -> dict[str, Any]:
    """The non-streaming response body for a turn."""
    turn = reply.turn
    content: list[dict[str, Any]] = []
    if turn.thinking is not None:
        content.append(
            {"type": "thinking", "thinking": turn.thinking, "signature": _signature(turn.thinking)}
        )
    if turn.text is not None or not turn.tool_calls:
        content.append({"type": "text", "text": turn.text or ""})
    for n, call in enumerate(turn.tool_calls):
        content.append(
            {"type": "tool_use", "id": reply.tool_id(n, "toolu"), "name": call.name, "input": call.args}
        )
    return _envelope(reply, content, turn.resolved_stop_reason, _usage(reply.usage))


def stream_events(reply: Reply) -> list[bytes]:
    """The SSE frames of a streamed turn; with a `mid_stream` error, the frames up to the `error` event."""
    turn = reply.turn
    usage = reply.usage
    failing = turn.error if turn.error is not None and turn.error.mid_stream else None
    start_usage = {**_usage(usage), "output_tokens": 1}
    frames = [
        sse({"type": "message_start", "message": _envelope(reply, [], None, start_usage)}, "message_start"),
        sse({"type": "ping"}, "ping"),
    ]
    if failing is not None:
        # Fail part-way through the text, after the client has committed to a 200 response.
        pieces = split(turn.text or "", reply.chunk_size)
        frames += _block(
            0, {"type": "text", "text": ""}, [_text_delta(p) for p in pieces[: max(1, len(pieces) // 2)]]
        )
        return [*frames[:-1], sse(error_body(failing), "error")]
    index = 0
    if turn.thinking is not None:
        deltas = [{"type": "thinking_delta", "thinking": p} for p in split(turn.thinking, reply.chunk_size)]
        deltas.append({"type": "signature_delta", "signature": _signature(turn.thinking)})
        frames += _block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
        index += 1
    if turn.text is not None or not turn.tool_calls:
        deltas = [_text_delta(p) for p in split(turn.text or "", reply.chunk_size)]
        frames += _block(index, {"type": "text", "text": ""}, deltas)
        index += 1
    for n, call in enumerate(turn.tool_calls):
        start = {"type": "tool_use", "id": reply.tool_id(n, "toolu"), "name": call.name, "input": {}}
        fragments = ["", *split(json.dumps(call.args), reply.chunk_size)]
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
        frames += _block(index, start, deltas)
        index += 1
    delta = {"stop_reason": turn.resolved_stop_reason, "stop_sequence": None}
    frames.append(sse({"type": "message_delta", "delta": delta, "usage": _usage(usage)}, "message_delta"))
    frames.append(sse({"type": "message_stop"}, "message_stop"))
    return frames


def _text_delta(piece: str) -> dict[str, Any]:
    return {"type": "text_delta", "text": piece}


def _block(index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    return [
        sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start"),
        *(
            sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
            for d in deltas
        ),
        sse({"type": "content_block_stop", "index": index}, "content_block_stop"),
    ]


def models_page(models: list[str]) -> dict[str, Any]:
    """`GET /v1/models` in Anthropic's paginated shape."""
    data = [model_info(m) for m in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": models[0] if models else None,
        "last_id": models[-1] if models else None,
    }


def model_info(model: str) -> dict[str, Any]:
    """One entry of the models list (`GET /v1/models/{id}`)."""
    return {"type": "model", "id": model, "display_name": model, "created_at": "2025-01-01T00:00:00Z"}
