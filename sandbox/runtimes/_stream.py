"""The small intermediate form every CLI stream is parsed into before it becomes Perstack events.

Why an intermediate form: six JSON dialects (cli-agents.md §§1–6) map onto one vocabulary here —
`ToolCalls`, `ToolResult`, `Text`, `Notice` — plus a `StreamState` the adapter fills in as it reads
(session id, final text, usage, error). The adapters stay pure functions of "one JSON object in, zero or
more items out", testable with recorded streams and no process; `_run.py` alone knows Perstack's events.

Parsing is lenient by contract: `decode_line` returns None for blank lines, banners, warnings and broken
JSON; adapters ignore unknown `type`s. A CLI that adds an event type next week must not break a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Call",
    "Item",
    "Notice",
    "RunUsage",
    "StreamState",
    "Text",
    "ToolCalls",
    "ToolResult",
    "as_dict",
    "as_float",
    "as_int",
    "decode_line",
    "split_mcp_name",
    "text_of",
]


@dataclass
class RunUsage:
    """Token and cost figures as a CLI reports them; None means "this CLI does not say", never zero.

    `input_tokens` counts the whole prompt including cached tokens (so runtimes compare fairly);
    `cached_input_tokens` is the cached part of it. `turns` is the CLI's own count of model turns.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    turns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """CLI-specific figures with no common meaning (Copilot premium requests, per-model usage...)."""

    def add(self, **values: float | int | None) -> None:
        """Accumulate: None + x = x, None + None stays None."""
        for key, value in values.items():
            if value is None:
                continue
            current = getattr(self, key)
            setattr(self, key, value if current is None else current + value)

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cachedInputTokens": self.cached_input_tokens,
            "reasoningTokens": self.reasoning_tokens,
            "totalTokens": self.total_tokens,
            "costUsd": self.cost_usd,
            "turns": self.turns,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass(frozen=True)
class Call:
    """One tool call as the CLI names it. `skill` is the MCP server for MCP tools, else None."""

    id: str
    name: str
    args: Mapping[str, Any]
    skill: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    """The model asked for tools; `text` is what it said alongside."""

    calls: tuple[Call, ...]
    text: str = ""


@dataclass(frozen=True)
class ToolResult:
    """A tool finished. `name` is filled by the adapter when the CLI's result event omits it."""

    call_id: str
    output: str
    is_error: bool = False
    name: str | None = None


@dataclass(frozen=True)
class Text:
    """A complete piece of assistant text (never a delta: adapters join deltas before yielding)."""

    text: str


@dataclass(frozen=True)
class Notice:
    """Something worth telling the user that changes nothing: a retry, a warning, an MCP status."""

    message: str


Item = ToolCalls | ToolResult | Text | Notice


@dataclass
class StreamState:
    """What an adapter learns while reading one run's stream; `_run.py` turns it into the end event.

    `finished` means the CLI printed its terminal event (Claude/Cursor `result`, Codex `turn.completed`,
    Gemini `result`, OpenCode `done`/last `step_finish`, Copilot `result`). `error` set means the run
    failed with that message, whatever the exit code says.
    """

    servers: tuple[str, ...] = ()
    """Names of the Expert's MCP skills given to the CLI, to attribute MCP tool calls to their skill."""
    session_id: str | None = None
    model: str | None = None
    final_text: str | None = None
    error: str | None = None
    finished: bool = False
    usage: RunUsage = field(default_factory=RunUsage)
    steps: int = 0
    mcp_status: dict[str, str] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)
    """Adapter-private state (partial text buffers, counters)."""
    workdir: Path | None = None
    """The run's private scratch directory (files the CLI writes at exit, e.g. Copilot's usage file)."""


def split_mcp_name(name: str, servers: tuple[str, ...], *, prefix: str = "", sep: str = "__") -> Call | None:
    """`(skill, tool)` packed as a Call stub when `name` is `<prefix><server><sep><tool>` for a known server.

    CLIs name MCP tools differently (Claude `mcp__srv__tool`, OpenCode `srv_tool`); adapters pass their
    pattern. Server names are compared with non-alphanumerics folded to `_`, as the CLIs sanitise them.
    """
    if prefix and not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    for server in sorted(servers, key=len, reverse=True):
        for candidate in {server, _fold(server)}:
            head = candidate + sep
            if rest.startswith(head) and len(rest) > len(head):
                return Call(id="", name=rest[len(head) :], args={}, skill=server)
    return None


def _fold(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name)


def decode_line(line: str) -> Iterator[dict[str, Any]]:
    """The JSON objects on one output line: zero for noise, several for a JSON array line.

    Skips lines that do not start with `{` or `[` (OpenCode's plain-text warnings, banners, a BOM) and
    lines that are not valid JSON (a truncated last line after a kill).
    """
    text = line.strip().lstrip("\ufeff")
    if not text or text[0] not in "{[":
        return
    try:
        value = json.loads(text)
    except ValueError:
        return
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty dict: nested fields may be missing or null."""
    return value if isinstance(value, dict) else {}


def as_int(value: object) -> int | None:
    """An integer usage figure, or None for anything else (missing keys, null, strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def text_of(content: object) -> str:
    """Flatten a content value: a string, a list of strings / `{text}` / `{type:"text",text}` blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(part) for part in content)
    if isinstance(content, dict):
        for key in ("text", "content", "output"):
            if key in content:
                return text_of(content[key])
        return json.dumps(content, ensure_ascii=False)
    return str(content)
