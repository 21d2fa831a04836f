"""The Expert container's entry program: the run the host resolved, read from stdin, run natively.

The host sends one JSON line on stdin (`sandbox.request.WirePayload`): the run as it resolved it (a
`RunRequest`: settings with their defaults, the resume checkpoint, the job id, the deadline), the secret
values and the event key. Nothing about the run is in argv and nothing is resolved again in here; the
arguments are only start-up hints (`--provider`, whose SDK to import while the payload is awaited, and
`--standby`/`--idle` for a sandbox made by `sandbox warm`). The job store lives on the host (it records the
event stream), so the runtime inside stores nothing.

Why not in `sandbox/cli`: this is not a user command. `sandbox internal container-run` comes straight here
without importing Typer (`sandbox.cli.main`), and it runs inside the sandbox, where the host's CLI
modules have nothing to do.

Two things happen here that only make sense inside the sandbox:

* *Waiting for the proxy.* The host starts the proxy and this container at the same time (a warm run
  should not pay for the two starts one after the other), so before the first request this process waits
  until the proxy's port accepts a connection, while the runtime's imports load in parallel. If the proxy
  never comes up the run fails with a message saying so (exit 69) instead of a model-API timeout.
* *A deadline.* The request's `deadline` (epoch seconds) is the host's wall-clock guard, repeated inside
  so that a container whose host process was killed (SIGKILL) still ends: at the deadline the runtime
  gets SIGTERM (it writes its last checkpoint) and, a few seconds later, the process exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig
    from sandbox.request import WirePayload

__all__ = ["finish", "main", "run_in_container", "run_standby", "wait_for_proxy"]

EXIT_PROXY_UNAVAILABLE = 69  # EX_UNAVAILABLE
_PROXY_WAIT_S = 30.0
_DEADLINE_KILL_GRACE_S = 10.0


def _startup_parser() -> argparse.ArgumentParser:
    """The entry's own arguments: start-up hints, not the run (which comes on stdin)."""
    p = argparse.ArgumentParser(prog="sandbox internal container-run", add_help=False)
    p.add_argument("--provider", help="the provider whose SDK to import before the payload arrives")
    p.add_argument("--standby", action="store_true", help="start up now, wait on stdin for the run")
    p.add_argument("--idle", type=float, default=900.0, help="standby: seconds to wait for a run")
    return p


def read_payload(raw: str) -> WirePayload | str:
    """The stdin line as a `WirePayload`, or the one-line reason it is not one."""
    from pydantic import ValidationError

    from sandbox.request import WirePayload

    if not raw.strip():
        return "expects one JSON line on stdin (the run, its env and its event key)"
    try:
        return WirePayload.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return "expects one JSON line on stdin (the run, its env and its event key): not JSON"
        if not first["loc"]:
            return "expects a JSON object on stdin (the run, its env and its event key)"
        where = ".".join(str(part) for part in first["loc"])
        return f"expects one JSON line on stdin (the run, its env and its event key): {where}: {first['msg']}"


def wait_for_proxy(url: str | None, timeout: float = _PROXY_WAIT_S) -> str | None:
    """Block until the proxy at `url` accepts a TCP connection; an error message after `timeout`, else None.

    Connection refused returns at once while Squid is starting, so the loop retries every 10 ms; on an
    internal network nothing else can answer on that address.
    """
    if not url:
        return None
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 3128
    if not host:
        return None
    end = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return None
        except OSError as exc:
            last = exc
            time.sleep(0.01)
    return f"the sandbox's proxy at {host}:{port} did not accept connections within {timeout:.0f}s ({last})"


def _config_path(source: Mapping[str, str]) -> Path:
    return Path(source.get("SANDBOX_CONFIG", "/sandbox/expert/perstack.json"))


def _wait_for_proxy_in_background(source: Mapping[str, str]) -> tuple[threading.Thread, list[str]]:
    """Start `wait_for_proxy` on a thread; join the thread, then the list holds its error, if any."""
    errors: list[str] = []
    url = source.get("SANDBOX_PROXY_URL")
    waiter = threading.Thread(
        target=lambda: errors.extend(filter(None, [wait_for_proxy(url)])),
        name="sandbox-proxy-wait",
        daemon=True,
    )
    waiter.start()
    return waiter, errors


def _arm_deadline(deadline: float | None) -> None:
    if deadline is None:
        return

    def watchdog() -> None:
        time.sleep(max(0.0, deadline - time.time()))
        print("sandbox: the run reached its deadline; stopping", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_DEADLINE_KILL_GRACE_S)
        os._exit(124)

    threading.Thread(target=watchdog, name="sandbox-deadline", daemon=True).start()


def _prewarm_provider(flag: str | None, config_path: Path) -> None:
    """Start importing the provider's SDK on a thread, overlapping the proxy wait and skill start-up."""
    import json

    try:
        provider = flag or (json.loads(config_path.read_bytes()).get("provider") or {}).get("providerName")
    except (OSError, ValueError):
        return
    from sandbox._defaults import DEFAULT_PROVIDER  # imports nothing: the config models are not loaded yet
    from sandbox.agent.models import prewarm

    threading.Thread(
        target=prewarm, args=(provider or DEFAULT_PROVIDER,), name="sandbox-prewarm", daemon=True
    ).start()


def main(argv: list[str]) -> NoReturn:
    """`sandbox internal container-run [--provider P] [--standby --idle S]`: a run whose payload is the
    first line on stdin, or a standby that waits for it.

    The provider's imports start before the payload is read, so they overlap the host attaching to the
    container and sending it.
    """
    _harden()
    args = _startup_parser().parse_args(argv)
    if args.standby:
        finish(run_standby(idle=args.idle, provider=args.provider))
    _prewarm_provider(args.provider, _config_path(os.environ))
    payload = read_payload(sys.stdin.readline())
    if isinstance(payload, str):
        print(f"error: container-run {payload}", file=sys.stderr)
        finish(2)
    finish(run_in_container(payload))


def _harden() -> None:
    """Before any secret arrives: no same-uid peer may read this process's memory or make it dump a core."""
    from sandbox._hardening import harden_runtime

    try:
        harden_runtime()
    except OSError as exc:
        print(
            f"sandbox: cannot harden the runtime process ({exc}); refusing to receive secrets",
            file=sys.stderr,
            flush=True,
        )
        finish(71)  # EX_OSERR


def run_in_container(
    payload: WirePayload,
    environ: Mapping[str, str] | None = None,
    config: PerstackConfig | None = None,
) -> int:
    """Run the request of `payload` with its env; returns the exit code.

    `config`: the mounted config, already validated (a standby did it, and its provider imports, while it
    waited); otherwise it is read here, while the provider's imports that `main` started run on their thread.
    """
    from sandbox._wire import WireWriter

    source = dict(os.environ if environ is None else environ)
    request = payload.run
    try:
        writer = WireWriter(sys.stdout, payload.event_key)
    except ValueError:
        print("error: container-run got an invalid event key", file=sys.stderr)
        return 2
    _arm_deadline(request.deadline)
    waiter, proxy_error = _wait_for_proxy_in_background(source)
    config_path = _config_path(source)

    from sandbox.agent import run_native
    from sandbox.config import PerstackConfig
    from sandbox.options import RunOptions

    if config is None:
        config = PerstackConfig.model_validate_json(config_path.read_bytes())
    # Exactly the plan's variables: the proxy/infrastructure ones set on the container plus the secrets.
    env = {**source, **payload.env}
    options = RunOptions(
        config=config,
        config_path=config_path,
        expert_key=request.expert_key,
        query=request.query,
        runtime="docker",
        job_id=request.job_id,
        interactive_result=request.interactive_result,
        verbose=request.verbose,
        env=env,
        workspace=Path("/workspace"),
        jobs_dir=Path("/tmp/perstack/jobs"),  # noqa: S108 - unused: store=None, the host keeps the job
    )
    waiter.join()
    if proxy_error:
        print(f"sandbox: {proxy_error[0]}", file=sys.stderr, flush=True)
        return EXIT_PROXY_UNAVAILABLE
    return int(run_native(options, writer, store=None, request=request))


def run_standby(*, idle: float, provider: str | None, environ: Mapping[str, str] | None = None) -> int:
    """Standby mode (`sandbox warm`): do a run's start-up now, then wait on stdin for the run itself.

    Start-up is what costs: the provider SDK and pydantic-ai's model module (~1.3 s here), the runtime, the
    config, the proxy's first accepted connection, and the first request's own work (deferred schemas,
    request mapping, stream parsing), which an offline rehearsal does now (`models._rehearsal`). All of it
    happens before `sandbox: standby ready` goes to stderr; then the same payload line a fresh container
    reads (`sandbox.request.WirePayload`) starts the run exactly as a fresh container would. Nobody
    claiming it within `idle` seconds ends the process (and so the container) with exit code 0. Nothing
    secret is here until the line arrives.
    """
    import select

    from sandbox.docker import READY_LINE

    source = dict(os.environ if environ is None else environ)
    waiter, errors = _wait_for_proxy_in_background(source)

    from sandbox._startup import resume_gc
    from sandbox.agent import models, run_native  # noqa: F401 - imported now, not when the run starts
    from sandbox.agent.models import rehearse
    from sandbox.config import PerstackConfig
    from sandbox.settings import resolve_provider

    _preload_run_modules()

    config = PerstackConfig.model_validate_json(_config_path(source).read_bytes())
    provider, _ = resolve_provider(provider, config)
    models.prewarm(provider)
    models.wait_for_prewarm()
    rehearse(config, provider)  # offline, before the real client is prepared: it takes a mock one
    models.prepare_http_client(provider)
    resume_gc(collect=True)
    waiter.join()
    if errors:
        print(f"sandbox: {errors[0]}", file=sys.stderr, flush=True)
        return EXIT_PROXY_UNAVAILABLE
    print(READY_LINE, file=sys.stderr, flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], idle)
    if not ready:
        print("sandbox: standby not claimed in time; exiting", file=sys.stderr, flush=True)
        return 0
    raw = sys.stdin.readline()
    if not raw:
        print("sandbox: standby's stdin closed before a run claimed it; exiting", file=sys.stderr, flush=True)
        return 0
    payload = read_payload(raw)
    if isinstance(payload, str):
        print(f"error: a standby {payload}", file=sys.stderr, flush=True)
        return 2
    return run_in_container(payload, environ=source, config=config)


def _preload_run_modules() -> None:
    """Import what a run imports lazily (the job loop, skills, MCP client), so a claimed standby does not."""
    import importlib

    for name in (
        "sandbox.agent._job",
        "sandbox.agent._loop",
        "sandbox.agent._generate",
        "sandbox.agent.skills",
        "sandbox.agent.skills.mcp",
        "sandbox.agent.skills.builtin",
        "sandbox.events",
        "pydantic_ai.direct",
        "anyio._core._sockets",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def finish(code: int) -> NoReturn:
    """Exit now with `code`, after flushing: the run is over and recorded on the host.

    The interpreter's own shutdown (finalizing thousands of modules and objects) costs ~0.1 s the host would
    wait for before it can tear the sandbox down; skill processes were already closed by the run.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
