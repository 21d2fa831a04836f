"""The README's first command on a machine without a provider key: the demo runs the example Expert in the
sandbox against the scripted model server (through the proxy), says so, and ends with a readable summary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_without_a_key_and_summarises(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["SANDBOX_DEMO_DIR"] = str(tmp_path)
    env["SANDBOX_BASE_IMAGE"] = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm")
    env["SANDBOX_NODE_IMAGE"] = os.environ.get("SANDBOX_TEST_NODE_IMAGE", "sandbox-node:22")
    assert not (ROOT / "examples" / "time-keeper" / ".env").exists()  # else the demo would use that key
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    assert "no provider key is set; the package's scripted model server answers" in done.stdout
    summary = done.stdout.split("== what happened", 1)[1]
    assert "model: the package's scripted model server" in summary
    assert "time/get_current_time" in summary and "everything/get-sum" in summary
    assert "llm.test:" in summary.split("the proxy allowed:", 1)[1].splitlines()[0]
    assert "2 + 3 = 5" in summary
    events = [json.loads(line) for line in (tmp_path / "demo-events.jsonl").read_text().splitlines() if line]
    run_events = [e["type"] for e in events if "expertKey" in e]
    assert run_events[-1] == "completeRun"
    job = events[0]["jobId"]
    assert (tmp_path / "demo-scripted" / "project" / "perstack" / "jobs" / job).is_dir()
