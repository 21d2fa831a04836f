"""The native `perstack` runtime: run an Expert with an LLM provider, MCP skills, delegates and checkpoints.

Entry points (see docs/runtime.md for the full contract)::

    run_native(options, emit, *, store=DEFAULT_STORE, initial_checkpoint=None, request=None) -> int
    await run_native_async(options, emit, ...) -> int  # the same arguments
    load_checkpoint(path) -> Checkpoint

`emit` receives every event (the CLI writes them as JSONL on stdout). Job files are written through
`sandbox.jobs.JobStore` (`options.jobs_dir` by default); `store=None` disables storage (the docker executor
stores events on the host instead) and `initial_checkpoint` starts from a given checkpoint (a file the
host mounted) instead of looking one up. `request`: the run already resolved (`sandbox.request.RunRequest`;
inside the sandbox, the one the host resolved and sent on stdin), so nothing is resolved again. Exit codes:
0 for `completeRun` or a stop awaiting input, 1 for `stopRunByError`/`stopRunByExceededMaxSteps`, 130/143
after SIGINT/SIGTERM (skills closed, last checkpoint written). Bad input (unknown Expert, missing key, no
checkpoint) raises `sandbox.UserError` before any run.

This module imports nothing heavy: pydantic-ai, the SDKs and the MCP SDK load when a run starts.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sandbox.agent._job import Interrupt, RuntimeTuning
    from sandbox.events import Checkpoint, EventBase
    from sandbox.jobs import JobStore
    from sandbox.options import RunOptions
    from sandbox.request import RunRequest

__all__ = ["DEFAULT_STORE", "exit_code_for", "load_checkpoint", "run_native", "run_native_async"]


class _DefaultStore:
    def __repr__(self) -> str:
        return "DEFAULT_STORE"


DEFAULT_STORE: Final[Any] = _DefaultStore()
"""Sentinel: store job files under `options.jobs_dir` (pass `store=None` to store nothing)."""

_EXIT_BY_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


def exit_code_for(kind: str) -> int:
    """Exit code for an outcome kind (`completed`, `interactive`, `max_steps`, `error`): the one its
    terminal event declares (`sandbox.events.RunOutcome`), so a native and a docker run exit alike."""
    from sandbox.events import TERMINAL_OUTCOMES

    return next((o.exit_code for o in TERMINAL_OUTCOMES.values() if o.kind == kind), 1)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint JSON file (as written in `checkpoints/<id>.json`) to start a run from it."""
    from sandbox._errors import UserError
    from sandbox.events import Checkpoint

    try:
        return Checkpoint.model_validate_json(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise UserError(f"Cannot read checkpoint {path}: {exc}") from None


def _store_for(options: RunOptions, store: JobStore | Any | None) -> JobStore | None:
    if store is DEFAULT_STORE:
        from sandbox.jobs import JobStore

        return JobStore(options.jobs_dir)
    return store


async def run_native_async(
    options: RunOptions,
    emit: Callable[[EventBase], None],
    *,
    store: JobStore | Any | None = DEFAULT_STORE,
    initial_checkpoint: Checkpoint | None = None,
    request: RunRequest | None = None,
    tuning: RuntimeTuning | None = None,
    interrupt: Interrupt | None = None,
) -> int:
    """Async twin of `run_native` without signal handling: cancelling it stops the run cleanly
    (a `stopRunByError` "Interrupted" checkpoint is emitted and skills are closed) and re-raises."""
    from sandbox.agent._job import run_job

    outcome = await run_job(
        options,
        emit,
        store=_store_for(options, store),
        initial_checkpoint=initial_checkpoint,
        request=request,
        tuning=tuning,
        interrupt=interrupt,
    )
    return exit_code_for(outcome.kind)


def run_native(
    options: RunOptions,
    emit: Callable[[EventBase], None],
    *,
    store: JobStore | Any | None = DEFAULT_STORE,
    initial_checkpoint: Checkpoint | None = None,
    request: RunRequest | None = None,
    tuning: RuntimeTuning | None = None,
) -> int:
    """Run one Expert to completion (or a stop) in a fresh event loop and return the exit code.

    SIGINT/SIGTERM cancel the run: the current checkpoint is emitted and stored, every skill process is
    closed, and 130/143 is returned.
    """
    from sandbox._startup import resume_gc
    from sandbox.agent._job import Interrupt

    resume_gc()  # start-up (imports) is over: collection back on, the start-up heap frozen
    interrupt = Interrupt()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            if interrupt.signal_name is None:
                interrupt.signal_name = sig.name
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
                pass
        try:
            return await run_native_async(
                options,
                emit,
                store=store,
                initial_checkpoint=initial_checkpoint,
                request=request,
                tuning=tuning,
                interrupt=interrupt,
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if interrupt.signal_name is not None:
            return _EXIT_BY_SIGNAL.get(interrupt.signal_name, 130)
        raise
    except KeyboardInterrupt:
        return 130
