"""What the two protocol renderers share: the reply context, token estimates, chunking and SSE framing.

The renderers (`_anthropic.py`, `_openai.py`) are pure functions from a `Reply` to JSON or to a list
of SSE frames. Keeping them free of I/O means the exact bytes a test double sends can be unit-tested,
and the HTTP layer stays a thin shell around them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._script import Turn, Usage

__all__ = ["DEFAULT_CHUNK_SIZE", "Reply", "split", "sse"]

DEFAULT_CHUNK_SIZE = 8
"""Characters per streamed delta: small, so any non-trivial text or tool-argument string arrives in
several deltas and a client that only copes with one delta fails in tests, not in production."""


@dataclass(frozen=True)
class Reply:
    """Everything needed to render one turn as one response.

    `model` echoes the request's model, as providers do. `request_tokens` is the request body size
    used for the default input-token estimate. `chunk_size` is how many characters go into one
    streamed delta (see `DEFAULT_CHUNK_SIZE`).
    """

    turn: Turn
    turn_index: int
    request_number: int
    model: str
    request_bytes: int
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @property
    def usage(self) -> Usage:
        """The turn's `usage`, else a length-based estimate (about four characters per token).

        The estimate only has to be plausible and stable: non-zero, growing with the conversation.
        """
        if self.turn.usage is not None:
            return self.turn.usage
        produced = len(self.turn.text or "") + len(self.turn.thinking or "")
        produced += sum(len(json.dumps(call.args)) + len(call.name) for call in self.turn.tool_calls)
        return Usage(max(1, self.request_bytes // 4), max(1, produced // 4))

    def tool_id(self, position: int, prefix: str) -> str:
        """The scripted id of call `position`, or a stable derived one (`toolu_sbx_2_0`)."""
        call = self.turn.tool_calls[position]
        return call.id if call.id is not None else f"{prefix}_sbx_{self.turn_index}_{position}"


def split(text: str, size: int) -> list[str]:
    """Cut `text` into `size`-character pieces (none for the empty string)."""
    return [text[i : i + size] for i in range(0, len(text), max(1, size))]


def sse(data: Any, event: str | None = None) -> bytes:
    """One Server-Sent Event frame; `data` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
