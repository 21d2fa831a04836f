"""The egress proxy dies mid-run: the run fails fast with a clear error and leaves nothing.

The proxy is the Expert's only way out; without it the Expert would retry into a wall until its timeouts.
The executor watches the proxy's output stream, and when it ends it stops the Expert at once and explains.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from sandbox.docker._testkit import Harness
from sandbox.testing import Turn

from .conftest import (
    EMPTY,
    expert_toml,
    nothing_left,
    owned_by,
    project_with,
    run_env,
    start_run,
    wait_mid_run,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_dead_proxy_ends_the_run_quickly_and_clearly(
    harness: Harness, api: docker.APIClient, tmp_path: Path
) -> None:
    assert harness.llm is not None
    harness.llm.remote().set_script([Turn("too late", delay_s=300)])
    project = project_with(harness, tmp_path / "project", expert_toml("orphan"))
    run = start_run(harness, project, run_env(tmp_path), "orphan")
    try:
        wait_mid_run(api, harness, run)
        proxy = [
            c
            for c in api.containers(filters={"label": ["sandbox.role=proxy"]})
            if c["Names"][0].lstrip("/") in owned_by(api, run.pid)["containers"]
        ]
        assert len(proxy) == 1, proxy
        killed_at = time.monotonic()
        api.kill(proxy[0]["Id"], signal="SIGKILL")
        code, _, err = run.finish(timeout=120)
        elapsed = time.monotonic() - killed_at
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == 1, err[-3000:]
    assert elapsed < 20, f"the run took {elapsed:.1f}s to notice its proxy was gone"
    assert "the proxy exited during the run" in err, err[-3000:]
    assert "Traceback" not in err
    assert nothing_left(api, run) == EMPTY
