"""Red-team items (issue #12, 4 and 6) as real runs: what an Expert can leave in, and write to, the workspace.

One run per topic. The scripted model calls `exec` with a shell script, so the attack runs where an Expert's
code runs.

* Leftovers (`test_setuid_fifo_and_outside_symlink_are_reported_and_defused`): as root, the Expert runs as
  the workspace's owner, not as root; /workspace is mounted nosuid,nodev; it sets a set-uid bit (the
  control: it can, on a file it owns), makes a FIFO and a symlink to /etc/passwd. After the run the host
  printed one line for each and a summary, and the set-uid bit is gone; the FIFO and link are left as they
  are (the workspace is the Expert's to write).
* Root by default (`test_root_invoker_on_a_root_workspace_is_refused`): as root, on a root-owned workspace
  and with no opt-in, the run refuses with one line, before anything is built; the control is the leftovers
  run above (a user-owned workspace runs as its owner) and every other docker test (they opt in with
  SANDBOX_USER=0:0 in the process environment).
* Quota (`test_workspace_quota_bounds_each_file_and_the_total`): `--workspace-quota 64m`; a file under
  the limit is written whole (the control), a (sparse) file written past it stops at exactly 64 MiB (the
  kernel's RLIMIT_FSIZE), and writing files below the per-file limit but more than 64 MiB in total stops
  the run with one line naming the limit and how to raise it; everything written is still there.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.docker._workspace_mount import can_mount, mounts_under
from sandbox.testing import ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXPERT = '\n[experts."writer"]\nversion = "1.0.0"\ninstruction = "Write files."\n'
MIB = 1 << 20

LEFTOVERS = r"""
cd /workspace
cp /bin/true suid && chmod 4755 suid
mkfifo fifo
ln -s /etc/passwd passwd-link
ln -s suid inside-link
echo "mode $(stat -c %a suid)"
echo "uid $(id -u)"
grep ' /workspace ' /proc/self/mountinfo | sed 's/^/ws /'
grep ' /sandbox/expert ' /proc/self/mountinfo | sed 's/^/expert /'
"""

QUOTA = r"""
cd /workspace
dd if=/dev/zero of=small bs=1M count=4 2>/dev/null; echo "small $?"
dd if=/dev/zero of=big bs=1M seek=60 count=10 2>/dev/null; echo "big $?"
sleep 0.5
for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=part$i bs=1M count=40 2>/dev/null; sleep 0.3; done
echo "all written"
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def _texts(result: object, count: int) -> list[str]:
    results = {r["id"]: r for e in result.of("resolveToolResults") for r in e["toolResults"]}  # type: ignore[attr-defined]
    return [" ".join(p.get("text", "") for p in results[f"toolu_sbx_0_{i}"]["result"]) for i in range(count)]


def test_setuid_fifo_and_outside_symlink_are_reported_and_defused(harness: Harness, tmp_path: Path) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, EXPERT)
    expected_uid = os.getuid()
    env = base_env(tmp_path, ANTHROPIC_API_KEY="k")
    if os.getuid() == 0:
        # root invoking on a user's project: no opt-in, so the Expert must run as that user.
        env.pop("SANDBOX_USER", None)
        expected_uid = 4242
        os.chown(project, 4242, 4343)
    harness.llm.remote().set_script(
        [Turn(tool_calls=[ToolCall("exec", {"command": "sh", "args": ["-c", LEFTOVERS]})]), Turn("done")]
    )
    result = harness.run_cli(project, ["writer", "leave things"], env)
    assert result.code == 0, result.stderr[-3000:]
    (out,) = _texts(result, 1)
    lines = dict(
        line.split(" ", 1)
        for line in out.splitlines()
        if line.split(" ", 1)[0] in ("mode", "uid", "ws", "expert")
    )
    # Control: the Expert could set the bit (so the host's removal below is what defuses it).
    assert lines["mode"] == "4755", out
    assert lines["uid"] == str(expected_uid), out
    ws_flags = lines["ws"].split(" ")[5].split(",")
    expert_flags = lines["expert"].split(" ")[5].split(",")
    if can_mount():
        assert {"nosuid", "nodev"} <= set(ws_flags), lines["ws"]
        # Control: a bind mount the sandbox does not remount shows the same fields without the flags.
        assert "nosuid" not in expert_flags, lines["expert"]
    else:
        assert "nosuid" not in ws_flags  # an ordinary user cannot mount: the scan below is the defence
    # After the run: set-uid gone, every leftover reported once, the harmless link not at all.
    suid = project / "suid"
    assert not suid.stat().st_mode & (stat.S_ISUID | stat.S_ISGID), oct(suid.stat().st_mode)
    assert stat.S_ISFIFO((project / "fifo").lstat().st_mode)  # left as it is
    err = result.stderr
    assert "'suid' is a set-uid file" in err and "set-id bits removed" in err, err[-2000:]
    assert "'fifo' is a FIFO" in err, err[-2000:]
    assert "'passwd-link' is a symlink pointing outside the workspace (-> '/etc/passwd')" in err, err[-2000:]
    assert "inside-link" not in err
    assert "the run left 3 item(s) in the workspace" in err, err[-2000:]
    assert "perstack" not in err.split("the run left")[0].split("workspace:")[-1]  # the job store is skipped
    # Nothing of the nosuid mount is left on the host.
    assert not mounts_under(tmp_path), mounts_under(tmp_path)


def test_root_invoker_on_a_root_workspace_is_refused(harness: Harness, tmp_path: Path) -> None:
    project = tmp_path / "project"
    harness.write_project(project, EXPERT)
    env = base_env(tmp_path, ANTHROPIC_API_KEY="k", SANDBOX_USER="")
    # An env file in the workspace (the Expert could have written it) is no opt-in.
    (project / ".env").write_text("SANDBOX_USER=0:0\n")
    result = harness.run_cli(project, ["writer", "hi"], env, timeout=120)
    if os.getuid() != 0:
        assert result.code == 1 and "SANDBOX_USER" in result.stderr  # an ordinary user cannot become root
        return
    assert result.code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # The env file's SANDBOX_USER is never read (it configures the host tool), so the refusal stands.
    assert len(lines) == 2, result.stderr
    assert "`SANDBOX_USER`: skipped: it configures the host tool itself" in lines[0], lines[0]
    assert "refusing to run the Expert as root" in lines[1], lines[1]
    (project / ".env").unlink()
    result = harness.run_cli(project, ["writer", "hi"], env, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code != 0 and len(lines) == 1, result.stderr
    assert "refusing to run the Expert as root" in lines[0] and "SANDBOX_USER=" in lines[0], lines[0]


def test_workspace_quota_bounds_each_file_and_the_total(harness: Harness, tmp_path: Path) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, EXPERT)
    harness.llm.remote().set_script(
        [Turn(tool_calls=[ToolCall("exec", {"command": "sh", "args": ["-c", QUOTA]})]), Turn("done")]
    )
    started = time.monotonic()
    result = harness.run_cli(
        project, ["writer", "fill it", "--workspace-quota", "64m"], base_env(tmp_path, ANTHROPIC_API_KEY="k")
    )
    assert result.code == 1, (result.code, result.stderr[-3000:])
    assert (project / "small").exists(), result.stderr[-3000:] + result.stdout[-3000:]
    # Control: a file under the limit is written whole.
    assert (project / "small").stat().st_size == 4 * MIB
    # Per file, by the kernel: the write past the limit (at 60 MiB, sparse before) stopped at exactly it.
    assert (project / "big").stat().st_size == 64 * MIB
    # In total, by the host: the run was stopped with one line; nothing was deleted.
    quota_lines = [line for line in result.stderr.splitlines() if "workspace grew by more than" in line]
    assert len(quota_lines) == 1, result.stderr[-3000:]
    assert "64m" in quota_lines[0] and "--workspace-quota" in quota_lines[0], quota_lines[0]
    parts = sorted(project.glob("part*"))
    assert parts and len(parts) < 8, parts  # stopped before the script ended
    assert not result.of("resolveToolResults")  # killed mid-script: the tool never returned
    written = sum(p.stat().st_blocks * 512 for p in [project / "small", project / "big", *parts])
    # The overshoot is bounded: a sample interval plus the kill, or up to a confirming walk's second of
    # writing when other processes are filling the same disk (sandbox/docker/_quota.py).
    assert 64 * MIB < written < 64 * MIB + 4 * 40 * MIB, written
    assert time.monotonic() - started < 300
