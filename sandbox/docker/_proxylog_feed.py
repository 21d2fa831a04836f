"""The proxy's log during a run: `proxyAccess` events, and an audit file stored with the job.

Parsing one line is the proxy's business (`sandbox.docker._proxylog.parse_proxy_log_line`, next to the
Squid `logformat` it reads); this module only feeds lines through it, turns each decision into a
`ProxyAccess` event for the stream, and appends it to `<jobs>/<jobId>/runs/<runId>/proxy-access.jsonl`.
Lines that arrive before the run id is known (the container's first event names it) are held and written
once it is. The audit file is JSON lines, one decision each, with the machine reason code, the method, the
proxy's status and the raw log line, so a reviewer can see what the sandbox tried to reach even when nobody
watched the stream.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sandbox.events import ProxyAccess
from sandbox.jobs import JobStore

from . import _proxylog

__all__ = ["AUDIT_FILE", "ProxyFeed"]

AUDIT_FILE = "proxy-access.jsonl"


class ProxyFeed:
    """Proxy log lines -> ProxyAccess events + audit lines. Thread-safe.

    `parse` is injectable (tests); by default the proxy's own parser.
    """

    def __init__(self, parse: Callable[[str], _proxylog.ProxyAccess | None] | None = None) -> None:
        self._parse = parse or _proxylog.parse_proxy_log_line
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._file: IO[str] | None = None
        self.path: Path | None = None
        self.count = 0

    @staticmethod
    def is_ready(line: str) -> bool:
        return _proxylog.is_proxy_ready_line(line)

    def line(self, line: str, *, job_id: str, run_id: str) -> ProxyAccess | None:
        decision = self._parse(line)
        if decision is None:
            return None
        event = ProxyAccess(
            job_id=job_id,
            run_id=run_id,
            action=decision.action,
            domain=decision.domain,
            port=decision.port,
            reason=decision.reason,
        )
        audit = {
            **event.model_dump(mode="json"),
            "code": decision.code,
            "method": decision.method,
            "status": decision.status,
            "raw": line.strip(),
        }
        record = json.dumps(audit, separators=(",", ":"))
        with self._lock:
            self.count += 1
            if self._file is None:
                self._pending.append(record)
            else:
                self._file.write(record + "\n")
                self._file.flush()
        return event

    def set_run(self, store: JobStore, job_id: str, run_id: str) -> None:
        """Start writing the audit file of this run (and what was held until now)."""
        with self._lock:
            if self._file is not None:
                return
            try:
                directory = store.run_dir(job_id, run_id)
                directory.mkdir(parents=True, exist_ok=True)
                self.path = directory / AUDIT_FILE
                self._file = self.path.open("a", encoding="utf-8")
            except (OSError, ValueError):
                self._file = None
                return
            for record in self._pending:
                self._file.write(record + "\n")
            self._pending.clear()
            self._file.flush()

    def close(self, fallback: tuple[JobStore, str, str] | None = None) -> None:
        """Flush and close; held lines go to `fallback` (store, job, run) if no run id ever arrived."""
        if self._file is None and self._pending and fallback is not None:
            self.set_run(*fallback)
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
