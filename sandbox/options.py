"""The resolved options of one `sandbox run` / `start`: what the CLI parsed, before any runtime sees it.

Why a separate module: the CLI, the native runtime, the docker executor and the CLI adapters all take the
same options. Each receives this one frozen object instead of a long argument list, and none of them reads
`sys.argv`, `os.environ` or perstack.toml on its own: `env` is the private map built from the host
environment plus the env files (never written back into `os.environ`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.config import PerstackConfig
from sandbox.plan import SandboxPlan
from sandbox.steering import SteeringPaths

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """Everything a runtime needs to run one Expert once.

    `query` is None when resuming with `interactive_result`. `job_id` is the job to create (`--job-id`);
    `continue_latest`, `continue_job` and `resume_from` select a checkpoint to resume (Perstack semantics).
    `jobs_dir` is where `perstack/jobs` lives (the current directory's, as in Perstack). `plan` is the
    sandbox plan the CLI computed with every sandbox flag (images, CA bundle, limits, private opt-ins); the
    docker runtime runs exactly that plan instead of recomputing one without those flags. `steering`: the
    host files this run's set-up was read from (`sandbox.steering`), which the sandbox must not reach.
    """

    config: PerstackConfig
    config_path: Path
    expert_key: str
    query: str | None
    runtime: str = "perstack"
    provider: str | None = None
    model: str | None = None
    temperature: float | None = None
    reasoning_budget: str | int | None = None
    max_steps: int | None = None
    max_retries: int | None = None
    timeout_ms: int | None = None
    job_id: str | None = None
    continue_latest: bool = False
    continue_job: str | None = None
    resume_from: str | None = None
    interactive_result: str | None = None
    verbose: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    env_names: tuple[str, ...] = ()
    workspace: Path = field(default_factory=Path.cwd)
    jobs_dir: Path = field(default_factory=lambda: Path.cwd() / "perstack" / "jobs")
    plan: SandboxPlan | None = None
    steering: SteeringPaths = field(default_factory=SteeringPaths)
