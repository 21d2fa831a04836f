"""`sandbox audit EXPERT`: build the Expert's real sandbox and prove, from inside it, that it holds.

Runs without an LLM or a provider key. Takes the same sandbox options as `run` (so it audits the sandbox
`run` would start with them). Stdout: a table (probe, expected, observed, control, verdict) or, with
`--json`, one JSON object (`schema: sandbox-audit/1`). Exit 0 when every probe passes, 1 otherwise (a
failed guarantee, or a control that failed so the result proves nothing), 1 on errors.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ._common import env_files, explicit_choices, prepare, workspace_dir
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

__all__ = ["audit_command"]


@sandbox_flags
def audit_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    config: ConfigOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    flags: SandboxFlags = NO_FLAGS,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    no_resources: Annotated[
        bool, typer.Option("--no-resources", help="Skip the fork, memory and tmpfs bombs (faster).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=10, help="Seconds the probes may take.")] = 300,
    workspace: WorkspaceOpt = None,  # the one the run would use: its layout is probed
) -> None:
    """Probe the Expert's sandbox from inside: egress, filesystem, privilege, resources; exit 1 on any gap."""
    from sandbox.audit import AuditSettings, UserLayout, print_json, print_table, run_audit

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
    ws = workspace_dir(workspace)
    layout = UserLayout(
        workspace=ws,
        steering=prepared.steering,
        env_files=tuple(env_files(loaded, env_path)),
        config_source=loaded.source or str(loaded.path),
        explicit=explicit_choices(flags, env_path=env_path, env_names=env),
    )
    settings = AuditSettings(resources=not no_resources, timeout_s=timeout, layout=layout)
    report = run_audit(plan, loaded.config, env_map, settings=settings)
    if as_json:
        print_json(report, sys.stdout)
    else:
        print_table(report, sys.stdout)
    raise typer.Exit(0 if report.ok else 1)
