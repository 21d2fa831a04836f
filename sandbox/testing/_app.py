"""The HTTP layer: a Starlette app that routes, authenticates, records and renders.

Routes (paths as the official SDKs build them from a base URL; Anthropic's SDK appends `/v1/...` to
the server root, OpenAI's appends `/chat/completions` to a base URL that ends in `/v1`):

* `POST /v1/messages` - Anthropic Messages, JSON or SSE; consumes a turn.
* `POST /v1/messages/count_tokens` - Anthropic token counting (Claude Code calls it); no turn.
* `POST /v1/chat/completions` - OpenAI Chat Completions, JSON or `data:` chunks; consumes a turn.
* `POST /v1/responses` - OpenAI Responses (what Codex speaks), JSON or typed SSE; consumes a turn.
* `GET /v1/models`, `GET /v1/models/{id}` - in Anthropic's shape when the request carries
  `anthropic-version` or `x-api-key`, else OpenAI's.
* with `control_api=True`: `GET /_sandbox/requests`, `POST /_sandbox/script`, `GET /_sandbox/health`,
  for a test on the host to drive a server running in a container. These are not recorded.

Anything else is answered 404 and recorded as unexpected: a wrong base URL in the system under test
should fail its test, not be papered over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import _anthropic, _openai, _responses
from ._inspect import RequestView
from ._script import ErrorSpec, Protocol, Script
from ._state import RECORDS_ADAPTER, UNEXPECTED_ADAPTER, Incoming, ScriptState, UnexpectedKind
from ._wire import DEFAULT_CHUNK_SIZE, Reply

__all__ = ["DEFAULT_MODELS", "build_app"]

DEFAULT_MODELS: tuple[str, ...] = ("claude-scripted", "gpt-scripted")
"""What `GET /v1/models` lists unless told otherwise. Every request is answered whatever model it
names; the defaults are deliberately not real model names, which go stale and which SDKs warn about."""

_POLL_S = 0.05  # how often a scripted delay checks for a client that gave up or a server stopping
_METHODS = {
    "/v1/messages": "POST",
    "/v1/messages/count_tokens": "POST",
    "/v1/chat/completions": "POST",
    "/v1/responses": "POST",
    "/v1/models": "GET",
}
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _protocol_of_headers(headers: dict[str, str]) -> Protocol:
    return "anthropic" if "anthropic-version" in headers or "x-api-key" in headers else "openai"


def _error_response(protocol: Protocol, spec: ErrorSpec, number: int) -> JSONResponse:
    id_header = "request-id" if protocol == "anthropic" else "x-request-id"
    headers = {id_header: f"req_sbx_{number}"}
    if spec.retry_after is not None:
        headers["retry-after"] = f"{spec.retry_after:g}"
        headers["retry-after-ms"] = str(int(spec.retry_after * 1000))
    # The Responses API reports HTTP errors in the Chat Completions shape.
    body = _anthropic.error_body(spec) if protocol == "anthropic" else _openai.error_body(spec)
    return JSONResponse(body, status_code=spec.status, headers=headers)


def _masked(key: str | None) -> str:
    # Enough to tell keys apart in a failure message without printing a real key that leaked in.
    return "no key" if not key else f"{key[:4]!r}... ({len(key)} chars)"


def build_app(
    state: ScriptState,
    *,
    require_key: str | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    control_api: bool = False,
) -> Starlette:
    """The ASGI app serving `state`'s script.

    **Parameters:**

    * `require_key` - when set, model requests must send it (`x-api-key` or `authorization: Bearer`),
      else 401 in the provider's shape, recorded as unexpected.
    * `models` - the names `GET /v1/models` lists.
    * `chunk_size` - characters per streamed delta.
    * `control_api` - expose the `/_sandbox/*` routes.
    """
    model_names = list(models)

    async def read(request: Request, protocol: Protocol | None) -> Incoming:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if protocol is None:
            protocol = _protocol_of_headers(headers)
        return Incoming(request.method, request.url.path, request.url.query, headers, body, protocol)

    def reject(incoming: Incoming, kind: UnexpectedKind, spec: ErrorSpec) -> Response:
        number = state.record(incoming, spec.status, (kind, spec.message or ""))
        return _error_response(incoming.protocol or "openai", spec, number)

    def auth_problem(protocol: Protocol, headers: Mapping[str, str]) -> str | None:
        if require_key is None:
            return None
        sent = RequestView.parse(protocol, {}, headers).api_key
        if sent == require_key:
            return None
        where = "x-api-key or authorization: Bearer" if protocol == "anthropic" else "authorization: Bearer"
        return f"invalid API key: this server requires a key in {where}; got {_masked(sent)}"

    async def pause(request: Request, seconds: float, number: int) -> bool:
        """Sleep `seconds`; False if the client hung up (recorded) or the server stops first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(_POLL_S, left))
            if await request.is_disconnected():
                state.mark_abandoned(number)
                return False
            if state.closing.is_set():
                return False
        return True

    async def model_request(request: Request, protocol: Protocol) -> Response:
        incoming = await read(request, protocol)
        body = incoming.body
        if not isinstance(body, dict):
            return reject(
                incoming, "bad_request", ErrorSpec(400, message="request body must be a JSON object")
            )
        if (problem := auth_problem(protocol, incoming.headers)) is not None:
            return reject(incoming, "auth", ErrorSpec(401, message=problem))
        view = RequestView.parse(protocol, body, incoming.headers)
        admission = state.admit(incoming, view)
        if admission.failure is not None:
            return _error_response(protocol, admission.failure, admission.number)
        turn = admission.turn
        assert turn is not None and admission.turn_index is not None
        if turn.delay_s and not await pause(request, turn.delay_s, admission.number):
            return Response(status_code=499)  # nobody is listening any more; uvicorn drops it
        if turn.error is not None and not (turn.error.mid_stream and view.stream):
            return _error_response(protocol, turn.error, admission.number)
        reply = Reply(
            turn=turn,
            turn_index=admission.turn_index,
            request_number=admission.number,
            model=view.model,
            request_bytes=len(json.dumps(body)),
            chunk_size=chunk_size,
        )
        id_header = "request-id" if protocol == "anthropic" else "x-request-id"
        headers = {id_header: f"req_sbx_{admission.number}"}
        if not view.stream:
            render = {
                "anthropic": _anthropic.message,
                "openai": _openai.completion,
                "openai-responses": _responses.response,
            }[protocol]
            return JSONResponse(render(reply), headers=headers)
        if protocol == "anthropic":
            frames = _anthropic.stream_events(reply)
        elif protocol == "openai-responses":
            frames = _responses.stream_events(reply)
        else:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            frames = _openai.chunks(reply, include_usage=include_usage)

        async def emit() -> AsyncIterator[bytes]:
            for frame in frames:
                yield frame
                await asyncio.sleep(0)  # let each frame go out on its own, as a real stream would

        headers["cache-control"] = "no-cache"
        return StreamingResponse(emit(), media_type="text/event-stream", headers=headers)

    async def messages(request: Request) -> Response:
        return await model_request(request, "anthropic")

    async def chat_completions(request: Request) -> Response:
        return await model_request(request, "openai")

    async def responses(request: Request) -> Response:
        return await model_request(request, "openai-responses")

    async def count_tokens(request: Request) -> Response:
        incoming = await read(request, "anthropic")
        if (problem := auth_problem("anthropic", incoming.headers)) is not None:
            return reject(incoming, "auth", ErrorSpec(401, message=problem))
        state.record(incoming, 200)
        return JSONResponse({"input_tokens": max(1, len(json.dumps(incoming.body)) // 4)})

    async def list_models(request: Request) -> Response:
        incoming = await read(request, None)
        state.record(incoming, 200)
        render = _anthropic.models_page if incoming.protocol == "anthropic" else _openai.models_page
        return JSONResponse(render(model_names))

    async def get_model(request: Request) -> Response:
        incoming = await read(request, None)
        name = request.path_params["model_id"]
        if name not in model_names:
            spec = ErrorSpec(404, message=f"model {name!r} is not in this server's list {model_names}")
            return reject(incoming, "route", spec)
        state.record(incoming, 200)
        render = _anthropic.model_info if incoming.protocol == "anthropic" else _openai.model_info
        return JSONResponse(render(name))

    async def not_found(request: Request) -> Response:
        incoming = await read(request, None)
        path = request.url.path.rstrip("/")
        hint = ""
        if path in _METHODS:
            hint = f"; this path only takes {_METHODS[path]}"
        elif path.endswith(("/chat/completions", "/responses")):
            hint = "; OpenAI clients need a base URL ending in /v1 (use server.openai_base_url)"
        elif path.endswith("/messages"):
            hint = "; Anthropic clients need the server root as base URL, without /v1"
        message = f"no route {request.method} {request.url.path}{hint}"
        return reject(incoming, "route", ErrorSpec(404, message=message))

    async def control_requests(request: Request) -> Response:
        payload = {
            "requests": RECORDS_ADAPTER.dump_python(state.requests, mode="json"),
            "unexpected": UNEXPECTED_ADAPTER.dump_python(state.unexpected, mode="json"),
            "pending": [
                {"index": i, "label": t.label, "match": t.match, "description": t.describe(i)}
                for i, t in state.pending
            ],
        }
        return JSONResponse(payload)

    async def control_script(request: Request) -> Response:
        try:
            script = Script.from_json(await request.body())
        except ValidationError as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        state.replace(script.turns)
        return JSONResponse({"turns": len(script.turns)})

    async def control_health(request: Request) -> Response:
        return JSONResponse({"ok": True, "pending": len(state.pending)})

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    ]
    if control_api:
        routes += [
            Route("/_sandbox/requests", control_requests, methods=["GET"]),
            Route("/_sandbox/script", control_script, methods=["POST"]),
            Route("/_sandbox/health", control_health, methods=["GET"]),
        ]
    routes.append(Route("/{path:path}", not_found, methods=_ALL_METHODS))
    return Starlette(routes=routes)
