"""Garbage collection during start-up: off while the modules import, frozen once they have.

Why: a run's start-up creates a few hundred thousand long-lived objects (pydantic-ai, a provider SDK, their
pydantic schemas, the Docker SDK on the host). With the collector on, CPython runs collection after
collection over that growing heap during the imports, and none of them can free anything: modules live as
long as the process. Measured: ~0.2 s of a fresh sandbox's start inside the container, ~0.05 s of the host
CLI's. `gc.freeze()` afterwards moves the start-up heap to the permanent generation, so the collections the
run itself triggers never rescan it (the pattern CPython's docs give for `gc.freeze`).

The entry point pauses; whoever knows start-up is over (the runtime when a run begins, the docker executor
once the containers are up, a standby before it reports ready) resumes. A timer resumes anyway after
`MAX_PAUSE_S`, so a command that never says so cannot run long without a collector.
"""

from __future__ import annotations

import gc
import sys
import threading

__all__ = ["MAX_PAUSE_S", "pause_gc", "resume_gc", "skip_unused_modules"]

MAX_PAUSE_S = 10.0
_timer: threading.Timer | None = None


def pause_gc(max_s: float = MAX_PAUSE_S) -> None:
    """Turn automatic collection off until `resume_gc` (or for at most `max_s` seconds)."""
    global _timer  # noqa: PLW0603 - one process-wide pause
    if not gc.isenabled():
        return
    gc.disable()
    _timer = threading.Timer(max_s, resume_gc)
    _timer.daemon = True
    _timer.name = "sandbox-gc-resume"
    _timer.start()


def resume_gc(*, collect: bool = False) -> None:
    """End the pause: optionally collect first (what start-up left as garbage), freeze, turn collection on.

    `collect` costs ~0.05 s on a full heap; it is for a process that has the time (a standby sandbox before
    it reports ready), so the garbage is freed instead of frozen. A no-op when collection is already on.
    """
    global _timer
    if gc.isenabled():
        return
    timer, _timer = _timer, None
    if timer is not None:
        timer.cancel()
    if collect:
        gc.collect()
    gc.freeze()
    gc.enable()


# Modules no command uses that a dependency imports eagerly when they happen to be installed. httpx's
# `__init__` imports its command-line client (`httpx._main`, which pulls in rich, pygments and click: ~0.05 s
# of every sandbox start) whenever those are importable, and falls back to a stub `main` when the import
# fails. A None entry in `sys.modules` is Python's documented way to make an import fail.
_UNUSED_MODULES = ("httpx._main",)


def skip_unused_modules() -> None:
    """Make the imports in `_UNUSED_MODULES` fail fast (unless one was imported already)."""
    for name in _UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
