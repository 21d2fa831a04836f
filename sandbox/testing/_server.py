"""`ScriptedLLMServer`: the app served by uvicorn on a background thread, with optional TLS.

The server is a real TCP listener rather than an httpx `MockTransport`, because the things under
test (our runtime, Claude Code, Codex, a proxy in between) open their own connections from their own
processes; only a socket reaches all of them. The listening socket is bound before the thread starts,
so `base_url` is known (and connectable: the kernel queues connections) as soon as `start()` returns.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import uvicorn

from ._app import DEFAULT_MODELS, build_app
from ._script import Script, Turn
from ._state import RecordedRequest, ScriptState, Unexpected
from ._wire import DEFAULT_CHUNK_SIZE

__all__ = ["ScriptedLLMServer", "TLSFiles", "make_tls_files"]

_STARTUP_TIMEOUT_S = 10.0
_GRACE_S = 0.5  # time in-flight responses get to finish on stop() before connections are dropped


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for a TLS server: the CA clients must trust, and the server's chain and key."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA: `httpx.Client(verify=files.client_ssl_context())`.

        A context rather than the CA path, because httpx deprecates `verify=<path>`.
        """
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_tls_files(directory: str | Path, hostnames: Sequence[str] = ("localhost", "127.0.0.1")) -> TLSFiles:
    """Make a throw-away CA and a server certificate for `hostnames` (names or IPs) in `directory`.

    Useful on its own to prepare the files a containerised server is started with
    (`--tls-cert`/`--tls-key`) while the host test trusts `ca_pem`. Needs `trustme` (a dev extra).
    """
    try:
        import trustme  # only TLS users need it
    except ImportError as err:  # pragma: no cover - trustme is in the dev extra
        raise ImportError('TLS mode needs trustme: pip install "perstack-sandbox[dev]"') from err
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(*hostnames)
    files = TLSFiles(target / "ca.pem", target / "server-chain.pem", target / "server-key.pem")
    ca.cert_pem.write_to_path(str(files.ca_pem))
    cert_chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
    files.cert_pem.write_bytes(cert_chain)
    issued.private_key_pem.write_to_path(str(files.key_pem))
    return files


def _to_turns(script: Script | Iterable[Turn]) -> list[Turn]:
    return list(script.turns) if isinstance(script, Script) else list(script)


class ScriptedLLMServer:
    """A scripted Anthropic + OpenAI compatible model server on 127.0.0.1, for tests.

    ```python
    script = [Turn(tool_calls=[ToolCall("read_file", {"path": "a.txt"})]), Turn("done")]
    with ScriptedLLMServer(script) as srv:
        client = anthropic.Anthropic(base_url=srv.base_url, api_key="sk-test")
        ...
        srv.assert_all_served()
    ```

    **Parameters:**

    * `script` - a `Script` or a sequence of `Turn`s; more can be added with `enqueue()`.
    * `host`, `port` - where to listen; port 0 (the default) picks a free one.
    * `tls` - serve HTTPS with a fresh trustme CA; clients trust `ca_pem_path`.
    * `hostnames` - the names and IPs the TLS certificate is valid for.
    * `require_key` - reject model requests without this key (401, recorded as unexpected).
    * `models` - the names `GET /v1/models` lists.
    * `chunk_size` - characters per streamed delta (small, so streams have several deltas).
    * `control_api` - also expose `/_sandbox/*` (see `RemoteLLMServer`); off in-process.
    """

    def __init__(
        self,
        script: Script | Iterable[Turn] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        hostnames: Sequence[str] = ("localhost", "127.0.0.1"),
        require_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        control_api: bool = False,
    ) -> None:
        self.state = ScriptState(_to_turns(script))
        self.app = build_app(
            self.state, require_key=require_key, models=models, chunk_size=chunk_size, control_api=control_api
        )
        self.host = host
        self._requested_port = port
        self.tls = tls
        self.hostnames = tuple(hostnames)
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self.tls_files: TLSFiles | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind, start serving on a daemon thread, and return once the server accepts requests."""
        if self._thread is not None:
            raise RuntimeError("ScriptedLLMServer is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._socket = sock
        certfile = keyfile = None
        if self.tls:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="sandbox-llm-tls-")
            self.tls_files = make_tls_files(self._tls_dir.name, self.hostnames)
            certfile, keyfile = str(self.tls_files.cert_pem), str(self.tls_files.key_pem)
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=2,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = uvicorn.Server(config)
        self.state.closing.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"scripted-llm-{self.port}", daemon=True
        )
        self._thread.start()
        waited = threading.Event()
        for _ in range(int(_STARTUP_TIMEOUT_S / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            waited.wait(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError("scripted LLM server did not start (see the uvicorn log above)")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread; scripted delays in progress are cut short."""
        self.state.closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._server is not None:
            self._thread.join(timeout=_GRACE_S)
            if self._thread.is_alive():
                self._abort_connections(self._server)
            self._thread.join(timeout=_STARTUP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
        self._thread = self._server = self._socket = self._tls_dir = None

    @staticmethod
    def _abort_connections(server: uvicorn.Server) -> None:
        """Drop the connections still open after the grace period.

        Idle keep-alive connections of clients a test never closed would otherwise hold shutdown up:
        closing a TLS connection waits for the peer's close_notify, which an idle pooled client
        never sends, until uvicorn's graceful-shutdown timeout. Aborting runs on the server's loop,
        since asyncio transports are not thread-safe.
        """
        listeners = getattr(server, "servers", [])
        if not listeners:
            return

        def abort() -> None:
            for connection in list(server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()

        with contextlib.suppress(RuntimeError):  # the loop may have closed in the meantime
            listeners[0].get_loop().call_soon_threadsafe(abort)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        if self._socket is None:
            raise RuntimeError("ScriptedLLMServer is not started")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """Server root, e.g. `http://127.0.0.1:41234`: the Anthropic SDK's `base_url`."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)  # noqa: S104 - a mapping, not a bind
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        """Same as `base_url`; named for symmetry with `openai_base_url`."""
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        """`base_url + "/v1"`: the OpenAI SDK appends `/chat/completions` to this."""
        return self.base_url + "/v1"

    @property
    def ca_pem_path(self) -> Path:
        """The CA certificate to trust in TLS mode, for clients configured by path (env vars, CLIs)."""
        return self._tls().ca_pem

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the TLS-mode CA, for `verify=` of httpx and the SDKs' HTTP clients."""
        return self._tls().client_ssl_context()

    def _tls(self) -> TLSFiles:
        if self.tls_files is None:
            raise RuntimeError("TLS files exist only for a started ScriptedLLMServer(tls=True)")
        return self.tls_files

    # -- script and records -------------------------------------------------------------------------

    def enqueue(self, *turns: Turn) -> None:
        """Append turns to the script (served after the ones already queued)."""
        self.state.enqueue(turns)

    def set_script(self, script: Script | Iterable[Turn]) -> None:
        """Replace the script and forget all records, as if the server were new."""
        self.state.replace(_to_turns(script))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in the order they were decided (a copy)."""
        return self.state.requests

    @property
    def unexpected(self) -> list[Unexpected]:
        """Failed expectations, script exhaustion, bad keys and unknown paths (a copy)."""
        return self.state.unexpected

    @property
    def pending(self) -> list[tuple[int, Turn]]:
        """`(index, turn)` of the turns not served yet."""
        return self.state.pending

    def assert_all_served(self) -> None:
        """Raise `AssertionError` listing every unexpected request and every unserved turn."""
        problems = self.state.problems()
        if problems is not None:
            raise AssertionError(problems)
