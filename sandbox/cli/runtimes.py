"""`sandbox runtimes` and `sandbox compare`: the runtime registry, and one Expert across several runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import abort, host_env, load, steering_for, workspace_dir
from ._options import ConfigOpt, EnvPathOpt, ModelOpt, ProviderOpt, WorkspaceOpt
from ._runtime_name import resolve_runtime

__all__ = ["compare_command", "runtimes_command"]


def runtimes_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """List runtimes: availability, version, binary, and why one is unavailable."""
    import os

    from sandbox.runtimes import runtimes_command as body

    code, text = body(as_json=as_json, env=dict(os.environ))
    print(text)
    raise typer.Exit(code)


def compare_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    query: Annotated[str, typer.Argument(help="The query, the same for every runtime.")],
    runtimes: Annotated[str, typer.Option("--runtimes", help="Comma-separated runtime ids.")] = "perstack",
    parallel: Annotated[bool, typer.Option("--parallel", help="Run the runtimes at the same time.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    config: ConfigOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1)] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", min=1, help="Per-generation timeout (ms).")
    ] = None,
    env_path: EnvPathOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Run the same Expert on several runtimes and print outcome, steps, tokens, cost, time and job ids."""
    from sandbox.options import RunOptions
    from sandbox.runtimes import compare_command as body

    ids = [resolve_runtime(r.strip(), None) for r in runtimes.split(",") if r.strip()]
    if not ids:
        abort("--runtimes: give at least one runtime id")
    loaded = load(config)
    ws = workspace_dir(workspace)
    env_map = host_env(loaded, env_path)
    options = RunOptions(
        config=loaded.config,
        config_path=loaded.path,
        expert_key=expert,
        query=query,
        provider=provider,
        model=model,
        max_steps=max_steps,
        timeout_ms=timeout,
        env=env_map,
        workspace=ws,
        jobs_dir=Path.cwd() / "perstack" / "jobs",
        steering=steering_for(loaded, env_path, env_map, None),
    )
    code, text = body(options, ids, parallel=parallel, as_json=as_json)
    print(text)
    raise typer.Exit(code)
