"""Helpers for executor unit tests: a config, a plan, options, and fake Expert programs for `FakeBackend`.

A fake Expert program plays the container side of the contract: it reads the stdin payload (the run the
host resolved, `sandbox.request.WirePayload`), and prints Perstack events (built with `sandbox.events`) on
stdout, signed with the payload's event key as the runtime signs them (`FakeProcess.event`), so the host
side (pump, job store, exit codes, teardown) runs for real against an in-memory engine.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox import events as ev
from sandbox.config import parse_config_text
from sandbox.docker import DockerSettings, FakeBackend, FakeProcess, SkillsCache
from sandbox.options import RunOptions
from sandbox.plan import PlanInputs, SandboxPlan, compute_plan
from sandbox.render import EGRESS_NETWORK, RunSite, render_context

SECRET = "sk-ant-SECRET-value-7f3a"
TOML = """
model = "claude-sonnet-4-5"

[provider]
providerName = "anthropic"

[provider.setting]
baseUrl = "https://llm.test"

[experts."coord"]
version = "1.0.0"
instruction = "Do it."
"""


def config(text: str = TOML) -> Any:
    cfg, _ = parse_config_text(text, "perstack.toml")
    return cfg


def plan_for(cfg: Any, env: dict[str, str], **kw: Any) -> SandboxPlan:
    return compute_plan(
        cfg,
        PlanInputs(
            expert_key="coord",
            runtime="docker",
            env=env,
            base_image="sandbox-base:bookworm",
            node_image="sandbox-node:22",
            **kw,
        ),
    )


@dataclass
class Env:
    """One test's world: a workspace, a jobs dir, a temp root, the options/plan, and a fake engine."""

    tmp: Path
    cfg: Any
    env: dict[str, str]
    plan: SandboxPlan
    backend: FakeBackend
    emitted: list[ev.EventBase] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def workspace(self) -> Path:
        return self.tmp / "ws"

    @property
    def jobs(self) -> Path:
        return self.tmp / "jobs"

    @property
    def temp_root(self) -> Path:
        return self.tmp / "tmp"

    def options(self, query: str | None = "hello", **kw: Any) -> RunOptions:
        return RunOptions(
            config=self.cfg,
            config_path=self.tmp / "perstack.toml",
            expert_key="coord",
            query=query,
            runtime="docker",
            env=self.env,
            workspace=self.workspace,
            jobs_dir=self.jobs,
            **kw,
        )

    def settings(self, **kw: Any) -> DockerSettings:
        class _Err:
            def __init__(self, sink: list[str]) -> None:
                self.sink = sink

            def write(self, text: str) -> int:
                self.sink.append(text)
                return len(text)

            def flush(self) -> None:
                pass

            def isatty(self) -> bool:
                return False

        base: dict[str, Any] = {
            "install_signal_handlers": False,
            "temp_root": self.temp_root,
            "skills_cache": SkillsCache(self.tmp / "cache"),
            "stderr": _Err(self.stderr),
            "progress": False,
            "stop_grace_s": 0.5,
            "exit_grace_s": 0.5,
            "nosuid_workspace": False,  # a fake engine: no real mount to make
        }
        base.update(kw)
        return DockerSettings(**base)

    def images(self) -> tuple[str, str]:
        site = RunSite(project="p", workspace=self.workspace)
        ctx = render_context(self.plan, self.cfg, site)
        return ctx.expert_image, ctx.proxy_image

    def warm(self) -> None:
        """Pretend both sandbox images were built already."""
        self.backend.images.update(self.images())

    def err_text(self) -> str:
        return "".join(self.stderr)

    def leftovers(self) -> dict[str, Any]:
        return {
            "containers": [c.spec.name for c in self.backend.containers.values()],
            # The shared egress network is kept between runs by design (see compose.yaml.j2).
            "networks": [n.name for n in self.backend.networks.values() if n.name != EGRESS_NETWORK],
            "temp": [p.name for p in self.temp_root.iterdir()] if self.temp_root.exists() else [],
        }


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Env]:
    (tmp_path / "ws").mkdir()
    if os.getuid() == 0:
        # As root the Expert runs as the workspace's owner, never as root by default (`_user`).
        os.chown(tmp_path / "ws", 1000, 1000)
    (tmp_path / "tmp").mkdir()
    cfg = config()
    env = {"ANTHROPIC_API_KEY": SECRET, "HOME": str(tmp_path), "UNRELATED_SECRET": "nope-123"}
    plan = plan_for(cfg, env)
    backend = FakeBackend(images={"sandbox-base:bookworm", "sandbox-node:22"})
    yield Env(tmp_path, cfg, env, plan, backend)


# ------------------------------------------------------------------------------------------ fake Experts


def arg(argv: tuple[str, ...], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def job_of(payload: dict[str, Any]) -> str:
    """The job id of the run the host sent (`RunRequest.job_id`)."""
    return str((payload.get("run") or {}).get("job_id") or "nojob")


def read_payload(proc: FakeProcess) -> dict[str, Any]:
    raw = proc.read_stdin()
    return json.loads(raw.decode().splitlines()[0]) if raw else {}


@dataclass
class Seen:
    """What a fake Expert received."""

    payload: dict[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def checkpoint(job: str, run: str, status: ev.CheckpointStatus, step: int = 1, **kw: Any) -> ev.Checkpoint:
    return ev.Checkpoint(
        id=ev.create_id(),
        job_id=job,
        run_id=run,
        status=status,
        step_number=step,
        messages=[],
        expert=ev.ExpertRef(key="coord", name="coord", version="1.0.0"),
        **kw,
    )


def step(n: int = 1) -> ev.Step:
    return ev.Step(step_number=n, started_at=ev.now_ms(), finished_at=ev.now_ms())


def standard_events(
    job: str, run: str, terminal: str = "completeRun", *, start_from: ev.Checkpoint | None = None
) -> list[ev.EventBase]:
    first = (start_from.step_number + 1) if start_from else 1
    init = ev.InitializeRuntime(
        job_id=job,
        run_id=run,
        runtime_version="0.1.0",
        runtime="docker",
        expert_name="coord",
        experts=["coord"],
        model="m",
        max_steps=100,
        max_retries=5,
        timeout=300000,
        query="hello",
    )
    cp0 = checkpoint(job, run, "init", first)
    out: list[ev.EventBase] = [
        init,
        ev.StartRun(
            expert_key="coord",
            job_id=job,
            run_id=run,
            step_number=first,
            initial_checkpoint=cp0,
            input_messages=[],
        ),
    ]
    if terminal == "completeRun":
        out.append(
            ev.CompleteRun(
                expert_key="coord",
                job_id=job,
                run_id=run,
                step_number=first,
                checkpoint=checkpoint(job, run, "completed", first),
                step=step(first),
                text="done",
                usage=ev.Usage(input_tokens=3, output_tokens=2, total_tokens=5),
            )
        )
    elif terminal == "stopRunByError":
        err = ev.CheckpointError(name="APICallError", message="boom")
        out.append(
            ev.StopRunByError(
                expert_key="coord",
                job_id=job,
                run_id=run,
                step_number=first,
                checkpoint=checkpoint(job, run, "stoppedByError", first, error=err),
                step=step(first),
                error=err,
            )
        )
    elif terminal == "stopRunByInteractiveTool":
        out.append(
            ev.StopRunByInteractiveTool(
                expert_key="coord",
                job_id=job,
                run_id=run,
                step_number=first,
                checkpoint=checkpoint(job, run, "stoppedByInteractiveTool", first),
                step=step(first),
            )
        )
    elif terminal == "stopRunByExceededMaxSteps":
        out.append(
            ev.StopRunByExceededMaxSteps(
                expert_key="coord",
                job_id=job,
                run_id=run,
                step_number=first,
                checkpoint=checkpoint(job, run, "stoppedByExceededMaxSteps", first),
                step=step(first),
            )
        )
    return out


def expert_program(
    seen: Seen | None = None,
    *,
    terminal: str = "completeRun",
    code: int = 0,
    before: Callable[[FakeProcess, str, str], None] | None = None,
    after: Callable[[FakeProcess, str, str], int | None] | None = None,
    crlf: bool = False,
) -> Callable[[FakeProcess], int]:
    """A fake Expert: reads the payload, prints the standard events ending in `terminal`, exits `code`."""

    def program(proc: FakeProcess) -> int:
        raw = proc.read_stdin()
        payload = json.loads(raw.decode().splitlines()[0]) if raw else {}
        job = job_of(payload)
        run = ev.create_id()
        if seen is not None:
            seen.payload, seen.argv, seen.env = payload, proc.argv, dict(proc.spec.environment)
        if before is not None:
            before(proc, job, run)
        sent = (payload.get("run") or {}).get("checkpoint")
        start_from = ev.Checkpoint.model_validate(sent) if sent else None
        nl = "\r\n" if crlf else "\n"
        for event in standard_events(job, run, terminal, start_from=start_from):
            # Split every line in two frames to exercise re-assembly.
            proc.event(event, split=True, end=nl)
        if after is not None:
            result = after(proc, job, run)
            if result is not None:
                return result
        return code

    return program


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")
