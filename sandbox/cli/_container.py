"""Inside the Expert container: turn `container-run` arguments + the stdin payload into a native run.

The host passes the run's options as arguments and the secret values on stdin. The job store lives on
the host (it records the event stream), so the runtime inside stores nothing and resumes from the
checkpoint the host sends.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["run_in_container"]


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
    p.add_argument("--verbose", action="store_true")
    p.add_argument("-i", "--interactive-tool-call-result", dest="interactive")
    return p


def run_in_container(argv: list[str], payload: dict[str, Any]) -> int:
    """Run the Expert named in argv with the env and checkpoint of `payload`; returns the exit code."""
    from sandbox.config import PerstackConfig
    from sandbox.events import Checkpoint, JsonlWriter
    from sandbox.options import RunOptions
    from sandbox.runtime import run_native

    args = _parser().parse_args(argv)
    config_path = Path(os.environ.get("SANDBOX_CONFIG", "/sandbox/expert/perstack.json"))
    config = PerstackConfig.model_validate_json(config_path.read_bytes())
    # Exactly the plan's variables: the proxy/infrastructure ones set on the container plus the secrets.
    env = {k: v for k, v in os.environ.items()}
    env.update({str(k): str(v) for k, v in (payload.get("env") or {}).items()})
    budget: str | int | None = args.reasoning_budget
    if isinstance(budget, str) and budget.isdigit():
        budget = int(budget)
    options = RunOptions(
        config=config,
        config_path=config_path,
        expert_key=args.expert,
        query=args.query,
        runtime="perstack",
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
        jobs_dir=Path("/tmp/perstack/jobs"),
    )
    checkpoint = payload.get("checkpoint")
    initial = Checkpoint.model_validate(checkpoint) if checkpoint else None
    return int(run_native(options, JsonlWriter(sys.stdout), store=None, initial_checkpoint=initial))
