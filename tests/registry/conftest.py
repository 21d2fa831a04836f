"""Registry test fixtures: the runtime tests' harness, and a registry served over HTTPS on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from sandbox.testing import make_tls_files
from tests.agent.conftest import harness, llm

__all__ = ["RegistryServer", "harness", "https_registry", "llm"]


@dataclass
class RegistryServer:
    """`answers`: registry key -> JSON body to serve (else 404); `seen`: (raw path, Authorization header)."""

    url: str
    ca: Path
    answers: dict[str, Any] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture
def https_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    tls = make_tls_files(tmp_path / "registry-tls")
    state = RegistryServer(url="", ca=tls.ca_pem)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append((self.path, self.headers.get("Authorization")))
            body = state.answers.get(unquote(self.path.rsplit("/", 1)[-1]))
            missing = {"error": "Not Found", "reason": "nope"}
            payload = json.dumps(body if body is not None else missing).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert_pem), str(tls.key_pem))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
