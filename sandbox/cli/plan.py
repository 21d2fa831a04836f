"""`sandbox plan EXPERT`: what an Expert would be allowed to do, before anything runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ._common import ConfigOpt, EnvNameOpt, EnvPathOpt, host_env, load, plan_inputs
from ._sandbox_opts import (
    AddHostOpt,
    AllowPrivateOpt,
    BaseImageOpt,
    CaCertOpt,
    CpusOpt,
    MemoryOpt,
    NodeImageOpt,
    PidsOpt,
)

__all__ = ["plan_command"]


def plan_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    runtime: Annotated[str | None, typer.Option("--runtime", help="Runtime to plan for.")] = None,
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
) -> None:
    """Show the sandbox plan: images, packages, allowlist, environment names, limits."""
    from sandbox.plan import compute_plan
    from sandbox.render import RunSite, render_context

    from ._runtime_name import resolve_runtime

    loaded = load(config)
    env_map = host_env(loaded, env_path)
    inputs = plan_inputs(
        expert, env_map, runtime=resolve_runtime(runtime, loaded.config.runtime), provider=provider,
        model=model, env_names=env, base_image=base_image, node_image=node_image, ca_cert=ca_cert,
        allow_private=allow_private, add_host=add_host, memory=memory, cpus=cpus, pids=pids,
    )
    plan = compute_plan(loaded.config, inputs)
    ctx = render_context(plan, loaded.config, RunSite(project="sandbox-plan", workspace=loaded.base_dir))
    data = plan.model_dump(mode="json", by_alias=True)
    data["image"] = ctx.expert_image
    data["proxyImage"] = ctx.proxy_image
    data["configPath"] = str(loaded.path)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    _print_table(data)


def _print_table(data: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Sandbox plan for {data['expert']}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")

    def lines(value: object) -> str:
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value) or "(none)"
        return str(value)

    env = data["env"]
    assert isinstance(env, dict)
    packages = data["packages"]
    assert isinstance(packages, dict)
    network = data["network"]
    assert isinstance(network, dict)
    sources = data["domainSources"]
    assert isinstance(sources, dict)
    table.add_row("config", str(data["configPath"]))
    table.add_row("experts", lines(data["experts"]))
    if data["registryDelegates"]:
        table.add_row("registry delegates", lines(data["registryDelegates"]))
    table.add_row("runtime", f"{data['runtime']}  (provider {data['provider']}, model {data['model']})")
    table.add_row("image", f"{data['image']}  (from {data['baseImage']})")
    table.add_row("language runtimes", lines(data["runtimes"]))
    table.add_row("npm packages", lines(packages["npm"]))
    table.add_row("PyPI packages", lines(packages["pypi"]))
    allow = [f"{d}  <- {', '.join(sources.get(d.lstrip('.'), sources.get('*.' + d.lstrip('.'), [])))}"
             for d in data["allowedDomains"]]  # type: ignore[attr-defined]
    table.add_row("may reach (443 only)", lines(allow) if allow else "nothing: no network at all")
    table.add_row("private hosts opened", lines(network["allowPrivate"]))
    table.add_row("proxy host overrides", lines(network["addHosts"]))
    table.add_row("env passed (required)", lines(env["required"]))
    table.add_row("env passed (optional)", lines(env["optional"]))
    if env["missing"]:
        table.add_row("[red]env missing[/red]", lines(env["missing"]))
    limits = data["limits"]
    assert isinstance(limits, dict)
    table.add_row("limits", f"memory {limits['memory']}, cpus {limits['cpus']}, pids {limits['pids']}, "
                            f"tmpfs {limits['tmpfsSize']}")
    table.add_row("ca bundle", str(data["caCert"] or "(none)"))
    console.print(table)
    for w in data["warnings"]:  # type: ignore[attr-defined]
        console.print(f"[yellow]note:[/yellow] {w}", highlight=False)
