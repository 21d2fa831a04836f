"""A rehearsal: one offline run of a stand-in Expert, so a standby sandbox has warmed a run's code paths.

Why: importing the provider SDK is not the whole start-up. The first request of a process also builds the
SDK's deferred pydantic schemas (Anthropic's and OpenAI's models use `defer_build`), pydantic-ai's request
mapping and stream parsing, the runtime's job loop and event serialization: ~0.1-0.2 s that a claimed
standby would otherwise spend between the user's query and the model call. A standby has that time to spare
before anyone claims it, so it runs the whole loop once against a canned reply.

What makes it safe to do before the run:

* no network: the provider SDK's HTTP client is an `httpx.MockTransport` that answers every request with a
  canned stream in the provider's own wire format (the SDK parses it as it would a real one);
* no side effects: the stand-in Expert has no skills or delegates (no process starts, no tool runs), events
  go to a buffer that is dropped, nothing is stored, and its workspace is a temp dir removed afterwards;
* no secrets: there are none yet in a standby; the stand-in key is a placeholder.

Providers whose wire format has no canned reply here (Google, Vertex, Bedrock) are not rehearsed; their
runs simply pay the first-request cost, as a fresh sandbox does.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig

__all__ = ["REHEARSED_PROVIDERS", "Rehearsal", "rehearse"]

_TEXT = "ok"


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    out = []
    for name, data in events:
        body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {body}\n\n")
    return "".join(out).encode()


def _anthropic_stream(model: str) -> bytes:
    usage = {"input_tokens": 1, "output_tokens": 1}
    return _sse(
        [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_rehearsal",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": usage,
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": _TEXT}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "usage": {"output_tokens": 1},
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )


def _openai_stream(model: str) -> bytes:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-rehearsal",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": choices,
            **extra,
        }

    return _sse(
        [
            (
                None,
                chunk(
                    [{"index": 0, "delta": {"role": "assistant", "content": _TEXT}, "finish_reason": None}]
                ),
            ),
            (None, chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
            (None, chunk([], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})),
            (None, "[DONE]"),
        ]
    )


_STREAMS = {
    "anthropic": _anthropic_stream,
    "openai": _openai_stream,
    "deepseek": _openai_stream,
    "ollama": _openai_stream,
    "azure-openai": _openai_stream,
}
REHEARSED_PROVIDERS = frozenset(_STREAMS)


def _http_module(provider: str) -> Any:
    """The httpx-compatible package the provider's SDK is built on (the SDKs moved to `httpx2` and reject
    a client from another package): the top package of the `AsyncClient` its default client derives from."""
    if provider == "anthropic":
        from anthropic import DefaultAsyncHttpxClient as SdkClient
    else:
        from openai import DefaultAsyncHttpxClient as SdkClient
    base = next(c for c in SdkClient.__mro__ if c.__name__ == "AsyncClient")
    return sys.modules[base.__module__.partition(".")[0]]


def _mock_client(provider: str, model: str, seen: list[str]) -> Any:
    http = _http_module(provider)
    body = _STREAMS[provider](model)

    def answer(request: Any) -> Any:
        seen.append(f"{request.method} {request.url.path}")
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return http.AsyncClient(transport=http.MockTransport(answer))


@dataclass
class Rehearsal:
    """What a rehearsal did: the requests the canned server answered ("POST /v1/messages") and the types
    of the events the stand-in run emitted (a good one ends with "completeRun")."""

    requests: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def rehearse(config: PerstackConfig, provider: str, model: str | None = None) -> Rehearsal:
    """Run a skill-less stand-in Expert once, offline, with `config`'s provider settings.

    Nothing happens for a provider without a canned reply. Never raises: a rehearsal that fails only means
    the run pays its first-request cost itself (the real run reports real errors).
    """
    done = Rehearsal()
    if provider not in _STREAMS:
        return done
    with contextlib.suppress(Exception), tempfile.TemporaryDirectory(prefix="sandbox-rehearsal-") as tmp:
        asyncio.run(_rehearse(config, provider, model or config.model or "rehearsal", Path(tmp), done))
    return done


async def _rehearse(config: PerstackConfig, provider: str, model: str, tmp: Path, done: Rehearsal) -> None:
    from sandbox.agent import run_native_async
    from sandbox.agent.models import offer_http_client
    from sandbox.config import Expert, ProviderConfig, provider_spec
    from sandbox.events import JsonlWriter
    from sandbox.options import RunOptions

    setting = dict(config.provider.setting) if config.provider else {}
    env = {name: "rehearsal" for name in provider_spec(provider).missing_env(setting, {})}
    stand_in = config.model_copy(
        update={
            "provider": ProviderConfig.model_validate({"providerName": provider, "setting": setting}),
            "experts": {
                "rehearsal": Expert.model_validate({"instruction": "Rehearsal: answer in one word."})
            },
            "max_steps": 1,
            "max_retries": 0,
        }
    )
    options = RunOptions(
        config=stand_in,
        config_path=tmp / "perstack.toml",
        expert_key="rehearsal",
        query="rehearsal",
        runtime="docker",
        provider=provider,
        model=model,
        env=env,
        workspace=tmp,
        jobs_dir=tmp / "jobs",
    )
    offer_http_client(provider, _mock_client(provider, model, done.requests))
    buffer = io.StringIO()
    try:
        await run_native_async(options, JsonlWriter(buffer), store=None)
    finally:
        done.events = [json.loads(line).get("type", "") for line in buffer.getvalue().splitlines()]
