"""What every command shares: error printing, config loading, and the options that build a plan.

Stdout is for data (plans, events, tables); stderr for diagnostics. Errors are one line each, never a
traceback (set SANDBOX_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from sandbox.config import LoadedConfig
    from sandbox.plan import PlanInputs

__all__ = [
    "ConfigOpt",
    "EnvNameOpt",
    "EnvPathOpt",
    "abort",
    "err",
    "host_env",
    "load",
    "plan_inputs",
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


def host_env(loaded: LoadedConfig, env_paths: list[str] | None) -> dict[str, str]:
    """The private environment map: the process environment overlaid by env files (never os.environ)."""
    from sandbox.config import DEFAULT_ENV_PATH, load_env_files

    paths = env_paths or list(loaded.config.env_path or DEFAULT_ENV_PATH)
    env = dict(os.environ)
    env.update(load_env_files(paths, Path.cwd()))
    return env


def plan_inputs(
    expert: str,
    env: Mapping[str, str],
    *,
    runtime: str = "perstack",
    provider: str | None = None,
    model: str | None = None,
    env_names: list[str] | None = None,
    base_image: str | None = None,
    node_image: str | None = None,
    ca_cert: str | None = None,
    allow_private: list[str] | None = None,
    add_host: list[str] | None = None,
    memory: str | None = None,
    cpus: float | None = None,
    pids: int | None = None,
) -> PlanInputs:
    from sandbox.config import validate_env_name
    from sandbox.plan import PlanInputs

    names = []
    for name in env_names or []:
        try:
            validate_env_name(name)
        except ValueError as exc:
            abort(f"--env {name!r}: {exc}")
        names.append(name)
    return PlanInputs(
        expert_key=expert,
        runtime=runtime,
        provider=provider,
        model=model,
        env=env,
        extra_env=tuple(names),
        base_image=base_image,
        node_image=node_image,
        ca_cert=ca_cert,
        memory=memory,
        cpus=cpus,
        pids=pids,
        allow_private=tuple(allow_private or ()),
        add_hosts=tuple(add_host or ()),
    )
