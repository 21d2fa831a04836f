"""Signals and crashes of the host process, against a real engine.

* SIGINT / SIGTERM mid-run: exit 130 / 143 within seconds, the Expert's last checkpoint is on the host (so
  `--continue` can pick up), and no container, network or temp dir of the run is left.
* SIGKILL mid-run: the run's labelled objects stay behind (nothing can clean up after -9) and
  `sandbox clean` removes them (so would the next run, which collects dead owners' objects at start).
* The wall-clock guard inside the container: with no host watching, the Expert stops at its deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import typer
from typer.testing import CliRunner

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.jobs import JobStore
from sandbox.request import RunRequest, WirePayload
from sandbox.settings import ResolvedSettings
from sandbox.testing import ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-sig-SECRET-0d0d"
EXPERT = '\n[experts."slow"]\nversion = "1.0.0"\ninstruction = "Take your time."\n'


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def start(harness: Harness, tmp: Path, job: str, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    project = tmp / "project"
    harness.write_project(project, EXPERT)
    env = base_env(tmp, ANTHROPIC_API_KEY=SECRET)
    argv = [str(Path(sys.executable).parent / "sandbox"), "run", "slow", "go", "--job-id", job, *extra,
            *harness.sandbox_flags()]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, env


def wait_running(api: docker.APIClient, harness: Harness, job: str, proc: subprocess.Popen[str],
                 requests: int = 1) -> None:  # fmt: skip
    assert harness.llm is not None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        found = api.containers(filters={"label": [f"sandbox.job={job}", "sandbox.role=expert"]})
        if found and len(harness.llm.remote().requests) >= requests:
            return
        time.sleep(0.2)
    pytest.fail("the run never got going")


def left(api: docker.APIClient, job: str, tmpdir: str) -> dict[str, list[str]]:
    return {
        "containers": [
            c["Names"][0] for c in api.containers(all=True, filters={"label": [f"sandbox.job={job}"]})
        ],
        "networks": [n["Name"] for n in api.networks(filters={"label": [f"sandbox.job={job}"]})],
        "temp": [p.name for p in Path(tmpdir).glob("sandbox-run-*")],
    }


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_exits_and_leaves_nothing(
    harness: Harness, tmp_path: Path, signum: int, code: int
) -> None:
    assert harness.llm is not None
    harness.llm.remote().set_script([Turn("too late", delay_s=120)])
    job = f"sig{int(signum)}{int(time.time())}"
    api = docker.APIClient(version="auto")
    proc, env = start(harness, tmp_path, job)
    try:
        wait_running(api, harness, job, proc)
        sent = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-3000:]
    assert elapsed < 15, elapsed
    assert left(api, job, env["TMPDIR"]) == {"containers": [], "networks": [], "temp": []}
    # The Expert was asked to stop and wrote its last checkpoint, which the host stored: --continue works.
    checkpoints = JobStore(tmp_path / "project" / "perstack" / "jobs").list_checkpoints(job)
    assert checkpoints and checkpoints[-1].status == "stoppedByError", [c.status for c in checkpoints]
    types = [json.loads(line)["type"] for line in out.splitlines() if line.startswith("{")]
    assert "stopRunByError" in types
    api.close()


def test_sigkill_leaves_labelled_leftovers_that_clean_removes(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert harness.llm is not None
    sleeper = ToolCall("exec", {"command": "sleep", "args": ["300"], "timeout": 400000})
    harness.llm.remote().set_script([Turn(tool_calls=[sleeper]), Turn("done")])
    job = f"kill9{int(time.time())}"
    api = docker.APIClient(version="auto")
    proc, env = start(harness, tmp_path, job)
    try:
        wait_running(api, harness, job, proc)
        time.sleep(0.5)  # the exec of `sleep` has started
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = left(api, job, env["TMPDIR"])
    # Two containers and the run's own internal network (the egress network is shared and stays).
    assert len(before["containers"]) == 2 and len(before["networks"]) == 1 and len(before["temp"]) == 1, (
        before
    )

    # `sandbox clean` finds the dead owner's objects by label and removes what is still there.
    from sandbox.cli.clean import clean_command

    app = typer.Typer()
    app.command()(clean_command)
    monkeypatch.setattr(tempfile, "tempdir", env["TMPDIR"])
    still = left(api, job, env["TMPDIR"])
    result = CliRunner().invoke(app, ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {c.lstrip("/") for c in still["containers"]} <= set(report["containers"])
    assert set(still["networks"]) <= set(report["networks"])
    assert set(still["temp"]) <= {Path(p).name for p in report["tempDirs"]}
    assert left(api, job, env["TMPDIR"]) == {"containers": [], "networks": [], "temp": []}
    api.close()


def test_the_container_stops_itself_at_its_deadline(harness: Harness, tmp_path: Path) -> None:
    """A request's `deadline` with no host attached: the run is stopped at the deadline by itself.

    The proxy address points nowhere, so without the deadline the process would wait 30 s for it.
    """
    api = docker.APIClient(version="auto")
    image = harness.server_image(tmp_path)
    config = tmp_path / "expert"
    config.mkdir()
    (config / "perstack.json").write_text(json.dumps({"experts": {"slow": {"instruction": "x"}}}))
    config.chmod(0o755)
    (config / "perstack.json").chmod(0o644)
    deadline = int(time.time()) + 4
    request = RunRequest(
        expert_key="slow",
        query="hi",
        job_id="j",
        settings=ResolvedSettings(provider="anthropic"),
        deadline=deadline,
    )
    started = time.monotonic()
    proc = subprocess.run(
        ["docker", "run", "-i", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
         "-e", "SANDBOX_PROXY_URL=http://10.255.255.1:3128",
         "-e", "SANDBOX_CONFIG=/sandbox/expert/perstack.json",
         "-v", f"{config}:/sandbox/expert:ro", image],
        input=WirePayload(run=request, event_key="ab" * 32).to_line().decode(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert "reached its deadline" in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode != 0
    assert elapsed < 25, elapsed
    api.close()
