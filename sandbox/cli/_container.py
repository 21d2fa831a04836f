"""Inside the Expert container: turn `container-run` arguments + the stdin payload into a native run.

The host passes the run's options as arguments and the secret values on stdin. The job store lives on
the host (it records the event stream), so the runtime inside stores nothing and resumes from the
checkpoint the host sends.

Two things happen here that only make sense inside the sandbox:

* *Waiting for the proxy.* The host starts the proxy and this container at the same time (a warm run
  should not pay for the two starts one after the other), so before the first request this process waits
  until the proxy's port accepts a connection, while the runtime's imports load in parallel. If the proxy
  never comes up the run fails with a message saying so (exit 69) instead of a model-API timeout.
* *A deadline.* `--deadline EPOCH` is the host's wall-clock guard, repeated inside so that a container whose
  host process was killed (SIGKILL) still ends: at the deadline the runtime gets SIGTERM (it writes its last
  checkpoint) and, a few seconds later, the process exits.
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
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig

__all__ = ["finish", "main", "run_in_container", "run_standby", "wait_for_proxy"]

EXIT_PROXY_UNAVAILABLE = 69  # EX_UNAVAILABLE
_PROXY_WAIT_S = 30.0
_DEADLINE_KILL_GRACE_S = 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sandbox internal container-run", add_help=False)
    p.add_argument("expert")
    p.add_argument("query", nargs="?")
    p.add_argument("--provider")
    p.add_argument("--model")
    p.add_argument("--temperature", type=float)
    p.add_argument("--reasoning-budget")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-retries", type=int)
    p.add_argument("--timeout", type=int)
    p.add_argument("--job-id")
    p.add_argument("--deadline", type=float, help="epoch seconds after which the run is stopped")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("-i", "--interactive-tool-call-result", dest="interactive")
    return p


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
    """`sandbox internal container-run ARGS`: a standby (`--standby ...`) or a run, whose JSON payload
    (`{"env": {NAME: value}, "checkpoint": {...} | null, "eventKey": hex}`) is the first line on stdin.

    The provider's imports start before the payload is read, so they overlap the host attaching to the
    container and sending it.
    """
    import json

    _harden()
    if argv[:1] == ["--standby"]:
        finish(run_standby(argv[1:]))
    known, _ = _parser().parse_known_args(argv)
    _prewarm_provider(known.provider, _config_path(os.environ))
    raw = sys.stdin.readline()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        print("error: container-run expects one JSON line on stdin", file=sys.stderr)
        finish(2)
    if not isinstance(payload, dict):
        print("error: container-run expects a JSON object on stdin", file=sys.stderr)
        finish(2)
    finish(run_in_container(argv, payload))


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
    argv: list[str],
    payload: dict[str, Any],
    environ: Mapping[str, str] | None = None,
    config: PerstackConfig | None = None,
) -> int:
    """Run the Expert named in argv with the env and checkpoint of `payload`; returns the exit code.

    `config`: the mounted config, already validated (a standby did it, and its provider imports, while it
    waited); otherwise it is read here, while the provider's imports that `main` started run on their thread.
    """
    source = dict(os.environ if environ is None else environ)
    args = _parser().parse_args(argv)
    from sandbox._wire import WireWriter

    event_key = payload.get("eventKey")
    if not isinstance(event_key, str) or not event_key:
        print("error: container-run expects the run's event key in the stdin payload", file=sys.stderr)
        return 2
    try:
        writer = WireWriter(sys.stdout, event_key)
    except ValueError:
        print("error: container-run got an invalid event key", file=sys.stderr)
        return 2
    _arm_deadline(args.deadline)
    waiter, proxy_error = _wait_for_proxy_in_background(source)
    config_path = _config_path(source)

    from sandbox.agent import run_native
    from sandbox.config import PerstackConfig
    from sandbox.events import Checkpoint
    from sandbox.options import RunOptions

    if config is None:
        config = PerstackConfig.model_validate_json(config_path.read_bytes())
    # Exactly the plan's variables: the proxy/infrastructure ones set on the container plus the secrets.
    env = dict(source)
    env.update({str(k): str(v) for k, v in (payload.get("env") or {}).items()})
    options = RunOptions(
        config=config,
        config_path=config_path,
        expert_key=args.expert,
        query=args.query,
        runtime="docker",
        provider=args.provider,
        model=args.model,
        temperature=args.temperature,
        reasoning_budget=args.reasoning_budget,  # "1024" becomes tokens in `sandbox.settings`
        max_steps=args.max_steps,
        max_retries=args.max_retries,
        timeout_ms=args.timeout,
        job_id=args.job_id,
        interactive_result=args.interactive,
        verbose=args.verbose,
        env=env,
        workspace=Path("/workspace"),
        jobs_dir=Path("/tmp/perstack/jobs"),  # noqa: S108 - unused: store=None, the host keeps the job
    )
    checkpoint = payload.get("checkpoint")
    initial = Checkpoint.model_validate(checkpoint) if checkpoint else None
    waiter.join()
    if proxy_error:
        print(f"sandbox: {proxy_error[0]}", file=sys.stderr, flush=True)
        return EXIT_PROXY_UNAVAILABLE
    return int(run_native(options, writer, store=None, initial_checkpoint=initial))


def _standby_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sandbox internal container-run --standby", add_help=False)
    p.add_argument("--idle", type=float, default=900.0, help="seconds to wait for a run before exiting")
    p.add_argument("--provider")
    return p


def run_standby(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """Standby mode (`sandbox warm`): do a run's start-up now, then wait on stdin for the run itself.

    Start-up is what costs: the provider SDK and pydantic-ai's model module (~1.3 s here), the runtime, the
    config, the proxy's first accepted connection, and the first request's own work (deferred schemas,
    request mapping, stream parsing), which an offline rehearsal does now (`models._rehearsal`). All of it
    happens before `sandbox: standby ready` goes to stderr; then one JSON line on stdin
    (`{"args": [...], "env": {...}, "checkpoint": ...}`) starts the run exactly as a fresh container would.
    Nobody claiming it within `--idle` seconds ends the process (and so the container) with exit code 0.
    Nothing secret is here until the line arrives.
    """
    import json
    import select

    from sandbox.docker import READY_LINE

    args = _standby_parser().parse_args(argv)
    source = dict(os.environ if environ is None else environ)
    waiter, errors = _wait_for_proxy_in_background(source)

    from sandbox._startup import resume_gc
    from sandbox.agent import models, run_native  # noqa: F401 - imported now, not when the run starts
    from sandbox.agent.models import rehearse
    from sandbox.config import PerstackConfig
    from sandbox.settings import resolve_provider

    _preload_run_modules()

    config = PerstackConfig.model_validate_json(_config_path(source).read_bytes())
    provider, _ = resolve_provider(args.provider, config)
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
    ready, _, _ = select.select([sys.stdin], [], [], args.idle)
    if not ready:
        print("sandbox: standby not claimed in time; exiting", file=sys.stderr, flush=True)
        return 0
    raw = sys.stdin.readline()
    if not raw:
        print("sandbox: standby's stdin closed before a run claimed it; exiting", file=sys.stderr, flush=True)
        return 0
    try:
        payload = json.loads(raw)
        run_args = [str(a) for a in payload.pop("args")]
    except (ValueError, KeyError, TypeError, AttributeError):
        print('error: a standby expects one JSON line with "args" on stdin', file=sys.stderr, flush=True)
        return 2
    return run_in_container(run_args, payload, environ=source, config=config)


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
