"""`sandbox audit EXPERT`: build the Expert's real sandbox and prove, from inside it, that it holds.

Runs without an LLM or a provider key. Takes the same sandbox options as `run` (so it audits the sandbox
`run` would start with them). Stdout: a table (probe, expected, observed, control, verdict) or, with
`--json`, one JSON object (`schema: sandbox-audit/1`). Exit 0 when every probe passes, 1 otherwise (a
failed guarantee, or a control that failed so the result proves nothing), 1 on errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._common import ConfigOpt, EnvNameOpt, EnvPathOpt, SandboxFlags, abort, env_files, prepare
from ._sandbox_opts import (
    AddHostOpt,
    AllowPrivateOpt,
    BaseImageOpt,
    CaCertOpt,
    CpusOpt,
    MemoryOpt,
    NodeImageOpt,
    PidsOpt,
    WorkspaceQuotaOpt,
)

__all__ = ["audit_command"]


def audit_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    config: ConfigOpt = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Provider (overrides the file).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model (overrides the file).")] = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    base_image: BaseImageOpt = None,
    node_image: NodeImageOpt = None,
    ca_cert: CaCertOpt = None,
    allow_private: AllowPrivateOpt = None,
    add_host: AddHostOpt = None,
    memory: MemoryOpt = None,
    cpus: CpusOpt = None,
    pids: PidsOpt = None,
    workspace_quota: WorkspaceQuotaOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    no_resources: Annotated[
        bool, typer.Option("--no-resources", help="Skip the fork, memory and tmpfs bombs (faster).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=10, help="Seconds the probes may take.")] = 300,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="The workspace run would use (default: cwd); its layout is probed."),
    ] = None,
) -> None:
    """Probe the Expert's sandbox from inside: egress, filesystem, privilege, resources; exit 1 on any gap."""
    from sandbox.accepted import Explicit
    from sandbox.audit import AuditSettings, UserLayout, print_json, print_table, run_audit

    prepared = prepare(
        expert,
        config=config,
        env_path=env_path,
        env_names=env,
        runtime="docker",
        provider=provider,
        model=model,
        flags=SandboxFlags(
            base_image, node_image, ca_cert, allow_private, add_host, memory, cpus, pids, workspace_quota
        ),
    )
    loaded, env_map, plan = prepared.loaded, prepared.env, prepared.plan
    ws = (workspace or Path.cwd()).resolve()
    if not ws.is_dir():
        abort(f"--workspace {ws}: not a directory")
    layout = UserLayout(
        workspace=ws,
        steering=prepared.steering,
        env_files=tuple(env_files(loaded, env_path)),
        config_source=loaded.source or str(loaded.path),
        explicit=Explicit(
            allow_private=frozenset(allow_private or ()),
            add_hosts=frozenset(add_host or ()),
            env_names=frozenset(env or ()),
            env_files=frozenset(env_path or ()),
            base_image=base_image is not None,
            node_image=node_image is not None,
            ca_cert=ca_cert is not None,
        ),
    )
    settings = AuditSettings(resources=not no_resources, timeout_s=timeout, layout=layout)
    report = run_audit(plan, loaded.config, env_map, settings=settings)
    if as_json:
        print_json(report, sys.stdout)
    else:
        print_table(report, sys.stdout)
    raise typer.Exit(0 if report.ok else 1)
