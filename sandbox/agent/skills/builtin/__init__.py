"""The built-in base skill: an in-process equivalent of Perstack's `@perstack/base`.

Why in-process instead of `npx @perstack/base`: no npm download at run time, no Node dependency for the
native runtime, and path/exec policy enforced by code we test. An Expert without skills gets it, a skill
named `@perstack/base` maps to it (with its `pick`/`omit`), unless `perstackBaseSkillCommand` asks for a
real MCP server instead.

Tools: file tools (`_fs.py`), `exec` (`_exec.py`), and the bookkeeping tools `think`, `todo`, `clearTodo`
and `attemptCompletion`, which checks the todo list before letting the run finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox._errors import ToolError
from sandbox.agent.skills._skill import Skill, ToolOutput, ToolSpec
from sandbox.agent.skills.builtin._exec import EXEC_SCHEMA, run_exec
from sandbox.agent.skills.builtin._fs import FS_TOOLS
from sandbox.agent.skills.builtin._paths import PathDeniedError, Workspace

__all__ = ["BASE_SKILL_NAME", "BaseSkill", "PathDeniedError", "Workspace"]

BASE_SKILL_NAME = "@perstack/base"

_OTHER_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "exec": ("Run a program (no shell) in the workspace; returns exit code, stdout and stderr.", EXEC_SCHEMA),
    "think": (
        "Think step by step about the task; the thought is recorded and nothing else happens.",
        {"type": "object", "properties": {"thought": {"type": "string"}}, "required": ["thought"]},
    ),
    "todo": (
        "Maintain the task's todo list: add newTodos, mark completedTodos (ids). Returns the list.",
        {
            "type": "object",
            "properties": {
                "newTodos": {"type": "array", "items": {"type": "string"}},
                "completedTodos": {"type": "array", "items": {"type": "integer"}},
            },
        },
    ),
    "clearTodo": ("Clear the todo list.", {"type": "object", "properties": {}}),
    "attemptCompletion": (
        "Call when the task is complete. Fails while todos remain open; then the final answer is written.",
        {"type": "object", "properties": {}},
    ),
}


class BaseSkill(Skill):
    kind = "builtin"

    def __init__(
        self,
        workspace: Path,
        env: Mapping[str, str],
        *,
        description: str | None = None,
        rule: str | None = None,
        pick: tuple[str, ...] = (),
        omit: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            BASE_SKILL_NAME,
            description=description or "Built-in file, exec and task-tracking tools for the workspace",
            rule=rule,
            pick=pick,
            omit=omit,
        )
        self.workspace = Workspace(workspace)
        self._env = env
        self.todos: list[dict[str, Any]] = []

    def _all_tools(self) -> list[ToolSpec]:
        specs = [ToolSpec(name, desc, schema) for name, (desc, schema, _) in FS_TOOLS.items()]
        specs += [ToolSpec(name, desc, schema) for name, (desc, schema) in _OTHER_TOOLS.items()]
        return specs

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutput:
        try:
            if tool_name in FS_TOOLS:
                func = FS_TOOLS[tool_name][2]
                return ToolOutput.text(await asyncio.to_thread(func, self.workspace, args))
            if tool_name == "exec":
                return ToolOutput.text(await run_exec(self.workspace, self._env, args))
            if tool_name == "think":
                return ToolOutput.text("Thought recorded.")
            if tool_name == "todo":
                return ToolOutput.text(self._todo(args))
            if tool_name == "clearTodo":
                self.todos.clear()
                return ToolOutput.text("Todo list cleared.")
            if tool_name == "attemptCompletion":
                return self._attempt_completion()
        except (ToolError, OSError, ValueError) as exc:
            return ToolOutput.text(str(exc) or type(exc).__name__, is_error=True)
        return ToolOutput.text(f"Unknown tool {tool_name}", is_error=True)

    def _todo(self, args: dict[str, Any]) -> str:
        for title in args.get("newTodos") or []:
            self.todos.append({"id": len(self.todos), "title": str(title), "completed": False})
        for todo_id in args.get("completedTodos") or []:
            for todo in self.todos:
                if todo["id"] == todo_id:
                    todo["completed"] = True
        return "\n".join(
            f"[{'x' if t['completed'] else ' '}] {t['id']}: {t['title']}" for t in self.todos
        ) or ("(no todos)")

    def _attempt_completion(self) -> ToolOutput:
        open_todos = [t for t in self.todos if not t["completed"]]
        if open_todos:
            listing = "\n".join(f"{t['id']}: {t['title']}" for t in open_todos)
            return ToolOutput.text(f"Remaining todos must be completed first:\n{listing}", is_error=True)
        return ToolOutput.text("Task marked as complete.")
