"""Build progress: a live display on stderr for people, `dockerBuildProgress` events for programs.

Why two reporters behind one small protocol: the build code reports what happens (a step started, a log
line, a build ended) once, and does not care who listens. `ConsoleBuildReporter` draws a rich progress bar
per image when stderr is a terminal and prints one plain line per step otherwise (CI logs stay readable);
`EventBuildReporter` turns the same calls into events on stdout, only with `--verbose` as in Perstack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Protocol

from sandbox.events import DockerBuildProgress, EventBase

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "BuildReporter",
    "ConsoleBuildReporter",
    "EventBuildReporter",
    "NullReporter",
    "TeeReporter",
]


class BuildReporter(Protocol):
    """What a build tells its audience. Called from build threads; implementations must be thread-safe."""

    def begin(self, service: str, tag: str) -> None: ...

    def step(self, service: str, number: int, total: int, text: str) -> None: ...

    def log(self, service: str, line: str) -> None: ...

    def end(self, service: str, ok: bool, message: str) -> None: ...

    def close(self) -> None: ...


class NullReporter:
    """Reports nothing (tests, `--quiet` callers)."""

    def begin(self, service: str, tag: str) -> None:
        pass

    def step(self, service: str, number: int, total: int, text: str) -> None:
        pass

    def log(self, service: str, line: str) -> None:
        pass

    def end(self, service: str, ok: bool, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class TeeReporter:
    """Forwards every call to several reporters."""

    def __init__(self, *reporters: BuildReporter) -> None:
        self._reporters = reporters

    def begin(self, service: str, tag: str) -> None:
        for r in self._reporters:
            r.begin(service, tag)

    def step(self, service: str, number: int, total: int, text: str) -> None:
        for r in self._reporters:
            r.step(service, number, total, text)

    def log(self, service: str, line: str) -> None:
        for r in self._reporters:
            r.log(service, line)

    def end(self, service: str, ok: bool, message: str) -> None:
        for r in self._reporters:
            r.end(service, ok, message)

    def close(self) -> None:
        for r in self._reporters:
            r.close()


class EventBuildReporter:
    """`dockerBuildProgress` events: one per step and log line (stage `building`), then `complete`/`error`."""

    def __init__(self, emit: Callable[[EventBase], None], *, job_id: str, run_id: str) -> None:
        self._emit = emit
        self._job_id = job_id
        self._run_id = run_id

    def _event(self, stage: str, service: str, message: str, progress: float | None = None) -> None:
        self._emit(
            DockerBuildProgress(
                job_id=self._job_id,
                run_id=self._run_id,
                stage=stage,
                service=service,
                message=message,
                progress=progress,
            )
        )

    def begin(self, service: str, tag: str) -> None:
        self._event("building", service, f"Building {tag}")

    def step(self, service: str, number: int, total: int, text: str) -> None:
        self._event("building", service, f"Step {number}/{total} : {text}", number / total if total else None)

    def log(self, service: str, line: str) -> None:
        self._event("building", service, line)

    def end(self, service: str, ok: bool, message: str) -> None:
        self._event("complete" if ok else "error", service, message, 1.0 if ok else None)

    def close(self) -> None:
        pass


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class ConsoleBuildReporter:
    """Human progress on stderr: a live bar per image on a terminal, one line per step elsewhere."""

    def __init__(self, stream: IO[str] | None = None, *, force_terminal: bool | None = None) -> None:
        from rich.console import Console

        self._console: Console = Console(
            file=stream, stderr=stream is None, force_terminal=force_terminal, highlight=False, soft_wrap=True
        )
        self._live = self._console.is_terminal
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}

    def _ensure_progress(self) -> Progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        if self._progress is None:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[service]:<7}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self._console,
                transient=False,
            )
            self._progress.start()
        return self._progress

    def begin(self, service: str, tag: str) -> None:
        with self._lock:
            self._started[service] = time.monotonic()
            if self._live:
                progress = self._ensure_progress()
                self._tasks[service] = progress.add_task(f"building {tag}", total=None, service=service)
            else:
                self._console.print(f"building the {service} image {tag}")

    def step(self, service: str, number: int, total: int, text: str) -> None:
        with self._lock:
            if self._live and service in self._tasks and self._progress is not None:
                self._progress.update(
                    self._tasks[service], total=total, completed=number - 1, description=_short(text, 60)
                )
            elif not self._live:
                self._console.print(f"  {service} step {number}/{total}: {_short(text, 100)}")

    def log(self, service: str, line: str) -> None:
        pass  # too many lines for a human; they end up in BuildError's tail when something fails

    def end(self, service: str, ok: bool, message: str) -> None:
        with self._lock:
            seconds = time.monotonic() - self._started.get(service, time.monotonic())
            if self._live and service in self._tasks and self._progress is not None:
                task = self._tasks[service]
                total = self._progress.tasks[task].total or 1
                self._progress.update(
                    task,
                    completed=total if ok else None,
                    description=("done" if ok else "FAILED") + f" ({seconds:.0f}s)",
                )
            else:
                self._console.print(
                    f"{'built' if ok else 'FAILED'} the {service} image in {seconds:.1f}s"
                    + ("" if ok else f": {message}")
                )

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
