"""What every skill is to the loop: a named set of tools that can be started, called and closed.

Why one small contract: MCP servers (stdio/SSE/HTTP), the in-process base skill, interactive tools and
delegates all look the same to the loop (a list of `ToolSpec`s and `call()`), and only `kind` tells the loop
when a call stops the run (interactive) or spawns a run (delegate) instead of returning a result.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.events import FileInlinePart, ImageInlinePart, TextPart

__all__ = ["Skill", "SkillKind", "ToolOutput", "ToolSpec", "apply_pick_omit"]

SkillKind = Literal["mcp", "builtin", "interactive", "delegate"]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ToolOutput:
    """A tool's result as Perstack tool-result contents; `is_error` marks failures the model should see."""

    parts: list[TextPart | ImageInlinePart | FileInlinePart] = field(default_factory=list)
    is_error: bool = False

    @classmethod
    def text(cls, text: str, *, is_error: bool = False) -> ToolOutput:
        return cls([TextPart(text=text)], is_error=is_error)


def apply_pick_omit(tools: Sequence[ToolSpec], pick: Sequence[str], omit: Sequence[str]) -> list[ToolSpec]:
    """Perstack's order: drop `omit` first, then keep only `pick` when it is non-empty."""
    kept = [t for t in tools if t.name not in set(omit)]
    if pick:
        wanted = set(pick)
        kept = [t for t in kept if t.name in wanted]
    return kept


class Skill(abc.ABC):
    """One skill of one Expert. `tools()` is valid once `ready` is true (after `start()`)."""

    kind: SkillKind = "mcp"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        rule: str | None = None,
        pick: Sequence[str] = (),
        omit: Sequence[str] = (),
        lazy: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.rule = rule
        self.pick = tuple(pick)
        self.omit = tuple(omit)
        self.lazy = lazy

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect (spawn, handshake, list tools). Idempotent; raises `ToolError`/`UserError` on failure."""

    def tools(self) -> list[ToolSpec]:
        return apply_pick_omit(self._all_tools(), self.pick, self.omit)

    @abc.abstractmethod
    def _all_tools(self) -> list[ToolSpec]: ...

    @abc.abstractmethod
    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutput:
        """Run one tool. Failures the model can react to come back as `is_error` outputs, not exceptions."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release processes/connections. Idempotent and safe to call when never started."""
