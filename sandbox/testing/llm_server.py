"""A scripted LLM server that speaks the real Anthropic and OpenAI wire protocols.

Protocols: Anthropic Messages (`POST /v1/messages`), OpenAI Chat Completions
(`POST /v1/chat/completions`) and OpenAI Responses (`POST /v1/responses`, what Codex speaks).

Nothing on a test machine may reach a model provider, yet the runtime, Claude Code and Codex must be
tested against what providers really send: SSE event order, tool arguments split over many deltas,
429s with `retry-after`, errors after a stream has started. This server plays a `Script` of `Turn`s in
whichever protocol each request arrives in, checks each request against the turn's `Expectation`, and
records everything, so a test can assert both what the agent did and what it sent.

In-process (tests)::

    from sandbox.testing import ScriptedLLMServer, ToolCall, Turn

    with ScriptedLLMServer([Turn(tool_calls=[ToolCall("ls", {})]), Turn("done")]) as srv:
        run_agent(base_url=srv.base_url)          # OpenAI clients: srv.openai_base_url
        srv.assert_all_served()

Standalone (e.g. in a container on the egress side of a sandbox network)::

    python -m sandbox.testing.llm_server --script script.json --host 0.0.0.0 --port 8443 \\
        --tls-cert server-chain.pem --tls-key server-key.pem

prints its base URL on stdout and serves `/_sandbox/requests` and `/_sandbox/script` for the host
side, which reads them with `RemoteLLMServer`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from ._app import DEFAULT_MODELS, build_app
from ._remote import RemoteLLMServer
from ._script import ErrorSpec, Expectation, Script, ToolCall, Turn, Usage
from ._server import ScriptedLLMServer, TLSFiles, make_tls_files
from ._state import RecordedRequest, ScriptState, Unexpected
from ._wire import DEFAULT_CHUNK_SIZE

__all__ = [
    "DEFAULT_MODELS",
    "ErrorSpec",
    "Expectation",
    "RecordedRequest",
    "RemoteLLMServer",
    "Script",
    "ScriptedLLMServer",
    "TLSFiles",
    "ToolCall",
    "Turn",
    "Unexpected",
    "Usage",
    "build_app",
    "main",
    "make_tls_files",
]

_KEY_ENV = "SANDBOX_LLM_REQUIRE_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.testing.llm_server",
        description="Serve a scripted LLM over the Anthropic Messages, OpenAI Chat Completions and "
        "OpenAI Responses APIs.",
    )
    parser.add_argument(
        "--script", help="script JSON file (Script.dump()); empty until POST /_sandbox/script"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any (default: 8080)")
    parser.add_argument("--tls-cert", help="PEM certificate chain; serve HTTPS (needs --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument(
        "--require-key",
        default=os.environ.get(_KEY_ENV),
        help=f"API key model requests must send, else 401 [env var: {_KEY_ENV}]",
    )
    parser.add_argument(
        "--model", action="append", dest="models", help="a name for GET /v1/models (repeatable)"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"characters per streamed delta (default: {DEFAULT_CHUNK_SIZE})",
    )
    parser.add_argument(
        "--no-control-api", action="store_true", help="do not expose /_sandbox/requests and /_sandbox/script"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the standalone server until SIGINT/SIGTERM; returns the process exit code."""
    args = _parser().parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("llm_server: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        script = Script.load(args.script) if args.script else Script()
    except (OSError, ValidationError, ValueError) as err:
        print(f"llm_server: cannot load script {args.script}: {err}", file=sys.stderr)
        return 1
    state = ScriptState(script.turns)
    app = build_app(
        state,
        require_key=args.require_key or None,
        models=args.models or DEFAULT_MODELS,
        chunk_size=args.chunk_size,
        control_api=not args.no_control_api,
    )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        print(f"llm_server: cannot bind {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    scheme = "https" if args.tls_cert else "http"
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{scheme}://{shown}:{port}", flush=True)  # data on stdout: the address to use
    print(
        f"llm_server: {len(script.turns)} turn(s) scripted, serving on port {port}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
        timeout_graceful_shutdown=2,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
