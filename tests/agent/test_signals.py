"""Signals end a run cleanly (exit 130/143, skills closed, last checkpoint written) and a SIGKILL in the
middle of a checkpoint write leaves a job that still resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.jobs import JobStore, resolve_checkpoint
from sandbox.testing import Expectation, ToolCall, Turn
from tests.agent.conftest import Harness

RUNNER = Path(__file__).parent / "fixtures" / "run_expert.py"
PROBE = Path(__file__).parent / "fixtures" / "mcp_probe.py"

TOML = f"""
model = "claude-test"
[provider]
providerName = "anthropic"
[experts."main"]
instruction = "Work."
[experts."main".skills."probe"]
type = "mcpStdioSkill"
command = "{sys.executable}"
args = ["{PROBE}"]
[experts."main".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
"""


def _spawn(harness: Harness, query: str, *extra: str) -> subprocess.Popen[str]:
    toml = harness.tmp / "perstack.toml"
    toml.write_text(TOML)
    return subprocess.Popen(
        [
            sys.executable,
            str(RUNNER),
            str(toml),
            "main",
            query,
            str(harness.workspace),
            harness.server.base_url,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).parents[2]),
    )


def _read_until(proc: subprocess.Popen[str], wanted: str, timeout: float = 30) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        events.append(json.loads(line))
        if events[-1]["type"] == wanted:
            return events
    raise AssertionError(f"no {wanted} in {[e['type'] for e in events]}")


def _probe_alive() -> bool:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(PROBE).encode() in (proc / "cmdline").read_bytes():
                    return True
            except OSError:
                pass
    return False


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_with_a_resumable_checkpoint(harness: Harness, sig: signal.Signals, code: int) -> None:
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("think", {"thought": "step one"})]),
        Turn("never seen", delay_s=30),
    )
    proc = _spawn(harness, "long task")
    _read_until(proc, "continueToNextStep")
    _read_until(proc, "startGeneration")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    tail = [json.loads(line) for line in out.splitlines()]
    stop = next(e for e in tail if e["type"] == "stopRunByError")
    assert stop["error"]["name"] == "Interrupted" and sig.name in stop["error"]["message"]
    assert any(e["type"] == "skillDisconnected" for e in tail)
    assert not _probe_alive()
    store = JobStore(harness.jobs_dir)
    checkpoint = resolve_checkpoint(store, expert_key="main", continue_job=str(stop["jobId"]))
    assert checkpoint is not None and checkpoint.status == "stoppedByError" and checkpoint.step_number == 2
    # the interrupted step's half-done generation is not in the checkpoint: it resumes cleanly
    assert checkpoint.messages[-1].type == "toolMessage"
    job = json.loads((harness.jobs_dir / str(stop["jobId"]) / "job.json").read_text())
    assert job["status"] == "stoppedByError"

    harness.server.set_script([Turn("resumed", expect=Expectation(last_message_contains=["go on"]))])
    result = harness.run(
        harness.options(
            '[experts."main"]\ninstruction = "Work."\n', query="go on", continue_job=str(stop["jobId"])
        )
    )
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0


def test_kill_during_checkpoint_write_leaves_a_resumable_job(harness: Harness) -> None:
    marker = harness.tmp / "hanging"
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("think", {"thought": "one"})]),
        Turn(tool_calls=[ToolCall("think", {"thought": "two"})]),
        Turn("never"),
    )
    proc = _spawn(harness, "task", "--hang-on-checkpoint-step", "2", str(marker))
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read() if proc.stderr else ""
    proc.kill()
    proc.wait(timeout=10)
    job_dir = next(harness.jobs_dir.iterdir())
    assert any(p.name.endswith(".tmp") for p in (job_dir / "checkpoints").iterdir())  # the torn write
    store = JobStore(harness.jobs_dir)
    checkpoint = resolve_checkpoint(store, expert_key="main", continue_job=job_dir.name)
    assert checkpoint is not None and checkpoint.step_number == 1
    harness.server.set_script([Turn("resumed after kill")])
    result = harness.run(
        harness.options('[experts."main"]\ninstruction = "Work."\n', query="again", continue_job=job_dir.name)
    )
    assert result.code == 0 and result.last("completeRun").text == "resumed after kill"
