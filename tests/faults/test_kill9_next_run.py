"""`kill -9` of the host `sandbox` process mid-run: the *next run* removes everything it left.

`sandbox clean` after `kill -9` is covered by tests/docker/test_run_signals.py (its SIGKILL test). Here the
next ordinary run finds the dead owner's containers, networks and temp dir by their owner labels and removes
them while it runs, without touching anything of a live run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import docker
import pytest

from sandbox.docker._testkit import Harness
from sandbox.testing import Turn

from .conftest import (
    EMPTY,
    expert_toml,
    nothing_left,
    project_with,
    run_env,
    start_run,
    wait_mid_run,
    wait_until,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_next_run_removes_what_a_killed_run_left(
    harness: Harness, api: docker.APIClient, tmp_path: Path
) -> None:
    assert harness.llm is not None
    remote = harness.llm.remote()
    remote.set_script([Turn("never delivered", delay_s=300), Turn("second run done")])
    project = project_with(harness, tmp_path / "project", expert_toml("victim"))
    env = run_env(tmp_path)

    killed = start_run(harness, project, env, "victim")
    try:
        wait_mid_run(api, harness, killed)
        os.kill(killed.pid, signal.SIGKILL)
        killed.proc.communicate(timeout=30)
    finally:
        if killed.proc.poll() is None:
            killed.proc.kill()
    left = nothing_left(api, killed)
    # Two containers and the run's own internal network (the egress network is shared and stays).
    assert len(left["containers"]) == 2 and len(left["networks"]) == 1 and len(left["temp"]) == 1, left

    # A live run in another terminal must not be disturbed: the next run only reaps dead owners.
    nxt = start_run(harness, project, env, "victim")
    code, out, err = nxt.finish()
    assert code == 0, err[-3000:]
    assert '"completeRun"' in out
    wait_until(lambda: nothing_left(api, killed) == EMPTY, 30, "the killed run's leftovers to be reaped")
    assert nothing_left(api, nxt) == EMPTY
