"""`sandbox run EXPERT QUERY` and `sandbox start`: run an Expert on the chosen runtime.

Accepts every option of the Perstack CLI (`--provider`, `--model`, `--temperature`, `--max-steps`,
`--max-retries`, `--timeout`, `--runtime`, `--config`, `--env-path`, `--job-id`, `--continue`,
`--continue-job`, `--resume-from`, `-i`, `--verbose`) plus `--env NAME` and `--workspace` for the docker
runtime and the sandbox options. Stdout carries only events, one JSON object per line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from sandbox.runtimes import BUILTIN_NAMES

from ._common import abort, check_accepted_policy, err, prepare, workspace_dir
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

__all__ = ["run_command", "start_command"]


def _reasoning(value: str | None) -> str | int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    if value not in {"none", "minimal", "low", "medium", "high"}:
        abort(f"--reasoning-budget: {value!r} is not none|minimal|low|medium|high or a number of tokens")
    return value


def _preload_docker_sdk() -> None:
    """Import the Docker SDK (~80 ms) on a thread while this one loads the config and plans."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=("sandbox.docker._sdk",), daemon=True).start()


@sandbox_flags
def run_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    query: Annotated[str | None, typer.Argument(help="The query (omit with -i when resuming).")] = None,
    config: ConfigOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0.0, max=2.0)] = None,
    reasoning_budget: Annotated[str | None, typer.Option("--reasoning-budget")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Steps across the whole job.")
    ] = None,
    max_retries: Annotated[int | None, typer.Option("--max-retries", min=0)] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", min=1, help="Per-generation timeout (ms).")
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option("--runtime", help="|".join(BUILTIN_NAMES)),  # or an installed plugin's name
    ] = None,
    env_path: EnvPathOpt = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Id of the new job.")] = None,
    continue_: Annotated[bool, typer.Option("--continue", help="Continue the latest job.")] = False,
    continue_job: Annotated[str | None, typer.Option("--continue-job", help="Continue this job.")] = None,
    resume_from: Annotated[
        str | None, typer.Option("--resume-from", help="Resume from this checkpoint (needs --continue-job).")
    ] = None,
    interactive: Annotated[
        str | None,
        typer.Option(
            "-i", "--interactive-tool-call-result", help="Answer to a pending interactive tool call."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="More events (build progress, proxy log).")
    ] = False,
    env: EnvNameOpt = None,
    workspace: WorkspaceOpt = None,
    flags: SandboxFlags = NO_FLAGS,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print what would run; run nothing.")
    ] = False,
    accept_policy: Annotated[
        bool,
        typer.Option(
            "--accept-policy",
            help="Accept a sandbox that perstack.toml widened since the last run (see `sandbox plan`).",
        ),
    ] = False,
) -> None:
    """Run an Expert; events stream to stdout as JSON lines."""
    from sandbox.options import RunOptions

    if resume_from and not continue_job:
        abort("--resume-from requires --continue-job")
    if continue_ and continue_job:
        abort("--continue and --continue-job cannot be used together")
    if job_id and (continue_ or continue_job):
        abort("--job-id starts a new job; it cannot be combined with --continue or --continue-job")
    if query is None and interactive is None:
        abort("missing QUERY (or -i ANSWER to resume a stopped run)")
    ws = workspace_dir(workspace)
    if runtime == "docker" and not dry_run:
        _preload_docker_sdk()

    prepared = prepare(
        expert,
        config=config,
        env_path=env_path,
        env_names=env,
        runtime=runtime,
        provider=provider,
        model=model,
        flags=flags,
    )
    loaded, env_map, plan = prepared.loaded, prepared.env, prepared.plan
    rt = plan.runtime
    options = RunOptions(
        config=loaded.config,
        config_path=loaded.path,
        expert_key=expert,
        query=query,
        runtime=rt,
        provider=provider,
        model=model,
        temperature=temperature,
        reasoning_budget=_reasoning(reasoning_budget),
        max_steps=max_steps,
        max_retries=max_retries,
        timeout_ms=timeout,
        job_id=job_id,
        continue_latest=continue_,
        continue_job=continue_job,
        resume_from=resume_from,
        interactive_result=interactive,
        verbose=verbose,
        env=env_map,
        env_names=tuple(env or ()),
        workspace=ws,
        jobs_dir=Path.cwd() / "perstack" / "jobs",
        plan=plan,
        steering=prepared.steering,
    )
    if plan.unknown_delegates:
        abort(
            f"{loaded.path}: Expert {expert!r} delegates to unknown local Experts: "
            + ", ".join(plan.unknown_delegates)
        )
    if dry_run:
        print(
            json.dumps(
                {
                    "runtime": rt,
                    "expert": expert,
                    "query": query,
                    "provider": plan.provider,
                    "model": plan.model,
                    "workspace": str(ws),
                    "plan": plan.model_dump(mode="json", by_alias=True),
                },
                indent=2,
            )
        )
        return
    # The native runtime needs the plan's variables here; the docker executor checks the same way
    # (`EnvPlan.values`, before building), and each CLI runtime checks its own credentials.
    if rt == "perstack":
        plan.env.values(env_map)
    if rt == "docker":
        check_accepted_policy(
            prepared, expert, flags=flags, env_path=env_path, env_names=env, accept=accept_policy
        )
    from sandbox.events import JsonlWriter
    from sandbox.runtimes import run_with_runtime

    from ._ending import EndingWatch

    # One dispatch for every runtime: the registry (sandbox.runtimes) that `runtimes`/`compare` use too.
    watch = EndingWatch(JsonlWriter(sys.stdout))
    code = run_with_runtime(options, watch)
    why = watch.line(code)
    if why is not None:
        err(why)
    raise typer.Exit(code)


start_command = run_command
