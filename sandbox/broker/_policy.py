"""What the broker forwards for each provider: the upstream, the API calls the runtime needs, and which
request headers carry a credential.

A domain allowlist cannot tell a model call from a file upload to the same host, and it cannot tell the
user's key from an attacker's. The broker can, because it sits in the request: it forwards only the calls
listed here (method and path), refuses any request that brings a credential of its own, and adds the
user's credential itself (`_auth`). Paths are matched as sent (percent-encoded, so a
Bedrock ARN's `%2F` stays inside its segment) after the route's base path is removed, and refused when
their decoded form has dot segments, so `/model/..%2F..%2Ffiles/converse` is never normalised upstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from sandbox.config import provider_spec

__all__ = ["CREDENTIAL_HEADERS", "Call", "Route", "route_for"]

# Request headers that carry a provider credential (any provider's): the broker removes them all and adds
# the one credential its provider needs. Sent with any value but the run's placeholder, they are refused.
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-amz-security-token",
        "x-goog-user-project",
    }
)
# Query parameters that carry a credential (Gemini accepts `?key=`).
CREDENTIAL_QUERY = frozenset({"key", "access_token"})

_SEGMENT = r"[A-Za-z0-9._~-]+"  # one path segment of a model, deployment or project name (no `/`, no `:`)
_MODEL_ID = r"[A-Za-z0-9._~:%-]+"  # Bedrock model ids and ARNs carry `:` (percent-encoded `/` in ARNs)


@dataclass(frozen=True)
class Call:
    """One API call the runtime makes: an HTTP method and a path pattern (after the base path)."""

    method: str
    pattern: str

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.pattern, path) is not None


@dataclass(frozen=True)
class Route:
    """How the broker serves one provider.

    * `base_path`: the path the runtime's base URL has on the broker (the SDK's own default base path,
      e.g. OpenAI's `/v1`), removed before matching; `upstream`: the real base URL it maps to.
    * `calls`: the only calls forwarded; `auth`: how the credential is added (`_auth.authorizer`): the
      header a key goes in (`x-api-key`, `api-key`, `x-goog-api-key`), or `bearer`, `sigv4`,
      `google-oauth`, `none`.
    """

    provider: str
    upstream: str
    base_path: str
    calls: tuple[Call, ...]
    auth: str

    @property
    def host(self) -> str:
        return urlsplit(self.upstream).hostname or ""

    def relative(self, raw_path: str) -> str | None:
        """The call's path (still percent-encoded, as it is forwarded) relative to the base path; None when
        it is outside the base path or not canonical once decoded (dot segments, `//`, a backslash), so
        no upstream's normalisation can turn an allowed-looking path into another call."""
        decoded = unquote(raw_path)
        if "\\" in decoded or "//" in decoded or any(seg in (".", "..") for seg in decoded.split("/")):
            return None
        base = self.base_path.rstrip("/")
        if base and not (raw_path == base or raw_path.startswith(base + "/")):
            return None
        return raw_path[len(base) :] or "/"

    def allows(self, method: str, relative: str) -> bool:
        return any(call.matches(method, relative) for call in self.calls)

    def upstream_url(self, relative: str, query: str) -> str:
        return self.upstream.rstrip("/") + relative + (f"?{query}" if query else "")


_ANTHROPIC = (Call("POST", r"/v1/messages"), Call("POST", r"/v1/messages/count_tokens"))
_OPENAI = (Call("POST", r"/chat/completions"), Call("POST", r"/responses"))
_GEMINI = tuple(
    Call("POST", rf"/{version}/models/{_SEGMENT}:{verb}")
    for version in ("v1beta", "v1")
    for verb in ("generateContent", "streamGenerateContent", "countTokens")
)
_BEDROCK = (
    Call("POST", rf"/model/{_MODEL_ID}/converse"),
    Call("POST", rf"/model/{_MODEL_ID}/converse-stream"),
)
_OLLAMA = (Call("POST", r"/api/chat"), Call("POST", r"/v1/chat/completions"))


def _azure_calls() -> tuple[Call, ...]:
    return (
        Call("POST", rf"/deployments/{_SEGMENT}/chat/completions"),
        Call("POST", r"/v1/chat/completions"),
        Call("POST", r"/v1/responses"),
        Call("POST", r"/responses"),
    )


def _vertex_calls(project: str | None) -> tuple[Call, ...]:
    """Only the configured project's models: the user's token must not serve another project."""
    proj = re.escape(project) if project else _SEGMENT
    return tuple(
        Call(
            "POST",
            rf"/{version}/projects/{proj}/locations/{_SEGMENT}/publishers/{_SEGMENT}/models/{_SEGMENT}:{verb}",
        )
        for version in ("v1", "v1beta1")
        for verb in ("generateContent", "streamGenerateContent", "countTokens")
    )


def route_for(provider: str, setting: Mapping[str, Any], env: Mapping[str, str]) -> Route:
    """The route for `provider` with the run's settings and env (base URLs, regions, projects).

    Raises ValueError for a provider whose upstream cannot be known (Bedrock without a region, Azure
    without a resource name): the plan reports those as missing env first.
    """
    spec = provider_spec(provider)
    custom = spec.base_url(setting, env)
    hosts = spec.hosts(setting, env)
    if provider == "anthropic":
        return Route(provider, custom or "https://api.anthropic.com", "", _ANTHROPIC, "x-api-key")
    if provider == "openai":
        return Route(provider, custom or "https://api.openai.com/v1", "/v1", _OPENAI, "bearer")
    if provider == "deepseek":
        return Route(provider, custom or "https://api.deepseek.com", "", _OPENAI, "bearer")
    if provider == "google":
        return Route(provider, custom or f"https://{hosts[0]}", "", _GEMINI, "x-goog-api-key")
    if provider == "azure-openai":
        if not custom and not hosts:
            raise ValueError("azure-openai: no resource name or base URL, so no upstream for the broker")
        return Route(provider, custom or f"https://{hosts[0]}/openai", "/openai", _azure_calls(), "api-key")
    if provider == "amazon-bedrock":
        if not hosts:
            raise ValueError("amazon-bedrock: no region, so no upstream for the broker")
        return Route(provider, f"https://{hosts[0]}", "", _BEDROCK, "sigv4")
    if provider == "google-vertex":
        project = setting.get("project") or env.get("GOOGLE_VERTEX_PROJECT")
        upstream = custom or f"https://{hosts[0]}"
        return Route(provider, upstream, "", _vertex_calls(str(project) if project else None), "google-oauth")
    if provider == "ollama":
        return Route(provider, custom or "http://localhost:11434", "", _OLLAMA, "none")
    raise ValueError(f"the broker has no route for provider {provider!r}")  # pragma: no cover - table
