"""The script a `ScriptedLLMServer` plays: data only, no I/O beyond JSON files.

A script is an ordered list of `Turn`s. Each turn is one model response, written once and served in
whichever wire protocol the request arrived in (Anthropic Messages, OpenAI Chat Completions or OpenAI
Responses), so one script drives the native runtime, Claude Code and Codex alike. The types are
pydantic dataclasses: positional construction reads like the response it describes (`Turn("done")`,
`ToolCall("read_file", {"path": "a.txt"})`), `extra="forbid"` turns a typo in a hand-written JSON
script into an error instead of a silently ignored key, and `Script.to_json()`/`Script.load()` let a
script be mounted into a container for the standalone server.
"""

from __future__ import annotations

import json
from dataclasses import KW_ONLY, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass

__all__ = ["ErrorSpec", "Expectation", "Protocol", "Script", "StopReason", "ToolCall", "Turn", "Usage"]

Protocol = Literal["anthropic", "openai", "openai-responses"]
"""The wire protocols the server speaks: Anthropic Messages, OpenAI Chat Completions, OpenAI Responses."""

StopReason = Literal["end_turn", "tool_use", "max_tokens"]
"""Why a turn ends, in Anthropic's words; OpenAI answers get `stop` / `tool_calls` / `length`."""

_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_STRICT)
class ToolCall:
    """One tool call the scripted model makes.

    `id` is left `None` in most scripts: the server then derives a stable one from the turn and call
    position (`toolu_sbx_<turn>_<n>` / `call_sbx_<turn>_<n>`), so assertions on tool results can name it.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, config=_STRICT)
class Usage:
    """Token counts reported for a turn, overriding the server's length-based estimate.

    The cache fields are Anthropic's `cache_read_input_tokens` / `cache_creation_input_tokens`; on the
    OpenAI side `cache_read_input_tokens` becomes `prompt_tokens_details.cached_tokens`.
    """

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)


@dataclass(frozen=True, config=_STRICT)
class ErrorSpec:
    """An error the server answers instead of a completion.

    `type` defaults to what the provider uses for `status` (429 → `rate_limit_error`, 529 →
    `overloaded_error`, ...), so a script usually only says `ErrorSpec(429, retry_after=2)`.
    With `mid_stream=True` a streaming request first gets a 200, `message_start` and part of the turn's
    text, then an `error` event, which is how a real provider fails once it has started answering.
    A non-streaming request gets the plain HTTP error either way.
    """

    status: int = Field(ge=400, le=599)
    type: str | None = None
    message: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    mid_stream: bool = False

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1, *, message: str | None = None) -> ErrorSpec:
        """HTTP 429 with a `retry-after` header: what an agent must back off from."""
        return cls(429, retry_after=retry_after, message=message)

    @classmethod
    def overloaded(cls, *, mid_stream: bool = False, message: str | None = None) -> ErrorSpec:
        """Anthropic's 529 `overloaded_error`, optionally after the stream has started."""
        return cls(529, mid_stream=mid_stream, message=message)

    @classmethod
    def server_error(cls, *, message: str | None = None) -> ErrorSpec:
        """A plain HTTP 500 (`api_error` / `server_error`)."""
        return cls(500, message=message)


@dataclass(frozen=True, config=_STRICT)
class Expectation:
    """Checks run against the request a turn is served to, in protocol-neutral terms.

    Every failed check is recorded in `server.unexpected` and the turn is answered with HTTP 400 whose
    message names the check, so the system under test fails with the reason instead of going on with a
    wrong conversation. "System" means Anthropic's `system`, OpenAI's system/developer messages, or
    Responses `instructions`; "tool results" means the results in the request's last message
    (Anthropic `tool_result` blocks, trailing OpenAI `tool` messages or Responses
    `function_call_output` items).

    **Fields:**

    * `protocol`, `model`, `stream` - must equal, when set.
    * `system_contains` / `system_excludes` - substrings the system prompt must (not) contain.
    * `messages_contain` - substrings that must appear somewhere in the conversation (any message).
    * `last_message_contains` - substrings the last message must contain.
    * `tools` - the offered tool names, compared as a sorted list; `tools_include` - a subset of them.
    * `tool_result_contains` - substrings the latest tool results must contain.
    * `headers` - lower-case header names; a value must equal, `None` means "present with any value".
    * `api_key` - the key sent, from `x-api-key` or `authorization: Bearer ...`.
    * `body_includes` - top-level JSON body keys that must equal the given values (`{"temperature": 0}`).
    """

    protocol: Protocol | None = None
    model: str | None = None
    stream: bool | None = None
    system_contains: list[str] = field(default_factory=list)
    system_excludes: list[str] = field(default_factory=list)
    messages_contain: list[str] = field(default_factory=list)
    last_message_contains: list[str] = field(default_factory=list)
    tools: list[str] | None = None
    tools_include: list[str] = field(default_factory=list)
    tool_result_contains: list[str] = field(default_factory=list)
    headers: dict[str, str | None] = field(default_factory=dict)
    api_key: str | None = None
    body_includes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, config=_STRICT)
class Turn:
    """One scripted model response.

    Content is rendered in the order a real model produces it: `thinking`, then `text`, then
    `tool_calls`. `stop_reason` defaults to `tool_use` when there are tool calls, else `end_turn`.
    `delay_s` sleeps before the response starts (client-timeout tests). `match` makes the turn
    wait for a request whose system prompt or messages contain that substring, for concurrent callers
    such as parallel delegates; turns without `match` are served in order to everything else.
    `label` only names the turn in failure messages.
    """

    text: str | None = None
    _: KW_ONLY
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str | None = None
    error: ErrorSpec | None = None
    delay_s: float = Field(default=0.0, ge=0)
    usage: Usage | None = None
    stop_reason: StopReason | None = None
    expect: Expectation | None = None
    match: str | None = Field(default=None, min_length=1)
    label: str | None = None

    @property
    def resolved_stop_reason(self) -> StopReason:
        """The stop reason the wire will carry."""
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool_calls else "end_turn"

    def describe(self, index: int) -> str:
        """A short name for failure messages: `turn 3 ('plan step')`."""
        return f"turn {index} ({self.label!r})" if self.label else f"turn {index}"


@dataclass(frozen=True, config=_STRICT)
class Script:
    """An ordered list of turns plus a format version, the unit that is written to and read from JSON."""

    turns: list[Turn] = field(default_factory=list)
    _: KW_ONLY
    version: Literal[1] = 1

    def to_json(self, *, indent: int | None = 2) -> str:
        """Serialise, omitting defaulted fields so hand-edited script files stay short."""
        data = _SCRIPT_ADAPTER.dump_python(self, mode="json", exclude_defaults=True)
        data["version"] = self.version  # always written, so old readers can refuse new formats
        return json.dumps(data, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Script:
        """Parse and validate; raises `pydantic.ValidationError` naming the bad key."""
        return _SCRIPT_ADAPTER.validate_json(text)

    def dump(self, path: str | Path) -> Path:
        """Write the script to `path` (e.g. a file to mount into the server container)."""
        target = Path(path)
        target.write_text(self.to_json() + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> Script:
        """Read a script written by `dump()` or by hand."""
        return cls.from_json(Path(path).read_bytes())


_SCRIPT_ADAPTER: TypeAdapter[Script] = TypeAdapter(Script)
