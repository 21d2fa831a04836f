"""Adding the user's credential to a forwarded request, the way each provider really authenticates.

Header keys for most providers; Bedrock's SigV4 signature with botocore's own signer and Vertex's OAuth
access token from a service-account file with google-auth, never hand-written signing. Each authorizer
gets the request as it will be sent (method, URL, body) and returns the headers to add; the credential
values come from the broker's env map, which arrives on its stdin and nowhere else.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from ._policy import Route

__all__ = ["Authorizer", "authorizer", "missing_credentials"]


class Authorizer(Protocol):
    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]: ...


_KEY_ENV = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "google": "GOOGLE_GENERATIVE_AI_API_KEY",
    "azure-openai": "AZURE_API_KEY",
}


def missing_credentials(route: Route, env: Mapping[str, str]) -> list[str]:
    """The env names the route's credential needs and `env` lacks."""
    if route.auth == "sigv4":
        return [n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(n)]
    if route.auth == "google-oauth":
        return [] if env.get("GOOGLE_APPLICATION_CREDENTIALS") else ["GOOGLE_APPLICATION_CREDENTIALS"]
    name = _KEY_ENV.get(route.provider)
    return [name] if name and not env.get(name) else []


def authorizer(route: Route, env: Mapping[str, str]) -> Authorizer:
    """The credential adder for `route`, holding the values it needs from `env`."""
    if route.auth == "sigv4":
        return _SigV4(env, region=route.host.split(".")[1])
    if route.auth == "google-oauth":
        return _GoogleOAuth(env["GOOGLE_APPLICATION_CREDENTIALS"])
    if route.auth == "none":
        return lambda method, url, headers, body: {}
    key = env[_KEY_ENV[route.provider]]
    extra: dict[str, str] = {}
    if route.provider == "openai":  # the runtime's optional organization and project, as the SDK sends them
        for name, header in (
            ("OPENAI_ORGANIZATION", "openai-organization"),
            ("OPENAI_PROJECT", "openai-project"),
        ):
            if env.get(name):
                extra[header] = env[name]
    # A bearer token, or the key in the header the provider reads it from (the route's `auth`).
    added = {"authorization": f"Bearer {key}", **extra} if route.auth == "bearer" else {route.auth: key}
    return lambda method, url, headers, body: dict(added)


class _SigV4:
    """Bedrock: a SigV4 signature over exactly what is sent (botocore's `SigV4Auth`)."""

    def __init__(self, env: Mapping[str, str], *, region: str) -> None:
        from botocore.credentials import Credentials

        self._credentials = Credentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN") or None
        )
        self._region = region

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        signed = {k: v for k, v in headers.items() if k in ("content-type", "accept")}
        request = AWSRequest(method=method, url=url, data=body, headers=signed)
        SigV4Auth(self._credentials, "bedrock", self._region).add_auth(request)
        return {k.lower(): v for k, v in request.headers.items() if k.lower() not in signed}


class _GoogleOAuth:
    """Vertex: an OAuth access token for the service account in the credentials file (google-auth),
    refreshed when it expires; the file stays in the broker."""

    _SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

    def __init__(self, path: str) -> None:
        from google.oauth2 import service_account

        load = service_account.Credentials.from_service_account_file
        self._credentials = load(path, scopes=self._SCOPES)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        import google.auth.transport.requests

        with self._lock:
            if not self._credentials.valid:
                self._credentials.refresh(google.auth.transport.requests.Request())
            return {"authorization": f"Bearer {self._credentials.token}"}
