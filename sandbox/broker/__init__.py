"""The credential broker: the provider key stays outside the sandbox (issue #14, first part).

The runtime in the Expert's container talks to the broker as its provider's base URL, holding only a
per-run placeholder; the broker forwards only the API calls the runtime makes (`route_for`), refuses any
request that brings a credential of its own, adds the user's credential the way the provider
authenticates (header key, Bedrock SigV4, Vertex OAuth: `authorizer`) and streams the answer back.

Public surface::

    route_for(provider, setting, env) -> Route          # what is forwarded for one provider, and where
    broker_app(route, env, token=..., log=...) -> ASGI  # the HTTP app (starlette), upstream over httpx
    missing_credentials(route, env) -> [env names]

Needs the `broker` extra (starlette, uvicorn; botocore and google-auth for Bedrock and Vertex), which the
broker's container installs. Not wired into `--runtime docker` yet: the container, its network place and
`sandbox plan`'s view of it come next (see docs/security.md, 4.2).
"""

from ._app import MAX_BODY_BYTES, Decision, broker_app
from ._auth import Authorizer, authorizer, missing_credentials
from ._policy import CREDENTIAL_HEADERS, Call, Route, route_for

__all__ = [
    "CREDENTIAL_HEADERS",
    "MAX_BODY_BYTES",
    "Authorizer",
    "Call",
    "Decision",
    "Route",
    "authorizer",
    "broker_app",
    "missing_credentials",
    "route_for",
]
