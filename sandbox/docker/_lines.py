"""Bytes -> lines, for container output that arrives in arbitrary chunks.

Why its own module: the reference split on `\\n` only and then trimmed, which broke on `\\r\\n` from a tty,
and decoded per chunk, which breaks a UTF-8 character split across two frames. Here bytes are buffered per
stream and decoded per complete line; `\\n`, `\\r\\n` and a bare `\\r` all end a line (JSON never contains a
raw CR, so this cannot split an event), and empty lines are dropped. A line longer than `max_line` is
dropped with a marker instead of growing the buffer without bound: the container is untrusted output.
"""

from __future__ import annotations

import re

__all__ = ["LineSplitter"]

_BREAK = re.compile(rb"\r\n|\n|\r")


class LineSplitter:
    """Feed chunks, get complete lines (decoded, without terminators, never empty).

    Each chunk is scanned once (no re-scan of the buffered prefix), so a multi-megabyte checkpoint line
    arriving in small frames costs linear time.
    """

    def __init__(self, max_line: int = 64 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._skipping = False
        self._after_cr = False
        self.dropped = 0

    def _end_line(self, lines: list[str]) -> None:
        if self._skipping:
            self._skipping = False
        elif self._buf.strip():
            lines.append(self._buf.decode("utf-8", "replace"))
        self._buf.clear()

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._after_cr = False
        pos = 0
        for match in _BREAK.finditer(chunk):
            if not self._skipping:
                self._buf += chunk[pos : match.start()]
            self._end_line(lines)
            pos = match.end()
            self._after_cr = match.group() == b"\r" and pos == len(chunk)
        if not self._skipping:
            self._buf += chunk[pos:]
            if len(self._buf) > self._max:
                self._buf.clear()
                self._skipping = True
                self.dropped += 1
        return lines

    def flush(self) -> list[str]:
        """The unterminated rest, as a last line (at end of stream)."""
        lines: list[str] = []
        self._end_line(lines)
        self._after_cr = False
        return lines
