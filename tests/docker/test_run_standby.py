"""Standby sandboxes (`sandbox warm`): a run claims a ready sandbox, gets the same result, and leaves the pool
full again; a different sandbox never meets it; secrets reach it only when claimed; `--stop` removes all.

Real engine, real proxy, the scripted provider over HTTPS through the proxy (as in test_run_e2e).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.testing import Expectation, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-standby-SECRET-93e1"
PLAIN = '\n[experts."plain"]\nversion = "1.0.0"\ninstruction = "Answer."\n'


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def sandbox(cwd: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "sandbox"
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def warm_flags(harness: Harness) -> list[str]:
    return harness.sandbox_flags()[2:]  # the run's sandbox flags without `--runtime docker`


def standby_objects(api: docker.APIClient, key: str) -> dict[str, list[str]]:
    flt = {"label": [f"sandbox.standby={key}"]}
    return {
        "containers": sorted(c["Id"] for c in api.containers(all=True, filters=flt)),
        "networks": sorted(n["Id"] for n in api.networks(filters=flt)),
    }


def wait_for_record(pool: Path, key: str, not_ids: set[str], timeout: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for path in (pool / key).glob("*.json"):
            record: dict[str, Any] = json.loads(path.read_text())
            if record["id"] not in not_ids:
                return record
        time.sleep(0.25)
    raise AssertionError(f"no new standby of {key} appeared in {timeout:.0f}s")


def test_standby_serves_one_run_refills_and_stops(harness: Harness, tmp_path: Path) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, PLAIN)
    pool = tmp_path / "pool"
    env = base_env(tmp_path, ANTHROPIC_API_KEY=SECRET, SANDBOX_STANDBY_DIR=str(pool))
    warm_env = {k: v for k, v in env.items() if k != "ANTHROPIC_API_KEY"}  # a standby needs no key
    api = harness.client

    made = sandbox(project, ["warm", "plain", *warm_flags(harness), "--json"], warm_env)
    assert made.returncode == 0, made.stderr[-3000:]
    report = json.loads(made.stdout)
    key, first_id = report["key"], report["created"][0]
    assert report["ready"] == [first_id]
    objects = standby_objects(api, key)
    assert len(objects["containers"]) == 2 and len(objects["networks"]) == 1  # its own internal network
    record = json.loads((pool / key / f"{first_id}.json").read_text())
    assert SECRET not in json.dumps(record)
    expert = api.inspect_container(record["containers"]["expert"])
    assert expert["State"]["Running"] and SECRET not in json.dumps(expert)
    assert not any(e.startswith("ANTHROPIC_API_KEY") for e in expert["Config"]["Env"])
    assert expert["Config"]["OpenStdin"] and not expert["Config"]["StdinOnce"]

    # A run of a *different* sandbox (another memory limit) does not take it.
    harness.llm.remote().set_script([Turn("cold", expect=Expectation(api_key=SECRET))])
    other = harness.run_cli(project, ["plain", "hi", "--memory", "640m", "--verbose"], env)
    assert other.code == 0, other.stderr[-3000:]
    assert "using standby" not in other.stderr
    assert json.loads((pool / key / f"{first_id}.json").read_text())["id"] == first_id  # still there

    # The matching run claims it: same events, the secret arrives on its stdin, its objects go away.
    harness.llm.remote().set_script([Turn("warm answer", expect=Expectation(api_key=SECRET))])
    run = harness.run_cli(project, ["plain", "hi", "--verbose"], env)
    assert run.code == 0, run.stderr[-3000:]
    assert f"using standby sandbox {first_id}" in run.stderr
    assert [e["type"] for e in run.events if "expertKey" in e][-1] == "completeRun"
    assert "warm answer" in json.dumps(run.of("completeRun"))
    assert run.of("proxyAccess") and all(e["jobId"] == run.events[0]["jobId"] for e in run.events)
    job = run.events[0]["jobId"]
    assert (project / "perstack" / "jobs" / job).is_dir()
    for cid in record["containers"].values():
        with pytest.raises(docker.errors.NotFound):
            api.inspect_container(cid)
    for nid in record["networks"]:
        with pytest.raises(docker.errors.NotFound):
            api.inspect_network(nid)
    assert not Path(record["run_dir"]).exists()
    harness.llm.remote().assert_all_served()

    # The run started `sandbox warm` again: a new standby of the same key appears, and serves the next run.
    second = wait_for_record(pool, key, {first_id})
    harness.llm.remote().set_script([Turn("again", expect=Expectation(api_key=SECRET))])
    again = harness.run_cli(project, ["plain", "once more", "--continue", "--verbose"], env)
    assert again.code == 0, again.stderr[-3000:]
    assert f"using standby sandbox {second['id']}" in again.stderr
    assert {e["jobId"] for e in again.events} == {job}  # --continue works through a standby too

    # --stop removes whatever the pool holds for this sandbox; nothing of the key is left.
    third = wait_for_record(pool, key, {first_id, second["id"]})
    stopped = sandbox(project, ["warm", "plain", *warm_flags(harness), "--stop", "--json"], warm_env)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert third["id"] in json.loads(stopped.stdout)["removed"]
    assert standby_objects(api, key) == {"containers": [], "networks": []}
    assert not list((pool / key).glob("*.json"))


def test_a_dead_standby_is_skipped_and_removed(harness: Harness, tmp_path: Path) -> None:
    """A standby whose runtime is gone (idle timeout, killed) is never used: the run builds its own."""
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, PLAIN)
    pool = tmp_path / "pool"
    env = base_env(tmp_path, ANTHROPIC_API_KEY=SECRET, SANDBOX_STANDBY_DIR=str(pool))
    made = sandbox(project, ["warm", "plain", *warm_flags(harness), "--json"], env)
    assert made.returncode == 0, made.stderr[-3000:]
    key, sid = json.loads(made.stdout)["key"], json.loads(made.stdout)["created"][0]
    record = json.loads((pool / key / f"{sid}.json").read_text())
    harness.client.kill(record["containers"]["expert"])

    harness.llm.remote().set_script([Turn("fresh")])
    run = harness.run_cli(project, ["plain", "hi", "--verbose"], env)
    assert run.code == 0, run.stderr[-3000:]
    assert "using standby" not in run.stderr
    assert "fresh" in json.dumps(run.of("completeRun"))
    deadline = time.monotonic() + 30
    while standby_objects(harness.client, key)["containers"] and time.monotonic() < deadline:
        time.sleep(0.25)
    assert standby_objects(harness.client, key) == {"containers": [], "networks": []}
    assert not list((pool / key).glob("*.json"))
