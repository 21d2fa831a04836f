"""OpenAI Chat Completions wire format: responses, `data:` chunk streams and error bodies.

A stream is a role chunk, content (or `tool_calls`) delta chunks, a chunk carrying `finish_reason`,
an optional usage-only chunk (`stream_options.include_usage`), then `data: [DONE]`. A tool call's
first delta carries `index`, `id`, `type` and the function name with empty arguments, and the
arguments then arrive in fragments keyed only by `index`, as the real API sends them.

Scripted `thinking` is sent as `reasoning_content`, the field OpenAI-compatible reasoning providers
(DeepSeek and others) use; OpenAI itself does not return reasoning text on this endpoint.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._script import ErrorSpec
from ._wire import Reply, split, sse

__all__ = ["DONE", "chunks", "completion", "error_body", "models_page"]

DONE = b"data: [DONE]\n\n"

_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_DEFAULT_MESSAGES = {
    429: "Rate limit reached (scripted). Please try again later.",
    500: "The server had an error while processing your request (scripted).",
}


def error_body(spec: ErrorSpec) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`; a scripted `type` is used as type and code."""
    default_type, default_code = _ERRORS.get(
        spec.status, ("server_error" if spec.status >= 500 else "invalid_request_error", None)
    )
    text = spec.message or _DEFAULT_MESSAGES.get(spec.status, f"Scripted error {spec.status}.")
    return {
        "error": {
            "message": text,
            "type": spec.type or default_type,
            "param": None,
            "code": spec.type or default_code,
        }
    }


def _usage(reply: Reply) -> dict[str, Any]:
    # OpenAI counts cached tokens inside prompt_tokens; Anthropic reports them beside input_tokens.
    usage = reply.usage
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    reasoning = len(reply.turn.thinking or "") // 4
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(reasoning, usage.output_tokens),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _head(reply: Reply, kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-sbx-{reply.request_number}",
        "object": kind,
        "created": int(time.time()),
        "model": reply.model,
        "system_fingerprint": None,
    }


def completion(reply: Reply) -> dict[str, Any]:
    """The non-streaming `chat.completion` body for a turn."""
    turn = reply.turn
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": turn.text if turn.text is not None or turn.tool_calls else "",
        "refusal": None,
        "annotations": [],
    }
    if turn.thinking is not None:
        msg["reasoning_content"] = turn.thinking
    if turn.tool_calls:
        msg["tool_calls"] = [
            {
                "id": reply.tool_id(n, "call"),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.args)},
            }
            for n, call in enumerate(turn.tool_calls)
        ]
    choice = {
        "index": 0,
        "message": msg,
        "logprobs": None,
        "finish_reason": _FINISH[turn.resolved_stop_reason],
    }
    return {**_head(reply, "chat.completion"), "choices": [choice], "usage": _usage(reply)}


def chunks(reply: Reply, *, include_usage: bool) -> list[bytes]:
    """The `data:` frames of a streamed turn, ending with `[DONE]` (or with an error object mid-stream)."""
    turn = reply.turn
    head = _head(reply, "chat.completion.chunk")

    def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body: dict[str, Any] = {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return sse(body)

    frames = [frame({"role": "assistant", "content": "" if turn.text else None, "refusal": None})]
    text_pieces = split(turn.text or "", reply.chunk_size)
    if turn.error is not None and turn.error.mid_stream:
        frames += [frame({"content": p}) for p in text_pieces[: max(1, len(text_pieces) // 2)]]
        return [*frames, sse(error_body(turn.error))]
    frames += [frame({"reasoning_content": p}) for p in split(turn.thinking or "", reply.chunk_size)]
    frames += [frame({"content": p}) for p in text_pieces]
    for n, call in enumerate(turn.tool_calls):
        first = {"index": n, "id": reply.tool_id(n, "call"), "type": "function"}
        frames.append(frame({"tool_calls": [{**first, "function": {"name": call.name, "arguments": ""}}]}))
        for piece in split(json.dumps(call.args), reply.chunk_size):
            frames.append(frame({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
    frames.append(frame({}, _FINISH[turn.resolved_stop_reason]))
    if include_usage:
        frames.append(sse({**head, "choices": [], "usage": _usage(reply)}))
    frames.append(DONE)
    return frames


def models_page(models: list[str]) -> dict[str, Any]:
    """`GET /v1/models` in OpenAI's list shape."""
    return {"object": "list", "data": [model_info(m) for m in models]}


def model_info(model: str) -> dict[str, Any]:
    """One entry of the models list (`GET /v1/models/{id}`)."""
    return {"id": model, "object": "model", "created": 1735689600, "owned_by": "sandbox-testing"}
