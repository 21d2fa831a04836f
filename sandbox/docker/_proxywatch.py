"""`ProxyWatch`: the host following the proxy's output while the Expert runs.

The proxy is the sandbox's only way out, so its output is both evidence and a health signal: each access
line becomes a `proxyAccess` event (and a line in the run's audit file, `_proxylog_feed`), its ready line
says it accepts connections, its last lines explain a failed start, and its exit mid-run stops the Expert
at once instead of letting it retry into a wall.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from sandbox._errors import DockerError
from sandbox.events import EventBase

from ._backend import AttachedStream
from ._lines import LineSplitter
from ._proxylog_feed import ProxyFeed
from ._session import SandboxSession

__all__ = ["ProxyWatch"]


class ProxyWatch:
    """What the host knows about the proxy; `follow` runs on a session thread per attached stream.

    `ids()`: the job and run id events are tagged with (the run id changes once the container's
    coordinator run is known). `on_death`: called when the proxy's stream ends while the Expert's container
    exists and the session is not being torn down.
    """

    def __init__(
        self,
        session: SandboxSession,
        feed: ProxyFeed,
        *,
        ids: Callable[[], tuple[str, str]],
        emit: Callable[[EventBase], None],
        status: Callable[[str, str, str | None], None],
        diag: Callable[[str], None],
        verbose: bool,
        on_death: Callable[[], None],
    ) -> None:
        self.session = session
        self.feed = feed
        self._ids, self._emit, self._status, self._diag = ids, emit, status, diag
        self._verbose = verbose
        self._on_death = on_death
        self.ready = threading.Event()
        self.exited = threading.Event()
        self.died = False
        self.tail: deque[str] = deque(maxlen=30)
        self.last_line = 0.0

    def watch(self, stream: AttachedStream) -> None:
        """Follow `stream` on a session thread."""
        self.session.thread(lambda: self.follow(stream), "sandbox-proxy-log")

    def follow(self, stream: AttachedStream) -> None:
        splitter = LineSplitter()
        try:
            for _, chunk in stream.frames():
                for line in splitter.feed(chunk):
                    self._line(line)
            for line in splitter.flush():
                self._line(line)
        except DockerError:
            pass
        finally:
            self.exited.set()
            if not self.session.finishing.is_set() and self.session.containers.get("expert"):
                self.died = True
                self._on_death()

    def _line(self, line: str) -> None:
        self.last_line = time.monotonic()
        self.tail.append(line)
        job_id, run_id = self._ids()
        access = self.feed.line(line, job_id=job_id, run_id=run_id)
        if access is not None:
            self._emit(access)
        elif self.feed.is_ready(line):
            self.ready.set()
            self._status("proxy", "healthy", "accepting connections")
        elif self._verbose:
            self._diag(f"proxy: {line}")

    def drain(self) -> None:
        """Give the proxy a moment to log the Expert's last connections (it logs a tunnel when it closes)."""
        if "proxy" not in self.session.containers or self.exited.is_set():
            return
        end = time.monotonic() + 0.25
        while time.monotonic() < end:
            if time.monotonic() - self.last_line > 0.03:
                return
            time.sleep(0.01)
