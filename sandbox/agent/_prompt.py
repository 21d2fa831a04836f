"""The instruction message: the Expert's instruction plus what each skill and delegate is for.

Why skill descriptions and rules go here and not only into tool descriptions: a `rule` is guidance about
*when* to use a whole skill ("use for security advisories"), which no single tool description carries.
The text is deterministic (no timestamps) so providers can cache the prompt prefix across steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sandbox.agent.skills import Skill
from sandbox.events import InstructionMessage, TextPart

__all__ = ["instruction_message"]


def instruction_message(
    expert_key: str, instruction: str, skills: Sequence[Skill], workspace: Path
) -> InstructionMessage:
    lines = [instruction.strip(), ""]
    tool_skills = [s for s in skills if s.kind != "delegate"]
    delegates = [s for s in skills if s.kind == "delegate"]
    if tool_skills:
        lines.append("## Skills")
        for skill in tool_skills:
            lines.append(f"### {skill.name}")
            if skill.description:
                lines.append(skill.description.strip())
            if skill.rule:
                lines.append(f"Rule: {skill.rule.strip()}")
        lines.append("")
    if delegates:
        lines.append("## Delegates")
        lines.append("Delegate a task by calling the delegate's tool with a self-contained query.")
        for skill in delegates:
            tool = skill.tools()[0].name if skill.tools() else skill.name
            desc = f": {skill.description.strip()}" if skill.description else ""
            lines.append(f"- {tool}{desc}")
        lines.append("")
    lines.append("## Environment")
    lines.append(f"You are the expert `{expert_key}`. The workspace directory is {workspace}.")
    lines.append(
        "Work step by step with your tools. When the task is done, call attemptCompletion if you have it; "
        "otherwise reply with your final answer and no tool calls."
    )
    return InstructionMessage(contents=[TextPart(text="\n".join(lines).strip())])
