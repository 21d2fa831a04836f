"""`interactiveSkill`: tools the model can call but only a person can answer.

Calling one never runs anything: the loop ends the run with `stopRunByInteractiveTool`, and the answer comes
back with `--continue -i`. So `call()` exists only to satisfy the contract and is never reached.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sandbox._errors import UserError
from sandbox.agent.skills._skill import Skill, ToolOutput, ToolSpec

if TYPE_CHECKING:
    from sandbox.config import InteractiveSkill as InteractiveSkillConfig

__all__ = ["InteractiveSkill"]


class InteractiveSkill(Skill):
    kind = "interactive"

    def __init__(self, name: str, cfg: InteractiveSkillConfig) -> None:
        super().__init__(name, description=cfg.description, rule=cfg.rule)
        self._tools: list[ToolSpec] = []
        for tool_name, tool in cfg.tools.items():
            try:
                schema = json.loads(tool.input_json_schema)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"Skill {name}: tool {tool_name}: inputJsonSchema is not valid JSON: {exc}"
                ) from None
            if not isinstance(schema, dict):
                raise UserError(f"Skill {name}: tool {tool_name}: inputJsonSchema must be a JSON object")
            self._tools.append(ToolSpec(tool_name, tool.description or "", schema))

    def _all_tools(self) -> list[ToolSpec]:
        return list(self._tools)

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutput:  # pragma: no cover - by design
        return ToolOutput.text(f"{tool_name} is interactive and awaits a person's answer", is_error=True)
