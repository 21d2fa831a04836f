"""SIGINT/SIGTERM during a docker run: remember the exit code, stop the sandbox fast, let teardown run.

The shape is gh-aw-firewall's `signal-handler.ts`: SIGINT maps to 130 and SIGTERM to 143; the handler itself
only records the signal and calls an injected `on_signal` (which asks the Expert to stop and arms a short
kill timer); the run's own `finally` then tears everything down. A second signal calls `on_repeat` (kill
now). Nothing is raised from the handler, so teardown can never be interrupted half-way by it.

Dependencies (the `signal` module, the callbacks) are injected, so tests drive it without real signals.
"""

from __future__ import annotations

import signal as _signal
import threading
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

__all__ = ["EXIT_CODES", "SignalGuard"]

EXIT_CODES: dict[int, int] = {int(_signal.SIGINT): 130, int(_signal.SIGTERM): 143}


class SignalGuard:
    """Context manager installing the handlers (main thread only) and restoring the previous ones on exit.

    **Parameters:**

    * `on_signal(signum)`: first signal; must return at once and take no lock the interrupted code may hold
      (e.g. put a request on a `queue.SimpleQueue`, whose `put` is safe in signal handlers).
    * `on_repeat(signum)`: every further signal.
    * `install`: False to skip installing (not the main thread, or tests calling `handle` directly).
    * `signal_module`: the `signal` module or a stand-in.
    """

    def __init__(
        self,
        on_signal: Callable[[int], None],
        on_repeat: Callable[[int], None] | None = None,
        *,
        install: bool = True,
        signal_module: ModuleType | Any = _signal,
    ) -> None:
        self._on_signal = on_signal
        self._on_repeat = on_repeat
        self._install = install
        self._signal = signal_module
        self._previous: dict[int, Any] = {}
        self.received: int | None = None
        self.count = 0

    @property
    def exit_code(self) -> int | None:
        """130 after SIGINT, 143 after SIGTERM, None if no signal arrived."""
        return None if self.received is None else EXIT_CODES.get(self.received, 128 + self.received)

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The handler: first signal -> on_signal, later ones -> on_repeat.

        Takes no lock: it runs on the main thread between two bytecodes, possibly inside a critical section
        of that same thread, and a second signal may arrive while the first is being handled.
        """
        self.count += 1
        first = self.received is None
        if first:
            self.received = signum
        if first:
            self._on_signal(signum)
        elif self._on_repeat is not None:
            self._on_repeat(signum)

    def __enter__(self) -> SignalGuard:
        if self._install and threading.current_thread() is threading.main_thread():
            for sig in (self._signal.SIGINT, self._signal.SIGTERM):
                self._previous[int(sig)] = self._signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            self._signal.signal(signum, previous)
        self._previous.clear()
