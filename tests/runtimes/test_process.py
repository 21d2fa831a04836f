"""Process control: own process group, group kill on timeout, signal forwarding, parent-death, stdin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from sandbox.runtimes._process import DRAIN_SECONDS, KILL_GRACE_SECONDS, ProcessSpec, spawn

ENV = {"PATH": "/usr/bin:/bin"}


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by whoever adopted it) counts as dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def wait_file(path: Path, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_lines_reach_handlers_in_order_and_stdin_is_closed(tmp_path: Path) -> None:
    out: list[str] = []
    err: list[str] = []
    result = spawn(
        ProcessSpec(
            py("""
                import sys
                print("stdin:" + repr(sys.stdin.read()))
                for i in range(3): print(f"line {i}", flush=True)
                print("oops", file=sys.stderr)
                sys.exit(3)
            """),
            env=ENV,
            cwd=tmp_path,
        ),
        out.append,
        err.append,
    )
    assert out == ["stdin:''", "line 0", "line 1", "line 2"]
    assert err == ["oops"] and result.stderr == "oops"
    assert result.exit_code == 3 and not result.timed_out and result.interrupted is None


def test_child_runs_in_its_own_process_group(tmp_path: Path) -> None:
    result = spawn(ProcessSpec(py("import os; print(os.getpgrp(), os.getpid())"), env=ENV, cwd=tmp_path))
    pgrp, pid = result.stdout.split()
    assert pgrp == pid and int(pgrp) != os.getpgrp()


def test_environment_is_exactly_what_was_given(tmp_path: Path) -> None:
    result = spawn(
        ProcessSpec(py("import os; print(sorted(os.environ))"), env={**ENV, "ONLY": "1"}, cwd=tmp_path)
    )
    names = set(eval(result.stdout))
    assert {"PATH", "ONLY"} <= names and "HOME" not in names


def test_timeout_kills_the_whole_group_including_a_grandchild(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    result = spawn(
        ProcessSpec(
            py(f"""
                import subprocess, time, pathlib
                child = subprocess.Popen(["sleep", "1000"])
                pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))
                print("started", flush=True)
                time.sleep(1000)
            """),
            env=ENV,
            cwd=tmp_path,
            timeout=1.0,
        )
    )
    grandchild = int(pid_file.read_text())
    assert result.timed_out
    assert result.stdout == "started"
    assert time.monotonic() - started < 1.0 + KILL_GRACE_SECONDS + 2
    assert wait_dead(grandchild), "the grandchild survived the group kill"


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    result = spawn(
        ProcessSpec(
            py("""
                import signal, time
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                print("ready", flush=True)
                time.sleep(1000)
            """),
            env=ENV,
            cwd=tmp_path,
            timeout=0.5,
        )
    )
    assert result.timed_out and result.exit_code == -signal.SIGKILL


def test_sigint_to_sandbox_is_forwarded_to_the_child(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    got = tmp_path / "got"

    def interrupt_when_ready() -> None:
        wait_file(ready)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to `sandbox`

    threading.Thread(target=interrupt_when_ready, daemon=True).start()
    result = spawn(
        ProcessSpec(
            py(f"""
                import os, pathlib, signal, sys, time
                def on_int(signum, frame):
                    pathlib.Path({str(got)!r}).write_text(str(signum))
                    sys.exit(130)
                signal.signal(signal.SIGINT, on_int)
                time.sleep(0.3)  # let spawn() finish installing its forwarding handler
                pathlib.Path({str(ready)!r}).write_text("1")
                time.sleep(30)
            """),
            env=ENV,
            cwd=tmp_path,
            timeout=20,
        )
    )
    assert got.read_text() == str(int(signal.SIGINT))
    assert result.interrupted == signal.SIGINT and result.exit_code == 130 and not result.timed_out
    # our own SIGINT handler is restored afterwards
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_forwarded_too(tmp_path: Path) -> None:
    ready = tmp_path / "ready"

    def terminate_when_ready() -> None:
        wait_file(ready)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_ready, daemon=True).start()
    result = spawn(
        ProcessSpec(
            py(f"""
                import pathlib, time
                time.sleep(0.3)
                pathlib.Path({str(ready)!r}).write_text('1')
                time.sleep(30)
            """),
            env=ENV,
            cwd=tmp_path,
            timeout=20,
        )
    )
    assert result.interrupted == signal.SIGTERM and result.exit_code == -signal.SIGTERM


def test_child_dies_when_sandbox_dies(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL the process that called spawn(); its CLI child must not outlive it."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen(
        py(f"""
            from pathlib import Path
            from sandbox.runtimes._process import ProcessSpec, spawn
            def on_line(line):
                Path({str(pid_file)!r}).write_text(line)
            spawn(ProcessSpec(["sh", "-c", "echo $$; exec sleep 1000"], env={{"PATH": "/usr/bin:/bin"}},
                              cwd=Path({str(tmp_path)!r})), on_line)
        """),
        cwd=Path(__file__).parents[2],
    )
    child = int(wait_file(pid_file))
    assert alive(child)
    parent.kill()
    parent.wait()
    assert wait_dead(child), "the CLI child outlived sandbox"


def test_a_grandchild_holding_the_pipe_cannot_hang_the_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    started = time.monotonic()
    result = spawn(
        ProcessSpec(
            ["sh", "-c", f"sleep 1000 & echo $! > {pid_file}; echo done"],
            env=ENV,
            cwd=tmp_path,
            timeout=60,
        )
    )
    assert result.stdout == "done" and result.exit_code == 0 and not result.timed_out
    assert time.monotonic() - started < DRAIN_SECONDS + 3
    assert wait_dead(int(pid_file.read_text()))


def test_missing_executable_raises(tmp_path: Path) -> None:
    try:
        spawn(ProcessSpec(["/nonexistent/cli"], env=ENV, cwd=tmp_path))
    except FileNotFoundError:
        return
    raise AssertionError("expected FileNotFoundError")
