"""`RemoteLLMServer`: the in-process server's test API, for a server running somewhere else.

When the scripted server runs inside a container on the egress side of a sandbox network, a test on
the host cannot read its memory; it reads the `/_sandbox/*` control routes instead. This client gives
that the same shape as `ScriptedLLMServer` (`requests`, `unexpected`, `assert_all_served()`,
`set_script()`), so a test reads the same whichever way the server runs.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from ._script import Script, Turn
from ._state import RECORDS_ADAPTER, UNEXPECTED_ADAPTER, RecordedRequest, Unexpected, format_problems

__all__ = ["RemoteLLMServer"]


class RemoteLLMServer:
    """Client for a standalone server started with the control API (the CLI's default).

    **Parameters:**

    * `base_url` - the server root as reachable from the test, e.g. `https://127.0.0.1:8443`.
    * `verify` - what to trust: `True` (system CAs), an `ssl.SSLContext`, or a CA file path
      (`TLSFiles.ca_pem`), which is turned into a context.
    """

    def __init__(
        self, base_url: str, *, verify: bool | str | Path | ssl.SSLContext = True, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._verify = (
            ssl.create_default_context(cafile=str(verify)) if isinstance(verify, str | Path) else verify
        )
        self._timeout = timeout

    def _call(self, method: str, path: str, content: str | None = None) -> dict[str, Any]:
        with httpx.Client(verify=self._verify, timeout=self._timeout) as client:
            response = client.request(method, self.base_url + path, content=content)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Poll `/_sandbox/health` until it answers; raise `TimeoutError` naming the last failure."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self._call("GET", "/_sandbox/health")
                return
            except httpx.HTTPError as err:
                last = err
                time.sleep(0.1)
        raise TimeoutError(f"scripted LLM server at {self.base_url} not ready after {timeout}s: {last!r}")

    def set_script(self, script: Script | Iterable[Turn]) -> None:
        """Replace the remote script; the server forgets its records too."""
        turns = script if isinstance(script, Script) else Script(list(script))
        self._call("POST", "/_sandbox/script", turns.to_json())

    def _state(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/requests")

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request the remote server recorded."""
        return RECORDS_ADAPTER.validate_python(self._state()["requests"])

    @property
    def unexpected(self) -> list[Unexpected]:
        """The remote server's unexpected requests."""
        return UNEXPECTED_ADAPTER.validate_python(self._state()["unexpected"])

    def assert_all_served(self) -> None:
        """Same contract as `ScriptedLLMServer.assert_all_served()`, from one consistent snapshot."""
        state = self._state()
        problems = format_problems(
            UNEXPECTED_ADAPTER.validate_python(state["unexpected"]),
            [(p["description"], p["match"]) for p in state["pending"]],
        )
        if problems is not None:
            raise AssertionError(problems)
