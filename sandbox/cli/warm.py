"""`sandbox warm EXPERT`: keep standby sandboxes ready so `sandbox run --runtime docker` starts at once.

A standby is the sandbox a run would create (networks, proxy, Expert container) with the runtime's start-up
already done, waiting for one run; it holds no secret until a run claims it, serves exactly one run, and
ends by itself after `--ttl` idle seconds (see sandbox/docker/_standby.py). Give `warm` the same config,
workspace and sandbox flags as the runs it is for: only an identical sandbox is ever claimed. A run that uses
a standby starts `sandbox warm` again in the background with these arguments, so the pool stays full.

    sandbox warm EXPERT [--count N] [--ttl SECONDS]     make standbys until N are ready
    sandbox warm EXPERT --stop                          remove this sandbox's standbys
    sandbox warm --stop --all-experts                   remove every standby
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._common import abort, err, prepare, workspace_dir
from ._options import (
    NO_FLAGS,
    ConfigOpt,
    EnvNameOpt,
    EnvPathOpt,
    ModelOpt,
    ProviderOpt,
    SandboxFlags,
    WorkspaceOpt,
    sandbox_flags,
)

__all__ = ["warm_command"]


@sandbox_flags
def warm_command(
    expert: Annotated[str | None, typer.Argument(help="Expert key in perstack.toml.")] = None,
    config: ConfigOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    workspace: WorkspaceOpt = None,
    flags: SandboxFlags = NO_FLAGS,
    count: Annotated[int, typer.Option("--count", min=0, max=16, help="Standbys to keep ready.")] = 1,
    ttl: Annotated[
        int, typer.Option("--ttl", min=30, max=86_400, help="Seconds a standby waits for a run.")
    ] = 900,
    stop: Annotated[bool, typer.Option("--stop", help="Remove the standbys instead.")] = False,
    all_experts: Annotated[
        bool, typer.Option("--all-experts", help="With --stop: every standby, whatever its Expert.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Keep standby sandboxes of an Expert ready (or remove them with --stop)."""
    from sandbox.docker import DockerBackend, DockerSettings, StandbyPool, plan_key, stop_pool, warm_pool
    from sandbox.options import RunOptions

    if stop and all_experts:
        import os

        backend = DockerBackend()
        try:
            removed = stop_pool(StandbyPool.default(os.environ), backend)
        finally:
            backend.close()
        _print({"removed": removed}, as_json, f"removed {len(removed)} standby sandbox(es)")
        return
    if expert is None:
        abort("missing EXPERT (or --stop --all-experts)")
    if all_experts:
        abort("--all-experts goes with --stop")
    ws = workspace_dir(workspace)
    prepared = prepare(
        expert,
        config=config,
        env_path=env_path,
        env_names=env,
        runtime="docker",
        provider=provider,
        model=model,
        flags=flags,
    )
    loaded, env_map, plan = prepared.loaded, prepared.env, prepared.plan
    if plan.unknown_delegates:
        abort(
            f"{loaded.path}: Expert {expert!r} delegates to unknown local Experts: "
            + ", ".join(plan.unknown_delegates)
        )
    options = RunOptions(
        config=loaded.config,
        config_path=loaded.path,
        expert_key=expert,
        query=None,
        runtime="docker",
        provider=provider,
        model=model,
        env=env_map,
        env_names=tuple(env or ()),
        workspace=ws,
        jobs_dir=Path.cwd() / "perstack" / "jobs",
        plan=plan,
        steering=prepared.steering,
    )
    backend = DockerBackend(environ=env_map)
    pool = StandbyPool.default(env_map)
    settings = DockerSettings(standby_pool=pool)
    try:
        if stop:
            removed = stop_pool(pool, backend, plan_key(options, plan, settings))
            _print({"removed": removed}, as_json, f"removed {len(removed)} standby sandbox(es)")
            return
        report = warm_pool(
            options, plan, count=count, ttl=ttl, refill=sys.argv[1:], backend=backend, settings=settings
        )
    finally:
        backend.close()
    if report.busy:
        err("sandbox: another `sandbox warm` is filling this pool; not starting more")
    _print(
        {
            "key": report.key,
            "ready": [r.id for r in report.ready],
            "created": report.created,
            "removed": report.removed,
            "busy": report.busy,
        },
        as_json,
        f"{len(report.ready)} standby sandbox(es) ready for {expert} (created {len(report.created)})",
    )


def _print(data: dict[str, object], as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2) if as_json else text)
