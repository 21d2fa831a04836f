"""Skills of an Expert's run, and the job-wide pool that keeps MCP servers alive across runs.

Why a pool: delegates may be called many times (and in parallel) within one job; spawning `npx` servers per
call would dominate the run. MCP skills are started once per (Expert, skill) and shared; they are closed
together when the job ends, on error or on a signal. The base skill is per run (it holds the todo list).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sandbox._errors import UserError
from sandbox.agent.skills._skill import Skill, ToolOutput, ToolSpec, apply_pick_omit
from sandbox.agent.skills.builtin import BASE_SKILL_NAME, BaseSkill
from sandbox.agent.skills.delegate import DelegateSkill, delegate_skill_name, delegate_tool_name
from sandbox.agent.skills.interactive import InteractiveSkill
from sandbox.agent.skills.mcp import McpSkill, SkillContext
from sandbox.config import InteractiveSkill as InteractiveSkillConfig
from sandbox.config import McpStdioSkill

if TYPE_CHECKING:
    from sandbox.config import Expert, PerstackConfig

__all__ = [
    "BASE_SKILL_NAME",
    "Skill",
    "SkillContext",
    "SkillPool",
    "SkillSet",
    "ToolOutput",
    "ToolSpec",
    "apply_pick_omit",
    "delegate_skill_name",
    "delegate_tool_name",
]


class SkillPool:
    """Job-wide MCP skills keyed by (expert key, skill name)."""

    def __init__(self) -> None:
        self._skills: dict[tuple[str, str], McpSkill] = {}
        self._background: set[asyncio.Task[None]] = set()

    def get(self, key: tuple[str, str]) -> McpSkill | None:
        return self._skills.get(key)

    def add(self, key: tuple[str, str], skill: McpSkill) -> McpSkill:
        return self._skills.setdefault(key, skill)

    def start_in_background(self, skill: Skill) -> None:
        async def runner() -> None:
            with contextlib.suppress(Exception):
                await skill.start()

        task = asyncio.create_task(runner(), name=f"lazy:{skill.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close_all(self) -> None:
        """Close every skill concurrently; never raises (shutdown must finish)."""
        for task in list(self._background):
            task.cancel()
        skills = list(self._skills.values())
        self._skills.clear()
        await asyncio.gather(*(s.close() for s in skills), return_exceptions=True)


class SkillSet:
    """The skills one run of one Expert can use, with tool-name look-up."""

    def __init__(self, skills: Sequence[Skill]) -> None:
        self.skills = list(skills)
        self._warned: set[str] = set()

    def tool_specs(self) -> list[ToolSpec]:
        """Tools of every ready skill; a name defined twice keeps its first definition."""
        seen: dict[str, ToolSpec] = {}
        for skill in self.skills:
            if not skill.ready:
                continue
            for spec in skill.tools():
                if spec.name in seen:
                    if spec.name not in self._warned:  # once per run, not once per generation
                        self._warned.add(spec.name)
                        print(f"sandbox: tool {spec.name} of {skill.name} is shadowed", file=sys.stderr)
                    continue
                seen[spec.name] = spec
        return list(seen.values())

    def owner(self, tool_name: str) -> Skill | None:
        for skill in self.skills:
            if skill.ready and any(t.name == tool_name for t in skill.tools()):
                return skill
        return None

    async def start(self, pool: SkillPool) -> None:
        """Start eager skills concurrently (raising the first failure); lazy ones in the background."""
        eager = [s for s in self.skills if not s.lazy]
        for skill in self.skills:
            if skill.lazy:
                pool.start_in_background(skill)
        results = await asyncio.gather(*(s.start() for s in eager), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


def build_skill_set(
    expert_key: str,
    expert: Expert,
    config: PerstackConfig,
    ctx: SkillContext,
    pool: SkillPool,
    *,
    coordinator: bool,
) -> SkillSet:
    """The Expert's skills: the base skill by default, MCP skills from the pool, interactive tools for the
    coordinator only, and one delegate tool per delegate."""
    configured = expert.skills
    skills: list[Skill] = []
    if configured is None:
        skills.append(BaseSkill(ctx.workspace, ctx.env))
    for name, cfg in (configured or {}).items():
        if isinstance(cfg, InteractiveSkillConfig):
            if coordinator:
                skills.append(InteractiveSkill(name, cfg))
            continue
        if (
            name == BASE_SKILL_NAME
            and isinstance(cfg, McpStdioSkill)
            and not config.perstack_base_skill_command
        ):
            skills.append(
                BaseSkill(
                    ctx.workspace,
                    ctx.env,
                    description=cfg.description,
                    rule=cfg.rule,
                    pick=cfg.pick,
                    omit=cfg.omit,
                )
            )
            continue
        key = (expert_key, name)
        existing = pool.get(key)
        if existing is None:
            override = None
            if name == BASE_SKILL_NAME and config.perstack_base_skill_command:
                command = list(config.perstack_base_skill_command)
                override = (command[0], command[1:])
            existing = pool.add(key, McpSkill(name, cfg, ctx, command_override=override))
        skills.append(existing)
    for delegate_key in expert.delegates:
        target = config.experts.get(delegate_key)
        if target is None:
            raise UserError(
                f"Delegate {delegate_key} of {expert_key} is not defined in perstack.toml "
                "and was not fetched from the registry (see the warnings before the run)"
            )
        skills.append(DelegateSkill(delegate_key, target.description))
    return SkillSet(skills)
