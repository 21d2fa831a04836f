"""Delegates as tools: one tool per delegate Expert, taking a `query`.

The loop runs the delegate as its own run in the same job (see `_loop.py`), so `call()` is never reached.
Tool names must satisfy every provider's pattern (`^[a-zA-Z0-9_-]{1,64}$`), which `@org/name@1.0` does
not: the name is sanitised and the mapping back to the Expert key is kept here.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.agent.skills._skill import Skill, ToolOutput, ToolSpec

__all__ = ["DelegateSkill", "delegate_skill_name", "delegate_tool_name"]

_INVALID = re.compile(r"[^a-zA-Z0-9_-]+")


def delegate_tool_name(expert_key: str) -> str:
    return _INVALID.sub("_", expert_key).strip("_")[:64] or "delegate"


def delegate_skill_name(expert_key: str) -> str:
    """Perstack's skill name for delegation tool calls and results."""
    return f"delegate/{expert_key}"


class DelegateSkill(Skill):
    kind = "delegate"

    def __init__(self, expert_key: str, description: str | None) -> None:
        super().__init__(delegate_skill_name(expert_key), description=description)
        self.expert_key = expert_key
        self.tool_name = delegate_tool_name(expert_key)

    def _all_tools(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                self.tool_name,
                (self.description or f"Delegate a task to the {self.expert_key} expert.")
                + " The expert works on the query and returns its final answer.",
                {
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "The task for the expert"}},
                    "required": ["query"],
                },
            )
        ]

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutput:  # pragma: no cover
        return ToolOutput.text("delegation is run by the loop", is_error=True)
