"""The examples are what a new user copies: no job store or quarantine of a past run is committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_run_leftovers_are_committed_under_examples() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "examples"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked, "the examples are tracked"  # the control: the listing itself works
    leftovers = [p for p in tracked if "/perstack/jobs/" in p or "/perstack/quarantine/" in p]
    assert leftovers == []


def test_job_stores_are_ignored_wherever_a_run_leaves_them() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "examples/time-keeper/perstack/jobs/x/job.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.returncode == 0, "perstack/jobs/ under an example is not ignored"
