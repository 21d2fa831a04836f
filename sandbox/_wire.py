"""The container -> host event wire: every runtime event line carries a sequence number and an HMAC.

Why: the Expert's container stdout is shared by everything in the container that can get a descriptor to
it (the container's init, PID 1, holds it too), so a line on it proves nothing about who wrote it. The
host makes a random 256-bit key per run and sends it inside the stdin payload (`"eventKey"`, never argv,
env, labels or files); the runtime, non-dumpable so no peer can read the key from its memory
(`sandbox._hardening`), signs each line; the host (`docker/_pump.EventPump`) drops and reports any line
without a valid MAC. The sequence number (0, 1, 2, ... in the MAC) makes a replayed or reordered line
invalid, and a gap visible: a lost line (a tampered one, or one cut by the line-size limit) is reported
and fails the run, since its record is incomplete.

Line format (one per event, newline-terminated; the event JSON is exactly what the user-facing stdout
shows, so nothing is re-serialised)::

    sbx1 <seq> <hex HMAC-SHA256(key, "<seq>\\n" + json)> <json>

Only this hop changes: `sandbox run`'s own stdout stays plain Perstack JSON lines. Standard library only
(the audit's probe program signs its control line with it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import IO, Any, Literal

__all__ = ["PREFIX", "Verdict", "WireReader", "WireWriter", "new_key", "sign_line"]

PREFIX = "sbx1"
_KEY_BYTES = 32


def new_key() -> str:
    """A fresh per-run key, hex-encoded for the JSON payload."""
    return secrets.token_hex(_KEY_BYTES)


def _key(key: str) -> bytes:
    raw = bytes.fromhex(key)
    if len(raw) < 16:
        raise ValueError("event key too short")
    return raw


def _mac(key: bytes, seq: int, body: str) -> str:
    return hmac.new(key, f"{seq}\n".encode() + body.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_line(key: str, seq: int, body: str) -> str:
    """One wire line (without the newline) for event JSON `body` at sequence number `seq`."""
    return f"{PREFIX} {seq} {_mac(_key(key), seq, body)} {body}"


class WireWriter:
    """The container side: writes events signed and numbered, one line each, flushed (thread-safe).

    Drop-in for `sandbox.events.JsonlWriter`: callable with an event.
    """

    def __init__(self, stream: IO[str], key: str) -> None:
        self._stream = stream
        self._key = _key(key)
        self._seq = 0
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        self.write(event)

    def write(self, event: Any) -> None:
        from sandbox.events import event_to_json

        self.write_json(event_to_json(event))

    def write_json(self, body: str) -> None:
        with self._lock:
            seq = self._seq
            self._seq += 1
            self._stream.write(f"{PREFIX} {seq} {_mac(self._key, seq, body)} {body}\n")
            self._stream.flush()


Problem = Literal["unsigned", "bad-mac", "out-of-sequence"]


@dataclass(frozen=True)
class Verdict:
    """What `WireReader.check` found: the event JSON to use (None: drop it), or why not, and lost lines."""

    body: str | None
    problem: Problem | None = None
    lost: int = 0  # lines missing before this one (a gap in the sequence)


class WireReader:
    """The host side: checks each line's MAC and sequence. Not thread-safe: one reader feeds it."""

    def __init__(self, key: str) -> None:
        self._key = _key(key)
        self.last = -1

    def check(self, line: str) -> Verdict:
        text = line.strip()
        if not text.startswith(PREFIX + " "):
            return Verdict(None, "unsigned")
        parts = text.split(" ", 3)
        if len(parts) != 4 or not parts[1].isdigit() or len(parts[1]) > 18:
            return Verdict(None, "bad-mac")
        seq, mac, body = int(parts[1]), parts[2], parts[3]
        if not hmac.compare_digest(mac.encode(), _mac(self._key, seq, body).encode()):
            return Verdict(None, "bad-mac")
        if seq <= self.last:
            return Verdict(None, "out-of-sequence")
        lost = seq - self.last - 1
        self.last = seq
        return Verdict(body, None, lost)
