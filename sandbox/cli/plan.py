"""`sandbox plan EXPERT`: what an Expert would be allowed to do, before anything runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import prepare, widened_since_accepted
from ._options import (
    NO_FLAGS,
    ConfigOpt,
    EnvNameOpt,
    EnvPathOpt,
    ModelOpt,
    ProviderOpt,
    SandboxFlags,
    sandbox_flags,
)

if TYPE_CHECKING:
    from sandbox.resolve import ResolvedSandbox

__all__ = ["plan_command"]


@sandbox_flags
def plan_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    runtime: Annotated[str | None, typer.Option("--runtime", help="Runtime to plan for.")] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    flags: SandboxFlags = NO_FLAGS,
) -> None:
    """Show the sandbox plan: images, packages, allowlist, environment names, limits."""
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
    loaded = prepared.loaded
    wider, _ = widened_since_accepted(prepared, expert, flags=flags, env_path=env_path, env_names=env)
    # What render, build, run and audit use (`sandbox.resolve`): the image tags hash the CA bundle's bytes,
    # and what may be reached is read off the proxy policy the run writes.
    resolved = prepared.resolved
    data = resolved.to_json()
    data["configPath"] = str(loaded.path)
    # What a docker run would refuse until `--accept-policy` (None: no run accepted yet).
    data["widenedSinceAccepted"] = wider
    if as_json:
        print(json.dumps(data, indent=2))
        return
    _print_table(resolved, str(loaded.path))
    if wider:
        typer.echo(
            "widened since the last docker run you accepted (a run needs --accept-policy): "
            + ", ".join(wider)
        )


def _print_table(resolved: ResolvedSandbox, config_path: str) -> None:
    """A readable summary: what an untrusted Expert would be allowed to reach and see."""
    from rich.console import Console
    from rich.table import Table

    def lines(values: Sequence[str]) -> str:
        return "\n".join(values) or "(none)"

    plan, image = resolved.plan, resolved.expert_image
    console = Console()
    table = Table(title=f"Sandbox plan for {plan.expert}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("config", config_path)
    table.add_row("experts", lines(plan.experts))
    if plan.registry_delegates:
        table.add_row("registry delegates", lines(plan.registry_delegates))
    if plan.unknown_delegates:
        table.add_row("[red]unknown delegates[/red]", lines(plan.unknown_delegates))
    table.add_row("runtime", f"{plan.runtime}  (provider {plan.provider}, model {plan.model})")
    table.add_row("image", f"{image}  (from {plan.base_image})")
    table.add_row("language runtimes", lines(plan.runtimes))
    table.add_row("npm packages", lines(plan.packages.npm))
    table.add_row("PyPI packages", lines(plan.packages.pypi))
    # Every destination the proxy opens: the allowlist (HTTPS on 443) and the private opt-ins (HTTPS and
    # plain HTTP to exactly that name and port), with the address `--add-host` gives a name.
    reach = [d.describe() for d in resolved.destinations]
    table.add_row("may reach", lines(reach) if reach else "nothing: no network at all")
    table.add_row("private hosts opened", lines(plan.network.allow_private))
    table.add_row("proxy host overrides", lines(plan.network.add_hosts))
    table.add_row("env passed (required)", lines(plan.env.required))
    table.add_row("env passed (optional)", lines(plan.env.optional))
    if plan.env.missing:
        table.add_row("[red]env missing[/red]", lines(plan.env.missing))
    limits = plan.limits
    table.add_row(
        "limits",
        f"memory {limits.memory}, cpus {limits.cpus}, pids {limits.pids}, tmpfs {limits.tmpfs_size}, "
        f"workspace quota {limits.workspace_quota}",
    )
    table.add_row("ca bundle", plan.ca_cert or "(none)")
    console.print(table)
    for w in plan.warnings:
        console.print(f"[yellow]note:[/yellow] {w}", highlight=False)
