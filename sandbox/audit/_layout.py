"""The user's real workspace layout, replicated in the audit's scratch workspace, and the host-side checks.

Why a replica and not the real workspace: the steering probes try exactly what the red-team did (read the
key's `.env`, write perstack.toml, create a missing `.env.local`), and a probe must never change the user's
files, not even when the sandbox fails. So every steering path that lies inside the real workspace
(`sandbox.steering`: perstack.toml and the places discovery looks, the env files, `.env*`, the CA bundle, the
job store and this tool's state) is recreated at the same relative path in the scratch workspace, each
existing file holding the audit's marker instead of its content, each absent one absent. The masks are
computed for the replica by the same function a run uses, and the audit checks they are the masks the real
workspace gets (`fs.steering-masked`'s control), so what is probed is the user's layout.

After the probes the host undoes what they did to the replica with the same `Snapshot` a run uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig
    from sandbox.plan import SandboxPlan

from sandbox.accepted import Explicit
from sandbox.steering import Snapshot, SteeringPaths, container_path, mask_targets

__all__ = ["Replica", "UserLayout", "build_replica", "host_checks", "settle_replica"]


@dataclass(frozen=True)
class UserLayout:
    """Where the user's run would be: its workspace, the steering paths `sandbox run` would protect, the env
    files in effect, the config's source (for the accepted policy) and what the command line chose."""

    workspace: Path
    steering: SteeringPaths = field(default_factory=SteeringPaths)
    env_files: tuple[str, ...] = ()
    config_source: str = ""
    explicit: Explicit = field(default_factory=Explicit)


@dataclass
class Replica:
    """The scratch workspace's masks, the real workspace's, and what the probes may create."""

    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    real_dirs: tuple[str, ...] = ()
    real_files: tuple[str, ...] = ()
    creatable: tuple[str, ...] = ()
    control_read: str = ""
    control_create: str = ""
    snapshot: Snapshot | None = None
    host_control_create: Path | None = None
    steering: SteeringPaths = field(default_factory=SteeringPaths)


def _rel(path: Path, root: Path) -> Path | None:
    try:
        return Path(os.path.normpath(path.absolute())).relative_to(root)
    except ValueError:
        return None


def build_replica(
    scratch: Path, real: Path, steering: SteeringPaths, marker: str, owner: tuple[int, int] | None
) -> Replica:
    """Recreate in `scratch` the steering paths of `real` (see the module docstring); `owner` chowns what is
    made when the audit runs as root for another user."""
    real = real.resolve()
    scratch_files: list[Path] = []
    scratch_dirs: list[Path] = []
    made: list[Path] = []
    inside = steering.inside(real)
    store = steering.dirs[0] if steering.dirs else None  # the job store: a run creates it first
    for path in inside.files:
        rel = _rel(path, real)
        if rel is None or not rel.parts:
            continue
        copy = scratch / rel
        scratch_files.append(copy)
        if path.is_symlink():
            target = os.readlink(path)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if not copy.exists():
                copy.symlink_to(target)
        elif path.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(f"{marker}\n")
            made.append(copy)
        elif path.parent.is_dir():
            copy.parent.mkdir(parents=True, exist_ok=True)  # absent, but creatable where the real one is
    for path in inside.dirs:
        rel = _rel(path.resolve(), real)
        if rel is None or not rel.parts:
            continue
        copy = scratch / rel
        scratch_dirs.append(copy)
        if path.is_dir() or path == store:
            copy.mkdir(parents=True, exist_ok=True)
    control = scratch / f"audit-control-{marker}.txt"
    control.write_text(f"{marker}\n")
    made.append(control)
    replica_steering = SteeringPaths(files=tuple(scratch_files), dirs=tuple(scratch_dirs))
    dirs, files = mask_targets(scratch, replica_steering)
    real_dirs, real_files = mask_targets(real, steering)
    creatable = tuple(
        container_path(scratch, p) for p in scratch_files if not os.path.lexists(p) and p.parent.is_dir()
    )
    if owner is not None:
        for root, dnames, fnames in os.walk(scratch):
            for name in [*dnames, *fnames]:
                os.lchown(Path(root) / name, *owner)
        os.chown(scratch, *owner)
    snapshot = Snapshot.take(scratch, replica_steering)
    created = scratch / f"audit-created-{marker}.txt"
    return Replica(
        dirs=dirs,
        files=files,
        real_dirs=real_dirs,
        real_files=real_files,
        creatable=creatable,
        control_read=container_path(scratch, control),
        control_create=container_path(scratch, created),
        snapshot=snapshot,
        host_control_create=created,
        steering=replica_steering,
    )


def settle_replica(replica: Replica, quarantine: Path) -> dict[str, Any]:
    """Undo the probes' changes to the replica as a run would; what was undone and what is left, as JSON."""
    assert replica.snapshot is not None
    changes = replica.snapshot.settle(quarantine)
    root = replica.snapshot.workspace
    left = [c for c in replica.creatable if os.path.lexists(root / c.removeprefix("/workspace/"))]
    return {
        "undone": sorted(f"/workspace/{c.path.relative_to(root).as_posix()}" for c in changes),
        "left": left,
        "control_kept": replica.host_control_create is not None and replica.host_control_create.is_file(),
    }


def host_checks(
    plan: SandboxPlan, config: PerstackConfig, layout: UserLayout, run_dir: Path
) -> dict[str, Any]:
    """Host-side evidence for `config.env-host-vars`, `config.accepted-policy`, `runtime.registry-default`."""
    import dataclasses

    from sandbox.accepted import Policy, PolicyStore, widenings
    from sandbox.plan import default_runtime

    policy = Policy.of(plan, env_files=layout.env_files)
    old = (
        PolicyStore.default(os.environ).get(layout.config_source, plan.expert)
        if layout.config_source
        else None
    )
    wider = widenings(old, policy, layout.explicit) if old is not None else []
    synthetic = dataclasses.replace(
        policy,
        domains=policy.domains | {"audit-widening.sandbox-audit.test"},
        env_names=policy.env_names | {"AUDIT_WIDENING_TOKEN"},
        allow_private=policy.allow_private | {"audit-widening.sandbox-audit.test:22"},
    )
    runtime, _ = default_runtime(config, plan.expert)
    probe_key = "@sandbox-audit/registry-probe"
    experts = dict(config.experts)
    root = experts[plan.expert]
    experts[plan.expert] = root.model_copy(update={"delegates": [*root.delegates, probe_key]})
    selftest, _ = default_runtime(
        config.model_copy(update={"experts": experts, "runtime": "perstack"}), plan.expert
    )
    from sandbox.plan import reaches_registry_expert

    cwd = Path.cwd()
    env_paths = {(cwd / e if not Path(e).is_absolute() else Path(e)): True for e in layout.env_files}
    return {
        "env_filter": _env_filter_check(run_dir, {p: p.is_file() for p in env_paths}),
        "policy": {"recorded": old is not None, "wider": wider, "selftest": widenings(policy, synthetic)},
        "registry_default": {
            "registry": reaches_registry_expert(config, plan.expert),
            "runtime": runtime,
            "selftest": selftest,
        },
    }


def _env_filter_check(run_dir: Path, env_files: Mapping[Path, bool]) -> dict[str, Any]:
    """Whether variables that steer the host are skipped in env files (the synthetic file), with a control
    variable that must still load, and which such names the user's real env files (`env_files`) hold."""
    from sandbox._errors import ConfigError, ConfigIssue
    from sandbox.config import is_host_only, load_env_files

    probe = run_dir / "audit-host-vars.env"
    probe.write_text(
        "DOCKER_HOST=tcp://203.0.113.1:2375\nSANDBOX_USER=0:0\nXDG_CACHE_HOME=/tmp/x\nHTTPS_PROXY=http://x\n"
        "AUDIT_CONTROL_VALUE=1\n"
    )
    warnings: list[ConfigIssue] = []
    loaded = load_env_files([str(probe)], run_dir, warnings=warnings)
    real: list[str] = []
    for path in (p for p, exists in env_files.items() if exists):
        found: list[ConfigIssue] = []
        try:
            load_env_files([str(path)], path.parent, warnings=found)
        except ConfigError:
            continue
        real.extend(f"{path.name}: {w.path.strip('`')}" for w in found if is_host_only(w.path.strip("`")))
    return {"loaded": sorted(loaded), "skipped": len(warnings), "real_skipped": real}
