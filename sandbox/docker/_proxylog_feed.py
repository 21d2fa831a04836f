"""The proxy's log during a run: `proxyAccess` events, and an audit file stored with the job.

Parsing one line is the proxy's business (`sandbox.docker._proxylog.parse_proxy_log_line`, next to the
Squid `logformat` it reads); this module only feeds lines through it, turns each decision into a
`ProxyAccess` event for the stream, and appends it to `<jobs>/<jobId>/runs/<runId>/proxy-access.jsonl`.
Lines that arrive before the run id is known (the container's first event names it) are held and written
once it is. The audit file is JSON lines, one decision each, with the raw log line, so a reviewer can see
what the sandbox tried to reach even when nobody watched the stream.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from sandbox.events import ProxyAccess
from sandbox.jobs import JobStore

__all__ = ["AUDIT_FILE", "ProxyFeed"]

AUDIT_FILE = "proxy-access.jsonl"
_READY = "event=ready"


def _fallback_parse(line: str) -> dict[str, Any] | None:
    """A minimal reader of the `sandbox-proxy/1 key=value ...` access lines, used only if the proxy's own
    parser is not installed (it is part of the same package; this keeps a partial checkout working)."""
    if not line.startswith("sandbox-proxy/1 ") or " method=" not in line:
        return None
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    action, status = fields.get("action", ""), fields.get("status", "")
    blocked = "DENIED" in action or status == "403"
    allowed = not blocked and (status == "200" or action.startswith("TCP_TUNNEL"))
    host = fields.get("host", "")
    if not (blocked or allowed) or not host or host == "-":
        return None
    port = fields.get("port", "")
    reason = fields.get("reason")
    return {"action": "blocked" if blocked else "allowed", "domain": host,
            "port": int(port) if port.isdigit() else 443,
            "reason": None if reason in (None, "", "-") else reason}


def _default_parser() -> Callable[[str], Any]:
    try:
        from ._proxylog import parse_proxy_log_line
    except ImportError:
        return _fallback_parse
    return parse_proxy_log_line


def _decision(parsed: Any) -> tuple[str, str, int, str | None] | None:
    """(action, domain, port, reason) from whatever the parser returns (a model, a dataclass or a mapping)."""
    if parsed is None:
        return None
    get: Callable[[str], Any]
    if isinstance(parsed, Mapping):
        get = parsed.get
    else:
        def get(name: str) -> Any:
            return getattr(parsed, name, None)
    action, domain, port = get("action"), get("domain"), get("port")
    if action not in ("allowed", "blocked") or not domain or port is None:
        return None
    reason = get("reason")
    return str(action), str(domain), int(port), (str(reason) if reason else None)


class ProxyFeed:
    """Proxy log lines -> ProxyAccess events + audit lines. Thread-safe."""

    def __init__(self, parse: Callable[[str], Any] | None = None) -> None:
        self._parse = parse or _default_parser()
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._file: IO[str] | None = None
        self.path: Path | None = None
        self.count = 0

    @staticmethod
    def is_ready(line: str) -> bool:
        return line.startswith("sandbox-proxy/") and _READY in line.split()

    def line(self, line: str, *, job_id: str, run_id: str) -> ProxyAccess | None:
        try:
            found = _decision(self._parse(line))
        except (ValueError, TypeError):
            found = None
        if found is None:
            return None
        action, domain, port, reason = found
        event = ProxyAccess(job_id=job_id, run_id=run_id, action=action,
                            domain=domain, port=port, reason=reason)
        record = json.dumps({**event.model_dump(mode="json"), "raw": line}, separators=(",", ":"))
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
