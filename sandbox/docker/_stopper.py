"""`Stopper`: why a run is being stopped, and the one thread that stops its Expert.

Signal handlers run on the main thread between two bytecodes, possibly while it holds a lock (the thread
pool's, the HTTP pool's). So they, the wall-clock timer and the quota watcher only put a request on a
`SimpleQueue`, whose `put` is documented reentrant and safe in signal handlers; the stopper thread does the
engine calls. What was asked is kept as events, which decide the run's outcome afterwards.
"""

from __future__ import annotations

import queue
import threading

from ._session import SandboxSession

__all__ = ["Stopper"]


class Stopper:
    """Stops the session's `expert` container on request: gently (SIGTERM, then SIGKILL after `grace`:
    the runtime writes its last checkpoint, so `--continue` works after Ctrl-C) or at once."""

    def __init__(self, session: SandboxSession, *, grace: float) -> None:
        self.session = session
        self.grace = grace
        self.cancel = threading.Event()  # SIGINT/SIGTERM: the user stopped the run
        self.timed_out = threading.Event()  # the wall-clock guard fired
        self.quota_hit = threading.Event()  # the workspace write bound was exceeded
        self._requests: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # Requests: safe from a signal handler or any thread.

    def on_signal(self, signum: int) -> None:
        self._requests.put("signal")

    def on_repeat(self, signum: int) -> None:
        self._requests.put("kill")

    def on_timeout(self) -> None:
        self._requests.put("timeout")

    def on_quota(self) -> None:
        self._requests.put("quota")

    @property
    def stopped(self) -> bool:
        """Whether the run was stopped from outside (signal, timeout, quota) rather than ending itself."""
        return self.cancel.is_set() or self.timed_out.is_set() or self.quota_hit.is_set()

    # The Expert's container.

    def stop_expert(self) -> None:
        """Ask the Expert to stop (SIGTERM: it writes its last checkpoint), kill it after the grace."""
        self.session.signal("expert", "SIGTERM")
        self.session.timer(self.grace, self.kill_expert)

    def kill_expert(self) -> None:
        self.session.signal("expert", "SIGKILL")

    # The thread.

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="sandbox-stopper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._requests.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            if request == "signal":
                self.cancel.set()  # first, so the main thread sees it once it records containers
                self.stop_expert()
            elif request == "timeout":
                self.timed_out.set()
                self.stop_expert()
            elif request == "quota":
                self.quota_hit.set()  # the disk is filling: no grace
                self.kill_expert()
            else:
                self.kill_expert()
