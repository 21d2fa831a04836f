"""`sandbox jobs` reads the same store the runtimes write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sandbox.jobs import JobStore


def test_jobs_lists_and_shows(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "perstack" / "jobs", durable=False)
    store.ensure_job("job-one", "lead", max_steps=5)
    store.update_job("job-one", status="completed", total_steps=3)
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "jobs", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    jobs = json.loads(proc.stdout)
    assert [(j["id"], j["status"], j["totalSteps"]) for j in jobs] == [("job-one", "completed", 3)]
    one = subprocess.run(
        [sys.executable, "-m", "sandbox", "jobs", "job-one", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(one.stdout)["job"]["coordinatorExpertKey"] == "lead"
    missing = subprocess.run(
        [sys.executable, "-m", "sandbox", "jobs", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "no job 'nope'" in missing.stderr
