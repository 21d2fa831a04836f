"""What every command shares: error printing, config loading, and the options that build a plan.

Stdout is for data (plans, events, tables); stderr for diagnostics. Errors are one line each, never a
traceback (set SANDBOX_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from sandbox.config import LoadedConfig
    from sandbox.plan import SandboxPlan

__all__ = [
    "ConfigOpt",
    "EnvNameOpt",
    "EnvPathOpt",
    "Prepared",
    "SandboxFlags",
    "abort",
    "err",
    "host_env",
    "load",
    "prepare",
]


def err(message: str) -> None:
    """One diagnostic line on stderr."""
    print(message, file=sys.stderr, flush=True)


def abort(message: str, code: int = 1) -> NoReturn:
    """Print `message` to stderr and exit with `code`."""
    err(message)
    raise typer.Exit(code)


ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="Path to perstack.toml (default: search upward from cwd).")
]
EnvPathOpt = Annotated[
    list[str] | None,
    typer.Option("--env-path", help="Env file(s) to read into a private map (default: .env, .env.local)."),
]
EnvNameOpt = Annotated[
    list[str] | None,
    typer.Option("--env", help="Pass this environment variable into the sandbox (repeatable)."),
]


def load(config: str | None) -> LoadedConfig:
    """Load perstack.toml, printing warnings; a ConfigError propagates to main() which prints it."""
    from sandbox.config import load_config

    loaded = load_config(config, cwd=Path.cwd())
    for warning in loaded.warnings:
        err(f"warning: {warning}")
    return loaded


def with_registry_experts(loaded: LoadedConfig, expert: str, env: Mapping[str, str]) -> LoadedConfig:
    """`loaded` with the registry Experts `expert` reaches added (`sandbox.registry`); what could not be
    fetched is a warning here, and the planner reports those delegates as unresolved."""
    from sandbox.config import is_registry_key

    reachable = [expert, *(d for e in loaded.config.experts.values() for d in e.delegates)]
    if not any(is_registry_key(k) and k not in loaded.config.experts for k in reachable):
        return loaded  # nothing to fetch: no registry import, no network
    from sandbox.registry import resolve_registry_experts

    resolution = resolve_registry_experts(loaded.config, expert, env)
    for problem in resolution.problems:
        err(f"warning: {problem}")
    return replace(loaded, config=resolution.config) if resolution.fetched else loaded


def host_env(loaded: LoadedConfig, env_paths: list[str] | None) -> dict[str, str]:
    """The private environment map: the process environment overlaid by env files (never os.environ)."""
    from sandbox.config import DEFAULT_ENV_PATH, load_env_files

    paths = env_paths or list(loaded.config.env_path or DEFAULT_ENV_PATH)
    env = dict(os.environ)
    env.update(load_env_files(paths, Path.cwd()))
    return env


@dataclass(frozen=True)
class SandboxFlags:
    """The sandbox-shaping flags every planning command takes (see `_sandbox_opts`)."""

    base_image: str | None = None
    node_image: str | None = None
    ca_cert: str | None = None
    allow_private: list[str] | None = None
    add_host: list[str] | None = None
    memory: str | None = None
    cpus: float | None = None
    pids: int | None = None
    workspace_quota: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A loaded config, the private env map built from it, and the plan for one Expert."""

    loaded: LoadedConfig
    env: dict[str, str]
    plan: SandboxPlan


def prepare(
    expert: str,
    *,
    config: str | None,
    env_path: list[str] | None,
    env_names: list[str] | None,
    runtime: str | None,
    provider: str | None,
    model: str | None,
    flags: SandboxFlags,
) -> Prepared:
    """Load perstack.toml, build the private env map and compute the plan: the first steps of every command.

    `runtime` is the `--runtime` flag (None: the file's, else `perstack`); commands that always mean the
    docker sandbox pass "docker".
    """
    from sandbox.config import validate_env_name
    from sandbox.plan import PlanInputs, compute_plan

    from ._runtime_name import resolve_runtime

    loaded = load(config)
    env = host_env(loaded, env_path)
    loaded = with_registry_experts(loaded, expert, env)
    names = []
    for name in env_names or []:
        try:
            validate_env_name(name)
        except ValueError as exc:
            abort(f"--env {name!r}: {exc}")
        names.append(name)
    inputs = PlanInputs(
        expert_key=expert,
        runtime=resolve_runtime(runtime, loaded.config.runtime),
        provider=provider,
        model=model,
        env=env,
        extra_env=tuple(names),
        base_image=flags.base_image,
        node_image=flags.node_image,
        ca_cert=flags.ca_cert,
        memory=flags.memory,
        cpus=flags.cpus,
        pids=flags.pids,
        workspace_quota=flags.workspace_quota,
        allow_private=tuple(flags.allow_private or ()),
        add_hosts=tuple(flags.add_host or ()),
    )
    return Prepared(loaded=loaded, env=env, plan=compute_plan(loaded.config, inputs))
