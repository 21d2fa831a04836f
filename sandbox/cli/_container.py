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
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["run_in_container", "wait_for_proxy"]

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
    from sandbox.runtime.models import prewarm

    threading.Thread(
        target=prewarm, args=(provider or "anthropic",), name="sandbox-prewarm", daemon=True
    ).start()


def run_in_container(
    argv: list[str], payload: dict[str, Any], environ: Mapping[str, str] | None = None
) -> int:
    """Run the Expert named in argv with the env and checkpoint of `payload`; returns the exit code."""
    source = dict(os.environ if environ is None else environ)
    args = _parser().parse_args(argv)
    _arm_deadline(args.deadline)
    proxy_error: list[str] = []
    waiter = threading.Thread(
        target=lambda: proxy_error.extend(filter(None, [wait_for_proxy(source.get("SANDBOX_PROXY_URL"))])),
        name="sandbox-proxy-wait",
        daemon=True,
    )
    waiter.start()
    config_path = Path(source.get("SANDBOX_CONFIG", "/sandbox/expert/perstack.json"))
    _prewarm_provider(args.provider, config_path)

    from sandbox.config import PerstackConfig
    from sandbox.events import Checkpoint, JsonlWriter
    from sandbox.options import RunOptions
    from sandbox.runtime import run_native

    config = PerstackConfig.model_validate_json(config_path.read_bytes())
    # Exactly the plan's variables: the proxy/infrastructure ones set on the container plus the secrets.
    env = dict(source)
    env.update({str(k): str(v) for k, v in (payload.get("env") or {}).items()})
    budget: str | int | None = args.reasoning_budget
    if isinstance(budget, str) and budget.isdigit():
        budget = int(budget)
    options = RunOptions(
        config=config,
        config_path=config_path,
        expert_key=args.expert,
        query=args.query,
        runtime="docker",
        provider=args.provider,
        model=args.model,
        temperature=args.temperature,
        reasoning_budget=budget,
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
    return int(run_native(options, JsonlWriter(sys.stdout), store=None, initial_checkpoint=initial))
