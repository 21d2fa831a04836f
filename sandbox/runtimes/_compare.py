"""`compare`: the same Expert and query on several runtimes, one summary row each.

Why rows come from the event stream rather than from each runtime's internals: every runtime (native,
docker, CLI adapters, third-party plugins) emits the same Perstack events, so one observer reads the
outcome, steps and usage off the terminal event and its checkpoint, and a new runtime needs nothing
extra to appear in the table. CLI runtimes put the figures Perstack's `Usage` cannot hold (cost, turns,
"not reported" nulls) in `checkpoint.metadata.usage`; the observer prefers those when present.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox._errors import AdapterError, SandboxError

from ._base import Emit
from ._process import forward_signals
from ._registry import registry

if TYPE_CHECKING:
    from sandbox.events import EventBase
    from sandbox.options import RunOptions

__all__ = ["CompareRow", "compare"]

_OUTCOME_BY_ERROR = {"TimeoutError": "timeout", "Interrupted": "interrupted"}


@dataclass
class CompareRow:
    """One runtime's result. None means "not reported by this runtime", never zero."""

    runtime: str
    outcome: str = "not run"
    steps: int | None = None
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    wall_s: float = 0.0
    job_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "outcome": self.outcome,
            "steps": self.steps,
            "turns": self.turns,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "costUsd": self.cost_usd,
            "wallSeconds": round(self.wall_s, 3),
            "jobId": self.job_id,
            "error": self.error,
        }


class _Observer:
    """An `emit` that fills a row from the events passing through, then forwards them."""

    def __init__(self, row: CompareRow, forward: Emit | None) -> None:
        self.row = row
        self.forward = forward

    def __call__(self, event: EventBase) -> None:
        job_id = getattr(event, "job_id", None)
        if self.row.job_id is None and isinstance(job_id, str):
            self.row.job_id = job_id
        from sandbox.events import outcome_of  # loaded by the run already; not by importing this package

        checkpoint = getattr(event, "checkpoint", None)
        outcome = outcome_of(event.type)
        if outcome is not None and checkpoint is not None and checkpoint.delegated_by is None:
            self._terminal(outcome.label, checkpoint)
        if self.forward is not None:
            self.forward(event)

    def _terminal(self, label: str, checkpoint: Any) -> None:
        row = self.row
        row.outcome = label
        if checkpoint.error is not None:
            row.outcome = _OUTCOME_BY_ERROR.get(checkpoint.error.name, row.outcome)
            row.error = checkpoint.error.message
        row.steps = checkpoint.step_number
        usage = checkpoint.usage
        row.input_tokens = usage.input_tokens
        row.output_tokens = usage.output_tokens
        metadata = checkpoint.metadata or {}
        reported = metadata.get("usage")
        if isinstance(reported, Mapping):
            row.input_tokens = reported.get("inputTokens")
            row.output_tokens = reported.get("outputTokens")
            row.cost_usd = reported.get("costUsd")
            row.turns = reported.get("turns")


def _run_one(options: RunOptions, runtime_id: str, forward: Emit | None) -> CompareRow:
    row = CompareRow(runtime=runtime_id)
    observer = _Observer(row, forward)
    runtime = registry.get(runtime_id)
    started = time.monotonic()
    try:
        runtime.run(dataclasses.replace(options, runtime=runtime_id, job_id=None), observer)
    except AdapterError as exc:
        # Raised before any event: binary or credentials missing.
        row.outcome = "unavailable" if row.job_id is None else "error"
        row.error = str(exc)
    except SandboxError as exc:
        row.outcome = "error"
        row.error = str(exc)
    finally:
        row.wall_s = time.monotonic() - started
    return row


def compare(
    options: RunOptions,
    runtime_ids: Iterable[str],
    *,
    parallel: bool = False,
    emit: Emit | None = None,
) -> list[CompareRow]:
    """Run the Expert of `options` once per runtime and return one row per runtime, in the given order.

    Sequential by default (runs share the workspace, and parallel runs may step on each other's files);
    `parallel=True` runs them in threads. Unknown runtime ids raise `UserError` before anything runs; a
    runtime that is unavailable or fails yields a row saying so instead of stopping the comparison.
    `emit`, if given, receives every event of every run (thread-safe writers only when parallel).
    """
    ids = list(dict.fromkeys(runtime_ids))
    for runtime_id in ids:
        registry.get(runtime_id)  # fail fast on typos
    if not parallel or len(ids) < 2:
        return [_run_one(options, runtime_id, emit) for runtime_id in ids]
    lock = threading.Lock()

    def locked(event: EventBase) -> None:
        if emit is not None:
            with lock:
                emit(event)

    with forward_signals(), ThreadPoolExecutor(max_workers=len(ids)) as pool:
        futures = [pool.submit(_run_one, options, runtime_id, locked) for runtime_id in ids]
        return [future.result() for future in futures]
