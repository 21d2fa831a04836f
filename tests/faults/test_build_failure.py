"""A build that fails (a skill package that does not exist) ends the run cleanly and leaves nothing.

(tests/docker/test_build_images.py checks the error names the failing step; this checks what remains.)
Nothing of the run may stay: no container or network (none was created), no temp dir, and none of the
builder's intermediate containers (the legacy builder's `forcerm`).
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from sandbox.docker._testkit import Harness

from .conftest import EMPTY, nothing_left, project_with, run_env, start_run

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.network]

BROKEN = """
[experts."broken"]
version = "1.0.0"
instruction = "x"
[experts."broken".skills."nope"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@sandbox-audit-nonexistent/definitely-not-a-package-7c1e"
"""


def test_a_failed_build_leaves_nothing(harness: Harness, api: docker.APIClient, tmp_path: Path) -> None:
    project = project_with(harness, tmp_path / "project", BROKEN)
    since = int(time.time()) - 1
    run = start_run(harness, project, run_env(tmp_path), "broken")
    code, _, err = run.finish(timeout=1200)
    assert code == 1, err[-3000:]
    assert "building the expert image" in err and "npm install" in err, err[-3000:]
    assert "Traceback" not in err
    assert nothing_left(api, run) == EMPTY
    # Intermediate build containers carry the image's LABELs (sandbox.kind=expert) and must be gone.
    stray = [
        c
        for c in api.containers(all=True, filters={"label": ["sandbox.kind=expert"]})
        if c["Created"] >= since and c["State"] != "running"
    ]
    assert stray == [], stray
