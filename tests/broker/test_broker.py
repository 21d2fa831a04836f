"""The credential broker against real clients and a real upstream: the provider SDK talks to the broker with a
placeholder, the scripted provider (over TLS) receives the user's key; each refusal is paired with the
same request succeeding when it is one the runtime makes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import anthropic
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route as StarletteRoute

from sandbox.broker import Decision, authorizer, broker_app, missing_credentials, route_for
from sandbox.testing import ScriptedLLMServer, Turn

KEY = "sk-ant-the-users-real-key"
TOKEN = "sandbox-broker-placeholder-7f3a"


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 from a thread; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def upstream() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(tls=True, require_key=KEY) as server:
        yield server


@pytest.fixture
def broker(upstream: ScriptedLLMServer) -> Iterator[tuple[str, list[Decision]]]:
    route = route_for("anthropic", {"baseUrl": upstream.anthropic_base_url}, {})
    log: list[Decision] = []
    app = broker_app(
        route, {"ANTHROPIC_API_KEY": KEY}, token=TOKEN, log=log.append, verify=upstream.client_ssl_context()
    )
    with serve(app) as url:
        yield url, log


def test_the_sdk_gets_its_answer_and_only_the_broker_holds_the_key(
    upstream: ScriptedLLMServer, broker: tuple[str, list[Decision]]
) -> None:
    url, log = broker
    upstream.enqueue(Turn("hello from the model"))
    client = anthropic.Anthropic(base_url=url, api_key=TOKEN, max_retries=0)
    with client.messages.stream(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "hello from the model"
    (seen,) = [r for r in upstream.requests if r.path.endswith("/messages")]
    assert seen.headers["x-api-key"] == KEY  # added by the broker
    assert TOKEN not in str(seen.headers)  # the sandbox's placeholder never leaves it
    assert [(d.allowed, d.status) for d in log] == [(True, 200)]


@pytest.mark.parametrize(
    ("method", "path", "headers", "why"),
    [
        ("POST", "/v1/files", {}, "is not a call the runtime makes"),
        ("GET", "/v1/models", {}, "is not a call the runtime makes"),
        ("POST", "/v1/messages/../files", {}, "is not a call the runtime makes"),
        ("POST", "/v1/messages%2F..%2Ffiles", {}, "is not a call the runtime makes"),
        (
            "POST",
            "/v1/messages",
            {"x-api-key": "sk-ant-attackers-own"},
            "brings its own credential (x-api-key)",
        ),
        ("POST", "/v1/messages", {"authorization": "Bearer sk-other"}, "brings its own credential"),
    ],
)
def test_calls_the_runtime_does_not_make_are_refused_and_logged(
    upstream: ScriptedLLMServer,
    broker: tuple[str, list[Decision]],
    method: str,
    path: str,
    headers: dict[str, str],
    why: str,
) -> None:
    url, log = broker
    body = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    sent = {"x-api-key": TOKEN, "anthropic-version": "2023-06-01", **headers}
    refused = httpx.request(method, url + path, headers=sent, json=body, timeout=10)
    assert refused.status_code == 403 and why in refused.json()["error"]["message"]
    assert upstream.requests == []  # nothing of it reached the provider
    assert log and not log[-1].allowed and why in log[-1].reason
    # The control: the call the runtime makes, with the placeholder, goes through.
    upstream.enqueue(Turn("ok"))
    allowed = httpx.post(
        url + "/v1/messages",
        headers={"x-api-key": TOKEN, "anthropic-version": "2023-06-01"},
        json=body,
        timeout=10,
    )
    assert allowed.status_code == 200 and upstream.requests[-1].headers["x-api-key"] == KEY


def test_responses_stream_through_as_they_arrive() -> None:
    """The first chunk reaches the client while the upstream is still sending (no buffering)."""
    sent_last = threading.Event()

    async def slow(_request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"event: one\ndata: {}\n\n"
            await asyncio.sleep(0.5)
            yield b"event: two\ndata: {}\n\n"
            sent_last.set()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    origin = Starlette(routes=[StarletteRoute("/v1/messages", slow, methods=["POST"])])
    with serve(origin) as origin_url:
        # A plain-http origin (route_for accepts only https base URLs): the anthropic route, pointed at it.
        route = replace(route_for("anthropic", {}, {}), upstream=origin_url)
        log: list[Decision] = []
        app = broker_app(route, {"ANTHROPIC_API_KEY": KEY}, token=TOKEN, log=log.append)
        with (
            serve(app) as url,
            httpx.stream(
                "POST", url + "/v1/messages", headers={"x-api-key": TOKEN}, json={}, timeout=10
            ) as r,
        ):
            chunks = r.iter_raw()
            first = next(chunks)
            assert b"event: one" in first and not sent_last.is_set()
            rest = b"".join(chunks)
    assert b"event: two" in rest


def test_a_credential_in_the_query_is_refused_for_gemini() -> None:
    route = route_for("google", {}, {})
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    assert route.allows("POST", route.relative(path) or "")
    app = broker_app(route, {"GOOGLE_GENERATIVE_AI_API_KEY": "g-key"}, token=TOKEN, log=lambda d: None)

    async def call(query: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://broker"
        ) as client:
            return await client.post(path + query, json={})

    refused = asyncio.run(call("?key=attackers-key"))
    assert refused.status_code == 403 and "?key" in refused.json()["error"]["message"]


def test_each_provider_has_a_route_and_names_its_credentials() -> None:
    env = {"AWS_REGION": "eu-west-1", "AZURE_RESOURCE_NAME": "acme", "GOOGLE_VERTEX_PROJECT": "proj-1"}
    hosts = {
        p: route_for(p, {}, env).host
        for p in (
            "anthropic",
            "openai",
            "google",
            "azure-openai",
            "amazon-bedrock",
            "google-vertex",
            "deepseek",
        )
    }
    assert hosts == {
        "anthropic": "api.anthropic.com",
        "openai": "api.openai.com",
        "google": "generativelanguage.googleapis.com",
        "azure-openai": "acme.openai.azure.com",
        "amazon-bedrock": "bedrock-runtime.eu-west-1.amazonaws.com",
        "google-vertex": "us-central1-aiplatform.googleapis.com",
        "deepseek": "api.deepseek.com",
    }
    assert missing_credentials(route_for("amazon-bedrock", {}, env), env) == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    vertex = route_for("google-vertex", {}, env)
    ours = "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
    assert vertex.allows("POST", ours)
    assert not vertex.allows("POST", ours.replace("proj-1", "someone-elses"))  # the user's token, one project
    bedrock = route_for("amazon-bedrock", {}, env)
    arn = "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Feu.anthropic.claude/converse"
    assert bedrock.relative(arn) == arn and bedrock.allows("POST", arn)  # forwarded encoded, as sent
    sneaky = "/model/..%2F..%2Fguardrail/converse"  # matches the id pattern; decodes to dot segments
    assert bedrock.relative(sneaky) is None
    assert bedrock.relative("/model/x/converse/") is not None and not bedrock.allows(
        "POST", "/model/x/converse/"
    )
    with pytest.raises(ValueError, match="no region"):
        route_for("amazon-bedrock", {}, {})


def test_bedrock_requests_are_signed_with_sigv4_by_botocore() -> None:
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDREAL",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "tok",
    }
    route = route_for("amazon-bedrock", {}, env)
    url = route.upstream_url("/model/anthropic.claude-3-haiku/converse", "")
    added = authorizer(route, env)("POST", url, {"content-type": "application/json"}, b"{}")
    assert added["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDREAL/")
    assert "/us-east-1/bedrock/aws4_request" in added["authorization"]
    assert added["x-amz-security-token"] == "tok" and "x-amz-date" in added
    # The control: another body gives another signature (it covers the payload).
    other = authorizer(route, env)("POST", url, {"content-type": "application/json"}, b'{"x":1}')
    assert other["authorization"].split("Signature=")[1] != added["authorization"].split("Signature=")[1]
