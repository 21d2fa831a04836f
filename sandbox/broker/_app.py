"""The broker's HTTP app: one provider's allowed API calls, forwarded with the user's credential added.

The runtime in the sandbox uses the broker as its provider's base URL and holds only a per-run placeholder
token, so nothing in the sandbox can read the key, and a request the runtime would not make (another path,
another method, a credential of its own) is refused with a 403 whose body says why. Responses stream back
as they arrive (SSE, Bedrock's event stream): raw bytes, never buffered. Every decision is reported to
`log` (the container prints it as one JSON line, which the host turns into a `proxyAccess` event).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute

from ._auth import Authorizer, authorizer
from ._policy import CREDENTIAL_HEADERS, CREDENTIAL_QUERY, Route

__all__ = ["MAX_BODY_BYTES", "Decision", "broker_app"]

MAX_BODY_BYTES = 32 << 20  # a model request with images stays far below; anything larger is not one

# Hop-by-hop and connection-specific headers (RFC 9110 §7.6.1), and what httpx sets itself.
_DROP_REQUEST = frozenset(
    {"host", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
)
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "trailer", "upgrade"})


@dataclass(frozen=True)
class Decision:
    """One request's fate: forwarded (with the upstream's status) or refused (with the reason)."""

    provider: str
    method: str
    path: str
    allowed: bool
    status: int
    reason: str = ""
    host: str = ""

    def to_line(self) -> str:
        return json.dumps({"broker": asdict(self)}, separators=(",", ":"))


def _own_credential(headers: Mapping[str, str], query: str, token: str) -> str | None:
    """The name of a credential the request brings that is not the run's placeholder, if any."""
    for name in CREDENTIAL_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if value in (token, f"Bearer {token}") or f"Credential={token}/" in value:
            continue
        return name
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in CREDENTIAL_QUERY and value != token:
            return f"?{name}"
    return None


def broker_app(
    route: Route,
    env: Mapping[str, str],
    *,
    token: str,
    log: Callable[[Decision], None],
    verify: ssl.SSLContext | bool = True,
    auth: Authorizer | None = None,
) -> Starlette:
    """The ASGI app serving `route` with the credentials in `env`.

    `token`: the placeholder the runtime sends as its key (a request with any other credential is
    refused). `verify`: the upstream's TLS trust (the host's CA bundle, with `--ca-cert`).
    """
    add_auth = auth or authorizer(route, env)
    client = httpx.AsyncClient(
        verify=verify, timeout=httpx.Timeout(600.0, connect=30.0), follow_redirects=False
    )

    def refuse(request: Request, status: int, reason: str) -> Response:
        log(Decision(route.provider, request.method, request.url.path, False, status, reason, route.host))
        return JSONResponse(
            {"error": {"type": "sandbox_broker_refused", "message": f"sandbox broker: {reason}"}},
            status_code=status,
        )

    async def forward(request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        relative = route.relative(raw_path)
        if relative is None or not route.allows(request.method, relative):
            return refuse(request, 403, f"{request.method} {raw_path} is not a call the runtime makes")
        query = request.url.query
        own = _own_credential(request.headers, query, token)
        if own is not None:
            return refuse(request, 403, f"the request brings its own credential ({own})")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return refuse(request, 413, "request body too large")
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in CREDENTIAL_QUERY]
        url = route.upstream_url(relative, urlencode(kept))
        headers = {
            k: v
            for k, v in request.headers.items()
            if k not in _DROP_REQUEST and k not in CREDENTIAL_HEADERS and not k.startswith("x-amz-")
        }
        headers.update(add_auth(request.method, url, headers, body))
        upstream = client.build_request(request.method, url, headers=headers, content=body)
        try:
            response = await client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return refuse(request, 502, f"the provider could not be reached: {type(exc).__name__}")
        log(
            Decision(
                route.provider, request.method, request.url.path, True, response.status_code, host=route.host
            )
        )
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers={k: v for k, v in response.headers.items() if k.lower() not in _DROP_RESPONSE},
            background=BackgroundTask(response.aclose),
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[StarletteRoute("/{path:path}", forward, methods=methods)], lifespan=lifespan)
