"""The registry API client: `GET /api/registry/v1/experts/{key}` (shared/reference/perstack.md §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from sandbox._errors import UserError

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API_BASE_URL", "RegistryError", "fetch_expert"]

DEFAULT_API_BASE_URL = "https://api.perstack.ai"
TIMEOUT_S = 30.0  # Perstack's client uses 30 s too
MAX_BODY_BYTES = 2 * 1024 * 1024  # an instruction is at most 20 KB; a whole definition is far below this


class RegistryError(UserError):
    """A registry Expert could not be fetched or is not a valid Expert. One line, naming the key."""


def fetch_expert(
    key: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """The registry's JSON object for Expert `key` (`data.expert`); `RegistryError` on any failure.

    The API key, when there is one, goes only to the registry host, as `Authorization: Bearer`. No
    redirects are followed (as Perstack's client), and the body size is bounded.
    """
    import httpx

    base = (base_url or DEFAULT_API_BASE_URL).rstrip("/")
    url = f"{base}/api/registry/v1/experts/{quote(key, safe='')}"
    host = urlsplit(base).netloc
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        with (
            httpx.Client(timeout=TIMEOUT_S, transport=transport, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise RegistryError(
                        f"registry Expert {key}: the answer from {host} is larger than "
                        f"{MAX_BODY_BYTES // 1024} KiB"
                    )
            status = response.status_code
    except httpx.HTTPError as exc:
        raise RegistryError(
            f"registry Expert {key}: could not reach the registry at {host}: {exc or type(exc).__name__}"
        ) from None
    data = _json(body)
    if status != 200:
        detail = ""
        if isinstance(data, dict):
            parts = [str(data[k]) for k in ("error", "reason") if isinstance(data.get(k), str) and data[k]]
            detail = ": " + ": ".join(parts) if parts else ""
        raise RegistryError(f"registry Expert {key}: {host} answered HTTP {status}{detail}")
    inner = data.get("data") if isinstance(data, dict) else None
    expert = inner.get("expert") if isinstance(inner, dict) else None
    if not isinstance(expert, dict):
        raise RegistryError(
            f"registry Expert {key}: {host} did not answer with data.expert "
            "(not the registry API, or a changed one)"
        )
    return expert


def _json(body: bytes) -> Any:
    import json

    try:
        return json.loads(body)
    except ValueError:
        return None
