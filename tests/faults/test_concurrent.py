"""Eight concurrent runs of eight different Experts: no collision, all finish, nothing left behind.

Each run picks its own internal subnet, names its objects after its own run id, and labels them with its
own owner; a clash (subnet, container name, network name, temp dir) would make one of them fail.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from sandbox.docker._testkit import Harness
from sandbox.testing import Turn

from .conftest import EMPTY, Run, expert_toml, new_volumes, nothing_left, project_with, run_env, start_run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

N = 8


def test_eight_concurrent_runs(harness: Harness, api: docker.APIClient, tmp_path: Path) -> None:
    assert harness.llm is not None
    harness.llm.remote().set_script([Turn(f"answer {i}") for i in range(N)])
    since = time.time() - 1
    runs: list[Run] = []
    for i in range(N):
        name = f"worker-{i}"
        project = project_with(harness, tmp_path / name, expert_toml(name, f"You are worker number {i}."))
        runs.append(start_run(harness, project, run_env(tmp_path / name), name))
    results = []
    try:
        for run in runs:
            results.append(run.finish(timeout=900))
    finally:
        for run in runs:
            if run.proc.poll() is None:
                run.proc.kill()
    failures = [(i, err[-1500:]) for i, (code, _, err) in enumerate(results) if code != 0]
    assert not failures, failures
    jobs = set()
    for i, (_, out, _) in enumerate(results):
        assert '"completeRun"' in out, i
        jobs.add(
            next(line for line in out.splitlines() if '"jobId"' in line).split('"jobId":"')[1].split('"')[0]
        )
    assert len(jobs) == N
    assert [nothing_left(api, run) for run in runs] == [EMPTY] * N
    assert new_volumes(api, since) == []
