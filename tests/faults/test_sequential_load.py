"""Fifty sequential warm runs: nothing is left behind, and the warm start does not creep up.

Each run is timed from the start of the `sandbox` process to its exit (a one-step Expert against the scripted
provider, images cached). A leak that slows every run down a little (networks piling up on the engine, temp
dirs, growing job stores being rescanned) shows up as a trend, so the bound is on the trend, never on an
absolute time: the fitted slope over the 50 runs, and the last runs against the first ones.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import docker
import pytest

from sandbox.docker._testkit import Harness
from sandbox.testing import Turn

from .conftest import EMPTY, expert_toml, new_volumes, nothing_left, project_with, run_env, start_run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUNS = 50


def slope(values: list[float]) -> float:
    """Least-squares slope of values against their index (seconds per run)."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(values)
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def test_fifty_sequential_runs(harness: Harness, api: docker.APIClient, tmp_path: Path) -> None:
    assert harness.llm is not None
    remote = harness.llm.remote()
    project = project_with(harness, tmp_path / "project", expert_toml("steady"))
    env = run_env(tmp_path)

    remote.set_script([Turn("warm-up")])
    warm = start_run(harness, project, env, "steady")  # builds if needed; not timed
    code, _, err = warm.finish(timeout=1800)
    assert code == 0, err[-3000:]

    remote.set_script([Turn(f"run {i}") for i in range(RUNS)])
    since = time.time() - 1
    durations: list[float] = []
    leftovers = []
    for i in range(RUNS):
        started = time.monotonic()
        run = start_run(harness, project, env, "steady", query=f"run {i}")
        code, out, err = run.finish(timeout=300)
        durations.append(time.monotonic() - started)
        assert code == 0, (i, err[-3000:])
        assert '"completeRun"' in out, i
        left = nothing_left(api, run)
        if left != EMPTY:
            leftovers.append((i, left))
    assert leftovers == []
    assert new_volumes(api, since) == []
    remote.assert_all_served()

    median = statistics.median(durations)
    fitted_rise = slope(durations) * (RUNS - 1)
    first, last = statistics.median(durations[:10]), statistics.median(durations[-10:])
    report = (
        f"median {median:.2f}s, first-10 median {first:.2f}s, last-10 median {last:.2f}s, "
        f"fitted rise over {RUNS} runs {fitted_rise:+.2f}s"
    )
    print(report)
    # Creep: the fitted rise across all runs stays within a quarter of a run, and the last runs are not
    # markedly slower than the first ones (a fixed 0.5 s of slack absorbs scheduler noise on a 2-core CI box).
    assert fitted_rise < 0.25 * median + 0.5, report
    assert last < 1.3 * first + 0.5, report
