"""The workspace: files the Expert writes stay, belong to the invoking user, and the job store is hidden.

When the tests run as root, the run is made as a non-root user (SANDBOX_USER=uid:gid, the override the
executor reads) with a workspace that user owns: the files must come out owned by that uid:gid, which is
what "the invoking user" means for a non-root caller (Perstack issue #252). As a non-root caller, no override
is needed and the files must be owned by that caller.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.testing import ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXPERT = '\n[experts."writer"]\nversion = "1.0.0"\ninstruction = "Write files."\n'


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def test_files_written_inside_belong_to_the_invoking_user(harness: Harness, tmp_path: Path) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, EXPERT)
    extra: dict[str, str] = {}
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        uid, gid = 4242, 4343
        extra["SANDBOX_USER"] = f"{uid}:{gid}"
        os.chown(project, uid, gid)
    harness.llm.remote().set_script(
        [
            Turn(
                tool_calls=[
                    ToolCall("writeTextFile", {"path": "out/hello.txt", "text": "hi from the sandbox"}),
                    ToolCall("exec", {"command": "ls", "args": ["-A", "/workspace/perstack"]}),
                    ToolCall("exec", {"command": "touch", "args": ["/etc/escaped"]}),
                    ToolCall("exec", {"command": "id", "args": ["-u"]}),
                ]
            ),
            Turn("done"),
        ]
    )
    result = harness.run_cli(
        project, ["writer", "write it"], base_env(tmp_path, ANTHROPIC_API_KEY="k", **extra)
    )
    assert result.code == 0, result.stderr[-3000:]
    written = project / "out" / "hello.txt"
    assert written.read_text() == "hi from the sandbox"
    assert (written.stat().st_uid, written.stat().st_gid) == (uid, gid)
    assert (written.parent.stat().st_uid, written.parent.stat().st_gid) == (uid, gid)
    results = {r["id"]: r for e in result.of("resolveToolResults") for r in e["toolResults"]}
    texts = [" ".join(p.get("text", "") for p in results[f"toolu_sbx_0_{i}"]["result"]) for i in range(1, 4)]
    ls_perstack, touch_etc, whoami = texts
    # The host's job store inside the workspace is covered: the Expert sees an empty directory.
    assert ls_perstack.startswith("exit code: 0") and "jobs" not in ls_perstack, ls_perstack
    assert "Read-only file system" in touch_etc, touch_etc  # nothing outside /workspace and tmpfs is writable
    assert whoami.split()[-1] == str(uid), whoami
    assert not Path("/etc/escaped").exists()
    # The host's job files were written by the host process, with the host user's ownership.
    job_dir = next((project / "perstack" / "jobs").iterdir())
    assert job_dir.stat().st_uid == os.getuid()
