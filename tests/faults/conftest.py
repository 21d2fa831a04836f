"""Shared pieces of the fault tests: the scripted provider, CLI runs as subprocesses, and leftover accounting.

Runs go through the real `sandbox` executable (a subprocess per run, as a user would start it), against the
scripted LLM server of `sandbox.docker._testkit` on the egress side. What a run leaves behind is found the
way `sandbox clean` finds it: by the owner label every container and network of a run carries (host name and
pid of the `sandbox` process), plus the run's temp dir in the subprocess's private TMPDIR.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness

SECRET = "sk-ant-fault-SECRET-77aa"
SANDBOX = str(Path(sys.executable).parent / "sandbox")


def expert_toml(name: str, instruction: str = "Answer briefly.") -> str:
    return f'\n[experts."{name}"]\nversion = "1.0.0"\ninstruction = "{instruction}"\n'


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


@pytest.fixture(scope="module")
def api() -> Iterator[docker.APIClient]:
    client = docker.APIClient(version="auto", timeout=120)
    yield client
    client.close()


@dataclass
class Run:
    """A `sandbox run` subprocess and what it needs to be accounted for."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    project: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout: float = 600) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def start_run(
    harness: Harness, project: Path, env: Mapping[str, str], expert: str, *extra: str, query: str = "hi"
) -> Run:
    argv = [SANDBOX, "run", expert, query, *extra, *harness.sandbox_flags()]
    proc = subprocess.Popen(
        argv, cwd=project, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return Run(proc, dict(env), project)


def project_with(harness: Harness, directory: Path, toml: str) -> Path:
    harness.write_project(directory, toml)
    return directory


def run_env(tmp: Path) -> dict[str, str]:
    return base_env(tmp, ANTHROPIC_API_KEY=SECRET)


def owned_by(api: docker.APIClient, pid: int) -> dict[str, list[str]]:
    """Containers and networks whose owner label names `pid` on this host (what `sandbox clean` matches)."""
    host = socket.gethostname()

    def mine(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return labels.get("sandbox.host") == host and str(labels.get("sandbox.owner", "")).startswith(
            f"{pid}:"
        )

    flt = {"label": ["sandbox.tool=perstack-sandbox", "sandbox.owner"]}
    return {
        "containers": sorted(
            c["Names"][0].lstrip("/") for c in api.containers(all=True, filters=flt) if mine(c.get("Labels"))
        ),
        "networks": sorted(n["Name"] for n in api.networks(filters=flt) if mine(n.get("Labels"))),
    }


def new_volumes(api: docker.APIClient, since: float) -> list[str]:
    """Volumes created since `since` (epoch seconds): a run must not leave anonymous volumes behind."""
    from datetime import datetime

    out = []
    for vol in api.volumes().get("Volumes") or []:
        created = vol.get("CreatedAt") or ""
        try:
            when = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        if when >= since:
            out.append(str(vol["Name"]))
    return sorted(out)


def temp_dirs(env: Mapping[str, str]) -> list[str]:
    return sorted(p.name for p in Path(env["TMPDIR"]).glob("sandbox-run-*"))


def nothing_left(api: docker.APIClient, run: Run) -> dict[str, list[str]]:
    return {**owned_by(api, run.pid), "temp": temp_dirs(run.env)}


EMPTY: dict[str, list[str]] = {"containers": [], "networks": [], "temp": []}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, run: Run | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run is not None and run.proc.poll() is not None:
            _, err = run.proc.communicate()
            pytest.fail(f"the run ended before {what}:\n{err[-3000:]}")
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def wait_mid_run(
    api: docker.APIClient, harness: Harness, run: Run, requests: int = 1, timeout: float = 900
) -> None:
    """Until both containers of the run exist and the Expert's request reached the provider."""
    assert harness.llm is not None
    remote = harness.llm.remote()

    def going() -> bool:
        return len(owned_by(api, run.pid)["containers"]) == 2 and len(remote.requests) >= requests

    wait_until(going, timeout, "the run to reach the provider", run)
