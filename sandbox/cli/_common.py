"""What every command shares: error printing, config loading, and the steps that build a plan from the
parsed options (the options themselves are declared in `_options`).

Stdout is for data (plans, events, tables); stderr for diagnostics. Errors are one line each, never a
traceback (set SANDBOX_DEBUG=1 to see one).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from sandbox.accepted import Explicit
    from sandbox.config import LoadedConfig
    from sandbox.plan import SandboxPlan
    from sandbox.resolve import ResolvedSandbox
    from sandbox.steering import SteeringPaths

    from ._options import SandboxFlags

__all__ = [
    "Prepared",
    "abort",
    "check_accepted_policy",
    "env_files",
    "err",
    "explicit_choices",
    "host_env",
    "load",
    "prepare",
    "steering_for",
    "widened_since_accepted",
    "workspace_dir",
]


def err(message: str) -> None:
    """One diagnostic line on stderr."""
    print(message, file=sys.stderr, flush=True)


def abort(message: str, code: int = 1) -> NoReturn:
    """Print `message` to stderr and exit with `code`."""
    err(message)
    raise typer.Exit(code)


def load(config: str | None) -> LoadedConfig:
    """Load perstack.toml, printing warnings; a ConfigError propagates to main() which prints it.

    First, what sandboxed runs in a related workspace left behind (`sandbox.steering_guard`): before any
    steering file is read, a live run's changes refuse the command and a killed run's are dealt with.
    """
    from sandbox.config import load_config
    from sandbox.steering_guard import check_records

    for line in check_records(Path.cwd(), os.environ):
        err(line)
    loaded = load_config(config, cwd=Path.cwd())
    for warning in loaded.warnings:
        err(f"warning: {warning}")
    return loaded


def workspace_dir(workspace: Path | None) -> Path:
    """The `--workspace` in effect, resolved: the directory given, else the cwd; not a directory is an
    error here, before anything is planned or started."""
    ws = (workspace or Path.cwd()).resolve()
    if not ws.is_dir():
        abort(f"--workspace {ws}: not a directory")
    return ws


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


def env_files(loaded: LoadedConfig, env_paths: list[str] | None) -> list[str]:
    """The env files in effect: `--env-path`, else the config's `envPath`, else `.env`, `.env.local`."""
    from sandbox.config import DEFAULT_ENV_PATH

    return list(env_paths or loaded.config.env_path or DEFAULT_ENV_PATH)


def host_env(loaded: LoadedConfig, env_paths: list[str] | None) -> dict[str, str]:
    """The private environment map: the process environment overlaid by env files (never os.environ)."""
    from sandbox._errors import ConfigIssue
    from sandbox.config import load_env_files

    env = dict(os.environ)
    warnings: list[ConfigIssue] = []
    env.update(load_env_files(env_files(loaded, env_paths), Path.cwd(), warnings=warnings))
    for warning in warnings:
        err(f"warning: {warning}")
    return env


@dataclass(frozen=True)
class Prepared:
    """A loaded config, the private env map built from it, the plan for one Expert, and the host files all
    of that was read from (which no sandbox may reach, `sandbox.steering`)."""

    loaded: LoadedConfig
    env: dict[str, str]
    plan: SandboxPlan
    steering: SteeringPaths

    @functools.cached_property
    def resolved(self) -> ResolvedSandbox:
        """The sandbox this plan is (CA bundle, image tags, destinations; `sandbox.resolve`), resolved on
        first use: `plan`, `render` and `build` show and use this one, and a docker run resolves the same
        plan the same way. Lazy, because a run on another runtime needs none of it."""
        from sandbox.resolve import resolve_sandbox

        return resolve_sandbox(self.loaded.config, self.plan)


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
    from sandbox.plan import PlanInputs, compute_plan, default_runtime

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
    if runtime is None:
        default, overridden = default_runtime(loaded.config, expert)
        chosen = resolve_runtime(default, None)
        if overridden is not None:
            err(
                f"note: {expert!r} runs a registry Expert, so it runs in the docker sandbox, not on "
                f"{overridden!r} (pass --runtime {overridden} to run it outside the sandbox)"
            )
    else:
        chosen = resolve_runtime(runtime, None)
    inputs = PlanInputs(
        expert_key=expert,
        runtime=chosen,
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
    plan = compute_plan(loaded.config, inputs)
    steering = steering_for(loaded, env_path, env, plan.ca_cert)
    return Prepared(loaded=loaded, env=env, plan=plan, steering=steering)


def steering_for(
    loaded: LoadedConfig, env_path: list[str] | None, env: Mapping[str, str], ca_cert: str | None
) -> SteeringPaths:
    """The host files and directories this command's set-up is read from (`sandbox.steering`)."""
    from sandbox.steering import steering_paths

    return steering_paths(
        cwd=Path.cwd(),
        config_file=None if loaded.remote else loaded.path,
        env_files=env_files(loaded, env_path),
        ca_cert=ca_cert,
        jobs_dir=Path.cwd() / "perstack" / "jobs",
        env=env,
    )


def widened_since_accepted(
    prepared: Prepared,
    expert: str,
    *,
    flags: SandboxFlags,
    env_path: list[str] | None,
    env_names: list[str] | None,
) -> tuple[list[str] | None, Callable[[], None]]:
    """(what the plan widens compared with the last accepted docker run, or None when none was recorded;
    a function that records the plan as accepted). See `sandbox.accepted`."""
    from sandbox.accepted import Policy, PolicyStore, widenings

    loaded, plan = prepared.loaded, prepared.plan
    policy = Policy.of(plan, env_files=env_files(loaded, env_path), extra_env=env_names or ())
    store = PolicyStore.default(os.environ)
    source = loaded.source or str(loaded.path)
    old = store.get(source, expert)
    explicit = explicit_choices(flags, env_path=env_path, env_names=env_names)

    def record() -> None:
        try:
            store.put(source, expert, policy)
        except OSError as exc:
            reason = exc.strerror or exc
            err(f"warning: cannot record the accepted sandbox policy in {store.directory}: {reason}")

    return (None if old is None else widenings(old, policy, explicit)), record


def explicit_choices(
    flags: SandboxFlags, *, env_path: list[str] | None, env_names: list[str] | None
) -> Explicit:
    """What this command line asked for itself, which a widening check does not hold against
    perstack.toml (`sandbox.accepted.Explicit`): the one reading of the flags `run`, `plan` and `audit`
    share."""
    from sandbox.accepted import Explicit

    return Explicit(
        allow_private=frozenset(flags.allow_private or ()),
        add_hosts=frozenset(flags.add_host or ()),
        env_names=frozenset(env_names or ()),
        env_files=frozenset(env_path or ()),
        base_image=flags.base_image is not None,
        node_image=flags.node_image is not None,
        ca_cert=flags.ca_cert is not None,
    )


def check_accepted_policy(
    prepared: Prepared,
    expert: str,
    *,
    flags: SandboxFlags,
    env_path: list[str] | None,
    env_names: list[str] | None,
    accept: bool,
) -> None:
    """Refuse a docker run whose perstack.toml widened the sandbox since the last accepted run
    (`sandbox.accepted`); record the policy when it did not, or when `--accept-policy` accepts it."""
    wider, record = widened_since_accepted(
        prepared, expert, flags=flags, env_path=env_path, env_names=env_names
    )
    if wider and not accept:
        loaded = prepared.loaded
        abort(
            f"{loaded.source or loaded.path}: the sandbox of Expert {expert!r} is wider than in the last "
            f"run you accepted: {', '.join(wider)}; review it with `sandbox plan {expert}`, then rerun "
            "with --accept-policy"
        )
    record()
