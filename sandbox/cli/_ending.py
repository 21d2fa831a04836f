"""Why a failed run ended, in one line on stderr (stdout stays JSON).

The reason is in the terminal event (`stopRunByError`'s error, `stopRunByExceededMaxSteps`' step), which a
person at a terminal does not read; without this line a failed run exits 1 with an empty stderr. Only the
last terminal event counts: a delegate's ending is not the run's.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.events import EventBase, RunEventBase, StopRunByError, StopRunByExceededMaxSteps

__all__ = ["EndingWatch"]


class EndingWatch:
    """An `emit` that passes every event on and remembers the last one that ended a run."""

    def __init__(self, emit: Callable[[EventBase], None]) -> None:
        self._emit = emit
        self.last: RunEventBase | None = None

    def __call__(self, event: EventBase) -> None:
        self._emit(event)
        if isinstance(event, RunEventBase) and type(event).outcome is not None:
            self.last = event

    def line(self, exit_code: int) -> str | None:
        """The stderr line for a run that exited with `exit_code`; None when there is nothing to add."""
        event = self.last
        if exit_code == 0 or event is None:
            return None
        resume = f"`sandbox run {event.expert_key} ... --continue-job {event.job_id}` resumes it"
        if isinstance(event, StopRunByError):
            error = event.error
            status = f" (HTTP {error.status_code})" if error.status_code else ""
            return f"error: the run stopped on an error: {error.name}{status}: {error.message}; {resume}"
        if isinstance(event, StopRunByExceededMaxSteps):
            return (
                f"error: the run reached its step limit ({event.step_number} steps) before completing; "
                f"raise --max-steps, and {resume}"
            )
        return None
