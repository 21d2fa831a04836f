"""Process control for CLI runtimes: one child per run, in its own process group, killed as a group.

Why this exists instead of a bare `subprocess.run`:

* coding-agent CLIs start grandchildren (MCP servers, shells, language servers). Killing only the CLI
  leaves those running, so the child gets its own session (`start_new_session=True`) and every kill is a
  `killpg` of that group: SIGTERM first, SIGKILL after a grace period.
* none of the CLIs has a wall-clock limit, and several hang on network errors (OpenCode, Codex), so the
  timeout is ours and is reported as an explicit value (`ProcessResult.timed_out`), never as a magic code.
* the child is in another process group, so the terminal's Ctrl-C no longer reaches it: SIGINT and
  SIGTERM received by `sandbox` are forwarded to the group.
* if `sandbox` itself dies (SIGKILL, OOM), the child must not keep running unattended: on Linux the child
  asks the kernel for PR_SET_PDEATHSIG=SIGKILL before exec.
* stdin is /dev/null: Codex and Gemini append piped stdin to the prompt, OpenCode blocks reading it.

`Spawner` is the seam tests use: a function taking a `ProcessSpec` and two line callbacks and returning a
`ProcessResult`. `spawn` is the real one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Protocol

__all__ = [
    "DRAIN_SECONDS",
    "KILL_GRACE_SECONDS",
    "LineHandler",
    "ProcessResult",
    "ProcessSpec",
    "Spawner",
    "capture",
    "forward_signals",
    "spawn",
]

KILL_GRACE_SECONDS = 3.0
"""Seconds between SIGTERM and SIGKILL when a process group is stopped."""

DRAIN_SECONDS = 2.0
"""After the CLI exits, how long its leftover process group may keep the output pipes open."""

_STDERR_KEEP = 256 * 1024
_PR_SET_PDEATHSIG = 1

LineHandler = Callable[[str], None]


@dataclass(frozen=True)
class ProcessSpec:
    """What to run. `env` is the complete environment (nothing is inherited); `timeout` is in seconds."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    timeout: float | None = None


@dataclass(frozen=True)
class ProcessResult:
    """How a child ended.

    `exit_code` is the child's own code, or `-N` when it died from signal N (subprocess convention).
    `timed_out` is True when *we* stopped it because `timeout` elapsed; `interrupted` is the signal we
    forwarded (SIGINT/SIGTERM) when `sandbox` itself was asked to stop. `stdout` holds the output only
    when no stdout handler was given (capture mode); `stderr` keeps the last 256 KiB.
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    interrupted: int | None = None
    duration_s: float = 0.0
    pid: int | None = None


class Spawner(Protocol):
    """Runs one process to completion, feeding each output line to the handlers as it arrives."""

    def __call__(
        self,
        spec: ProcessSpec,
        on_stdout: LineHandler | None = None,
        on_stderr: LineHandler | None = None,
    ) -> ProcessResult: ...


def _set_parent_death_signal(parent_pid: int) -> Callable[[], None]:
    """Build the pre-exec hook that ties the child's life to ours (Linux only; a no-op elsewhere).

    The kernel sends the signal when the *thread* that forked dies, so `spawn` waits in the thread that
    started the child. The getppid check closes the race where the parent died before prctl ran.
    """

    def hook() -> None:
        if not sys.platform.startswith("linux"):
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - musl without prctl symbol, etc.
            return
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reader(stream: IO[bytes], name: str, sink: queue.Queue[tuple[str, str | None]]) -> None:
    """Push decoded lines to `sink`, then a `None` sentinel; decoding is lenient (invalid UTF-8 is kept)."""
    try:
        for raw in iter(stream.readline, b""):
            sink.put((name, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    except (OSError, ValueError):  # pragma: no cover - pipe closed under us
        pass
    finally:
        sink.put((name, None))


_live_lock = threading.Lock()
_live: dict[int, list[int]] = {}
"""Process groups of running children -> signals forwarded to each (for `interrupted`)."""


def _forward(signum: int, _frame: FrameType | None) -> None:
    with _live_lock:
        groups = list(_live.items())
    for pgid, received in groups:
        received.append(signum)
        _killpg(pgid, signum)


@contextlib.contextmanager
def forward_signals() -> Iterator[None]:
    """While active, SIGINT/SIGTERM received by `sandbox` go to every running child's process group.

    `spawn` enters it itself when called on the main thread; code that spawns from worker threads
    (`compare --parallel`) wraps the whole pool in it on the main thread, since Python only lets the
    main thread install signal handlers. Nested use is harmless.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spawn(
    spec: ProcessSpec,
    on_stdout: LineHandler | None = None,
    on_stderr: LineHandler | None = None,
) -> ProcessResult:
    """Run `spec` to completion in its own process group; see the module docstring for the guarantees.

    Handlers are called on the calling thread, in arrival order, so callers need no locking. When the
    CLI exits, whatever is left of its process group (an MCP server that ignored EOF) is killed after
    `DRAIN_SECONDS`, so a lingering grandchild holding the pipe open cannot hang the run.
    Raises `FileNotFoundError`/`PermissionError` when the executable cannot be started.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        list(spec.argv),
        cwd=spec.cwd,
        env=dict(spec.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_set_parent_death_signal(os.getpid()),  # noqa: PLW1509 - the only way to set PDEATHSIG
    )
    pgid = proc.pid  # start_new_session: the child leads its own group
    received: list[int] = []
    with _live_lock:
        _live[pgid] = received
    try:
        with forward_signals():
            code, timed_out, out, err = _supervise(proc, spec.timeout, received, on_stdout, on_stderr)
    finally:
        with _live_lock:
            _live.pop(pgid, None)
        # The leader is gone; nothing of its group may outlive the run.
        _killpg(pgid, signal.SIGKILL)
    return ProcessResult(
        exit_code=code,
        stdout="\n".join(out),
        stderr="\n".join(err),
        timed_out=timed_out,
        interrupted=received[0] if received else None,
        duration_s=time.monotonic() - started,
        pid=proc.pid,
    )


def _supervise(
    proc: subprocess.Popen[bytes],
    timeout: float | None,
    received: list[int],
    on_stdout: LineHandler | None,
    on_stderr: LineHandler | None,
) -> tuple[int, bool, list[str], list[str]]:
    """Pump output to the handlers while enforcing the timeout and the kill escalation."""
    assert proc.stdout is not None and proc.stderr is not None
    pgid = proc.pid
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    for stream, name in ((proc.stdout, "out"), (proc.stderr, "err")):
        threading.Thread(target=_reader, args=(stream, name, lines), daemon=True).start()
    out: list[str] = []
    err: list[str] = []
    err_size = 0
    timed_out = False
    deadline = time.monotonic() + timeout if timeout else None
    kill_at: float | None = None  # when a SIGTERM/SIGINT escalates to SIGKILL
    exited_at: float | None = None
    open_streams = 2
    while open_streams:
        now = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if deadline is not None and now >= deadline and not timed_out and exited_at is None:
            timed_out = True
            _killpg(pgid, signal.SIGTERM)
        if (timed_out or received) and kill_at is None:
            kill_at = now + KILL_GRACE_SECONDS
        if kill_at is not None and now >= kill_at:
            _killpg(pgid, signal.SIGKILL)
        if exited_at is not None and now - exited_at >= DRAIN_SECONDS:
            _killpg(pgid, signal.SIGKILL)
            if now - exited_at >= DRAIN_SECONDS + 1:
                break  # a grandchild left the group and still holds a pipe: stop waiting for it
        try:
            name, line = lines.get(timeout=0.05)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
        elif name == "out":
            if on_stdout is None:
                out.append(line)
            else:
                on_stdout(line)
        else:
            err.append(line)
            err_size += len(line) + 1
            while err_size > _STDERR_KEEP and len(err) > 1:
                err_size -= len(err.pop(0)) + 1
            if on_stderr is not None:
                on_stderr(line)
    return proc.wait(), timed_out, out, err


def capture(argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 10.0) -> ProcessResult:
    """Run a short probe (`--version`) and capture its output; same isolation rules as `spawn`."""
    return spawn(ProcessSpec(argv=argv, env=env, cwd=Path(env.get("HOME") or "/"), timeout=timeout))
