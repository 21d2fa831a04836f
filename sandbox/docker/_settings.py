"""What a docker run is set up with beyond the plan: the executor's knobs, who the Expert runs as, and what
of the workspace it must not see.

One module because a run, `sandbox warm` and the standby key all need the same answers: a standby made
with other answers than a run would use must never match that run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sandbox.options import RunOptions

from ._build import SkillsCache
from ._standby import StandbyPool
from ._user import resolve_user

__all__ = ["GC_GRACE_S", "DockerSettings", "Hidden", "expert_user", "hidden_paths"]

GC_GRACE_S = 600  # how long after its wall-clock guard a dead run's objects are certainly garbage


@dataclass(frozen=True)
class DockerSettings:
    """Executor knobs that are not Perstack options (tests and embedders set them; the CLI uses defaults).

    **Parameters:**

    * `uid`/`gid`: who the Expert runs as (default: the invoking user, `SANDBOX_USER=uid:gid` in the env map;
      as root: the workspace's owner, or root only with SANDBOX_USER in the process environment, `_user`).
    * `wall_clock_s`: overall guard for the container (default `timeout x maxSteps`, as the reference).
    * `stop_grace_s`: after SIGINT/SIGTERM/timeout, how long the Expert may take to write its last
      checkpoint before it is killed.
    * `exit_grace_s`: after the coordinator's terminal event, how long the container may take to exit before
      it is killed. The run is over and recorded by then; only the runtime's own shutdown (closing skill
      processes) is cut short, and the container is about to be removed anyway.
    * `install_signal_handlers`: False when not called from the main thread's CLI.
    * `temp_root`: where per-run temp dirs go (default: the system temp dir).
    * `skills_cache`: the host cache of skill versions (default under XDG_CACHE_HOME).
    * `collect_garbage`: reap dead runs' leftovers at start (in the background).
    * `stderr`: where human diagnostics go; `progress`: show build progress there.
    * `use_standby`: claim a matching standby sandbox made by `sandbox warm` (`_standby`) instead of creating
      the sandbox, when one exists; `standby_pool`: where their records are (default: the user's cache
      dir); `refill_standby`: after using one, start `sandbox warm` again in the background (as the
      standby's record says) so the pool stays full.
    * `nosuid_workspace`: when this process may mount (root), bind the workspace through a nosuid,nodev
      mount in the run dir (`_workspace_mount`); tests with a fake engine turn it off.
    """

    uid: int | None = None
    gid: int | None = None
    wall_clock_s: float | None = None
    stop_grace_s: float = 3.0
    exit_grace_s: float = 0.1
    install_signal_handlers: bool = True
    temp_root: Path | None = None
    skills_cache: SkillsCache | None = None
    collect_garbage: bool = True
    stderr: IO[str] | None = None
    progress: bool = True
    use_standby: bool = True
    standby_pool: StandbyPool | None = None
    refill_standby: bool = True
    nosuid_workspace: bool = True

    def pool(self, env: Mapping[str, str]) -> StandbyPool:
        """Where standby records are: the one set here, else the user's default."""
        return self.standby_pool or StandbyPool.default(env)


def expert_user(
    settings: DockerSettings, env: Mapping[str, str], workspace: Path | None = None
) -> tuple[int, int]:
    """Who the Expert runs as; never root unless root asked for it (`_user.resolve_user`)."""
    choice = resolve_user(settings.uid, settings.gid, env, workspace or Path.cwd())
    return choice.uid, choice.gid


@dataclass(frozen=True)
class Hidden:
    """What the Expert must not see of the workspace: container paths covered by an empty read-only tmpfs
    (`dirs`) or an empty read-only file (`files`). See `sandbox.steering`."""

    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def key(self) -> tuple[str, ...]:
        """Both lists as one, for the standby key: a standby hides exactly what a run would."""
        return (*self.dirs, *(f"file:{f}" for f in self.files))

    def host_dirs(self, workspace: Path) -> list[str]:
        """The hidden directories as host paths under `workspace` (which the Expert cannot write)."""
        return [str(workspace / d.removeprefix("/workspace/")) for d in self.dirs]


def hidden_paths(options: RunOptions) -> Hidden:
    """The steering files and directories inside the workspace, as container paths to cover.

    Always the job store: the host resumes from the checkpoints there, so the Expert must neither read other
    jobs nor forge one. It is created first so the engine does not create the mount point as root. Then what
    `options.steering` names (perstack.toml, env files, this tool's cache, the Docker client's config).
    """
    from sandbox.steering import SteeringPaths, mask_targets

    workspace, jobs = options.workspace.resolve(), options.jobs_dir.resolve()
    try:
        inside = bool(jobs.relative_to(workspace).parts)
    except ValueError:
        inside = False
    if inside:
        jobs.mkdir(parents=True, exist_ok=True)
    steering = options.steering
    store = jobs.parent
    steering = SteeringPaths(files=steering.files, dirs=(store, *(d for d in steering.dirs if d != store)))
    dirs, files = mask_targets(workspace, steering)
    return Hidden(dirs=dirs, files=files)
